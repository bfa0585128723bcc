-- A compact layout op log. Each row of it is one version of one layout; the rows
-- are most of what the store keeps, so they are small:
--
-- - a row names its layout by layouts.log_id (an integer given to each layout), not
--   by the layout's text id; the table is WITHOUT ROWID, clustered on
--   (log_id, version), so that key is stored once, with no separate index;
-- - edit_id is the UUID's 16 bytes (a BLOB; the service keeps editIds canonical),
--   and its index is on edit_id alone: a resend is looked up by its editId, and
--   commits are serialised (one writer at a time), so a unique index is not needed
--   to keep an editId in a layout's log once.
-- Rows keep the document only at checkpoints (the service writes doc there alone);
-- paths is written only for ops large enough that reading their paths alone pays.
-- Existing rows are copied; an editId that is not a UUID in the standard or the
-- 32-digit form is dropped.

-- +goose Up
ALTER TABLE layouts ADD COLUMN log_id INTEGER;
UPDATE layouts SET log_id = rowid;
CREATE UNIQUE INDEX layouts_log_id_key ON layouts (log_id);

CREATE TABLE layout_log (
    log_id        INTEGER NOT NULL REFERENCES layouts (log_id) ON DELETE CASCADE,
    version       INTEGER NOT NULL CHECK (version >= 1),
    ops           TEXT    NOT NULL,
    doc           TEXT,
    author        TEXT    NOT NULL,
    client        TEXT    NOT NULL DEFAULT '',
    edit_id       BLOB    CHECK (edit_id IS NULL OR length(edit_id) = 16),
    rebased       INTEGER NOT NULL DEFAULT 0 CHECK (rebased IN (0, 1)),
    restored_from INTEGER,
    created_at    INTEGER NOT NULL,
    paths         TEXT,
    PRIMARY KEY (log_id, version)
) STRICT, WITHOUT ROWID;
INSERT INTO layout_log (log_id, version, ops, doc, author, client, edit_id, rebased, restored_from, created_at, paths)
SELECT l.log_id, c.version, c.ops, c.doc, c.author, c.client,
       CASE WHEN length(replace(c.edit_id, '-', '')) = 32 THEN unhex(replace(c.edit_id, '-', '')) END,
       c.rebased, c.restored_from, c.created_at, c.paths
FROM layout_changes c JOIN layouts l ON l.id = c.layout_id;
DROP TABLE layout_changes;
ALTER TABLE layout_log RENAME TO layout_changes;
CREATE INDEX layout_changes_edit_id_idx ON layout_changes (edit_id) WHERE edit_id IS NOT NULL;

-- +goose Down
CREATE TABLE layout_changes_old (
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
    paths         TEXT,
    PRIMARY KEY (layout_id, version)
) STRICT;
INSERT INTO layout_changes_old (layout_id, version, ops, doc, author, client, edit_id, rebased, restored_from, created_at, paths)
SELECT l.id, c.version, c.ops, c.doc, c.author, c.client,
       CASE WHEN c.edit_id IS NOT NULL THEN lower(substr(hex(c.edit_id), 1, 8) || '-' || substr(hex(c.edit_id), 9, 4) || '-' ||
            substr(hex(c.edit_id), 13, 4) || '-' || substr(hex(c.edit_id), 17, 4) || '-' || substr(hex(c.edit_id), 21)) END,
       c.rebased, c.restored_from, c.created_at, c.paths
FROM layout_changes c JOIN layouts l ON l.log_id = c.log_id;
DROP TABLE layout_changes;
ALTER TABLE layout_changes_old RENAME TO layout_changes;
CREATE UNIQUE INDEX layout_changes_edit_id_key ON layout_changes (layout_id, edit_id)
    WHERE edit_id IS NOT NULL;
DROP INDEX layouts_log_id_key;
ALTER TABLE layouts DROP COLUMN log_id;
