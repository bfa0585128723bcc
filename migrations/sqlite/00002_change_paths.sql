-- Each op-log row keeps the distinct paths its ops wrote (a JSON array of strings), so
-- that an overlap check reads the paths of many versions without their values.
-- Rows written before this migration have NULL; readers then take the paths from ops.

-- +goose Up
ALTER TABLE layout_changes ADD COLUMN paths TEXT;
ALTER TABLE widget_changes ADD COLUMN paths TEXT;

-- +goose Down
ALTER TABLE widget_changes DROP COLUMN paths;
ALTER TABLE layout_changes DROP COLUMN paths;
