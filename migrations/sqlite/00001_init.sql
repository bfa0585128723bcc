-- The first schema of dashsync: layouts, widgets, their op logs, and dashboards.
--
-- Tables are STRICT. JSON is kept as TEXT, exactly as given. Timestamps are INTEGER
-- milliseconds since the Unix epoch (UTC); booleans are INTEGER 0 or 1.

-- +goose Up
CREATE TABLE layouts (
    id          TEXT    NOT NULL PRIMARY KEY,
    owner       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    is_default  INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    columns     INTEGER NOT NULL,
    items       TEXT    NOT NULL,
    settings    TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX layouts_owner_idx ON layouts (owner, created_at, id);
-- At most one default layout per owner; a second one is a lost race (ErrStale).
CREATE UNIQUE INDEX layouts_one_default_per_owner ON layouts (owner) WHERE is_default = 1;

CREATE TABLE layout_changes (
    layout_id     TEXT    NOT NULL REFERENCES layouts (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL CHECK (version >= 1),
    ops           TEXT    NOT NULL,
    doc           TEXT,
    author        TEXT    NOT NULL,
    client        TEXT    NOT NULL DEFAULT '',
    edit_id       TEXT,
    rebased       INTEGER NOT NULL DEFAULT 0 CHECK (rebased IN (0, 1)),
    restored_from INTEGER,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (layout_id, version)
) STRICT;
-- A resent edit is recognised by its editId (ErrDuplicateEdit).
CREATE UNIQUE INDEX layout_changes_edit_id_key ON layout_changes (layout_id, edit_id)
    WHERE edit_id IS NOT NULL;

CREATE TABLE widgets (
    id                     TEXT    NOT NULL PRIMARY KEY,
    owner                  TEXT    NOT NULL,
    type                   TEXT    NOT NULL,
    title                  TEXT    NOT NULL,
    source_kind            TEXT    NOT NULL,
    source_url             TEXT    NOT NULL DEFAULT '',
    source_refresh_seconds INTEGER NOT NULL,
    source_ttl_seconds     INTEGER NOT NULL,
    source_data            TEXT,
    settings               TEXT    NOT NULL,
    version                INTEGER NOT NULL CHECK (version >= 1),
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
) STRICT;
CREATE INDEX widgets_owner_idx ON widgets (owner, created_at, id);

CREATE TABLE widget_changes (
    widget_id     TEXT    NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    version       INTEGER NOT NULL CHECK (version >= 1),
    ops           TEXT    NOT NULL,
    doc           TEXT,
    author        TEXT    NOT NULL,
    client        TEXT    NOT NULL DEFAULT '',
    edit_id       TEXT,
    rebased       INTEGER NOT NULL DEFAULT 0 CHECK (rebased IN (0, 1)),
    restored_from INTEGER,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (widget_id, version)
) STRICT;
CREATE UNIQUE INDEX widget_changes_edit_id_key ON widget_changes (widget_id, edit_id)
    WHERE edit_id IS NOT NULL;

-- current_layout_id has no foreign key on purpose: deleting a layout must not change
-- a dashboard behind its version; readers fall back to the default layout.
CREATE TABLE dashboards (
    owner             TEXT    NOT NULL PRIMARY KEY,
    current_layout_id TEXT,
    preferences       TEXT    NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1)
) STRICT;

-- +goose Down
DROP TABLE dashboards;
DROP TABLE widget_changes;
DROP TABLE widgets;
DROP TABLE layout_changes;
DROP TABLE layouts;
