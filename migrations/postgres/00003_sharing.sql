-- Sharing (SPEC §10): each layout's access list and its read-only links.
--
-- layouts.access_version counts the changes of the access list (0: never shared). It
-- is PutAccess's compare-and-swap version, apart from the document's version, so
-- sharing a layout never conflicts with editing it.
--
-- layout_members lists the members of a layout (never its owner) with their role;
-- its index on user_id serves "the layouts shared with me". layout_links keeps each
-- link's token secret as its SHA-256 only. A revoked link stays, marked revoked, so
-- that it is still told from an unknown one; an expired one stays as it is. Members
-- and links go with their layout (ON DELETE CASCADE). Timestamps are written with
-- millisecond precision.

-- +goose Up
ALTER TABLE layouts ADD COLUMN access_version bigint NOT NULL DEFAULT 0 CHECK (access_version >= 0);

CREATE TABLE layout_members (
    layout_id text NOT NULL REFERENCES layouts (id) ON DELETE CASCADE,
    user_id   text NOT NULL,
    role      text NOT NULL CHECK (role IN ('viewer', 'editor')),
    PRIMARY KEY (layout_id, user_id)
);
CREATE INDEX layout_members_user_idx ON layout_members (user_id);

CREATE TABLE layout_links (
    id         text        PRIMARY KEY,
    layout_id  text        NOT NULL REFERENCES layouts (id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('viewer', 'editor')),
    hash       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked    boolean     NOT NULL DEFAULT false
);
-- A layout's links, oldest first (by creation, then id).
CREATE INDEX layout_links_layout_idx ON layout_links (layout_id, created_at, id);

-- +goose Down
DROP TABLE layout_links;
DROP TABLE layout_members;
ALTER TABLE layouts DROP COLUMN access_version;
