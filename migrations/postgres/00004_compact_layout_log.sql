-- A compact layout op log. Each row of it is one version of one layout; the rows
-- are most of what the store keeps, so they are small:
--
-- - a row names its layout by layouts.log_id (a bigint given to each layout), not by
--   the layout's text id, in the row and in both indexes;
-- - edit_id is a uuid (16 bytes; the service keeps editIds canonical), and its index
--   is on edit_id alone: a resend is looked up by its editId, and a commit of one
--   layout is serialised by the compare-and-swap on its row, so a unique index is
--   not needed to keep an editId in a layout's log once;
-- - fixed-width columns come first, so that no row carries alignment padding.
-- Rows keep the document only at checkpoints (the service writes doc there alone);
-- paths is written only for ops large enough that reading their paths alone pays.
-- Existing rows are copied; an editId that is not a UUID in the standard or the
-- 32-digit form (none the service accepted since it kept them canonical) is dropped.

-- +goose Up
ALTER TABLE layouts ADD COLUMN log_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE layouts ADD CONSTRAINT layouts_log_id_key UNIQUE (log_id);

CREATE TABLE layout_log (
    log_id        bigint      NOT NULL REFERENCES layouts (log_id) ON DELETE CASCADE,
    version       bigint      NOT NULL CHECK (version >= 1),
    created_at    timestamptz NOT NULL,
    restored_from bigint,
    edit_id       uuid,
    rebased       boolean     NOT NULL DEFAULT false,
    author        text        NOT NULL,
    client        text        NOT NULL DEFAULT '',
    ops           json        NOT NULL,
    doc           json,
    paths         json,
    PRIMARY KEY (log_id, version)
);
INSERT INTO layout_log (log_id, version, created_at, restored_from, edit_id, rebased, author, client, ops, doc, paths)
SELECT l.log_id, c.version, c.created_at, c.restored_from,
       CASE WHEN c.edit_id ~* '^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$'
            THEN c.edit_id::uuid END,
       c.rebased, c.author, c.client, c.ops, c.doc, c.paths
FROM layout_changes c JOIN layouts l ON l.id = c.layout_id;
DROP TABLE layout_changes;
ALTER TABLE layout_log RENAME TO layout_changes;
ALTER INDEX layout_log_pkey RENAME TO layout_changes_pkey;
CREATE INDEX layout_changes_edit_id_idx ON layout_changes (edit_id) WHERE edit_id IS NOT NULL;

-- +goose Down
CREATE TABLE layout_changes_old (
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
    paths         json,
    PRIMARY KEY (layout_id, version)
);
INSERT INTO layout_changes_old (layout_id, version, ops, doc, author, client, edit_id, rebased, restored_from, created_at, paths)
SELECT l.id, c.version, c.ops, c.doc, c.author, c.client, c.edit_id::text, c.rebased, c.restored_from, c.created_at, c.paths
FROM layout_changes c JOIN layouts l ON l.log_id = c.log_id;
DROP TABLE layout_changes;
ALTER TABLE layout_changes_old RENAME TO layout_changes;
ALTER INDEX layout_changes_old_pkey RENAME TO layout_changes_pkey;
CREATE UNIQUE INDEX layout_changes_edit_id_key ON layout_changes (layout_id, edit_id)
    WHERE edit_id IS NOT NULL;
ALTER TABLE layouts DROP COLUMN log_id;
