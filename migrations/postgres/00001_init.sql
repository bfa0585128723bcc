-- The first schema of dashsync: layouts, widgets, their op logs, and dashboards.
--
-- JSON columns are `json`, not `jsonb`: `json` keeps the exact text it was given,
-- and the stores promise to return settings values and widget source data byte for
-- byte. Timestamps are written with millisecond precision.

-- +goose Up
CREATE TABLE layouts (
    id          text        PRIMARY KEY,
    owner       text        NOT NULL,
    name        text        NOT NULL,
    is_default  boolean     NOT NULL DEFAULT false,
    columns     integer     NOT NULL,
    items       json        NOT NULL,
    settings    json        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 1),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX layouts_owner_idx ON layouts (owner, created_at, id);
-- At most one default layout per owner; a second one is a lost race (ErrStale).
CREATE UNIQUE INDEX layouts_one_default_per_owner ON layouts (owner) WHERE is_default;

CREATE TABLE layout_changes (
    layout_id     text        NOT NULL REFERENCES layouts (id) ON DELETE CASCADE,
    version       bigint      NOT NULL CHECK (version >= 1),
    ops           json        NOT NULL,
    doc           json,
    author        text        NOT NULL,
    client        text        NOT NULL DEFAULT '',
    edit_id       text,
    rebased       boolean     NOT NULL DEFAULT false,
    restored_from bigint,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (layout_id, version)
);
-- A resent edit is recognised by its editId (ErrDuplicateEdit).
CREATE UNIQUE INDEX layout_changes_edit_id_key ON layout_changes (layout_id, edit_id)
    WHERE edit_id IS NOT NULL;

CREATE TABLE widgets (
    id                     text        PRIMARY KEY,
    owner                  text        NOT NULL,
    type                   text        NOT NULL,
    title                  text        NOT NULL,
    source_kind            text        NOT NULL,
    source_url             text        NOT NULL DEFAULT '',
    source_refresh_seconds integer     NOT NULL,
    source_ttl_seconds     integer     NOT NULL,
    source_data            json,
    settings               json        NOT NULL,
    version                bigint      NOT NULL CHECK (version >= 1),
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX widgets_owner_idx ON widgets (owner, created_at, id);

CREATE TABLE widget_changes (
    widget_id     text        NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    version       bigint      NOT NULL CHECK (version >= 1),
    ops           json        NOT NULL,
    doc           json,
    author        text        NOT NULL,
    client        text        NOT NULL DEFAULT '',
    edit_id       text,
    rebased       boolean     NOT NULL DEFAULT false,
    restored_from bigint,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (widget_id, version)
);
CREATE UNIQUE INDEX widget_changes_edit_id_key ON widget_changes (widget_id, edit_id)
    WHERE edit_id IS NOT NULL;

-- current_layout_id has no foreign key on purpose: deleting a layout must not change
-- a dashboard behind its version; readers fall back to the default layout.
CREATE TABLE dashboards (
    owner             text   PRIMARY KEY,
    current_layout_id text,
    preferences       json   NOT NULL,
    version           bigint NOT NULL CHECK (version >= 1)
);

-- +goose Down
DROP TABLE dashboards;
DROP TABLE widget_changes;
DROP TABLE widgets;
DROP TABLE layout_changes;
DROP TABLE layouts;
