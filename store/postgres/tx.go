package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// tx implements dsync.Tx. Each write runs inside a savepoint, so a write that fails
// (ErrStale, ErrDuplicateEdit, not_found) leaves the transaction as it was, not
// aborted, and the caller may go on using it.
type tx struct {
	reader
	tx pgx.Tx
}

// atomic runs fn inside a savepoint and rolls back to it when fn fails.
func (t *tx) atomic(ctx context.Context, fn func() error) error {
	if t.s.closed.Load() {
		return storekit.Closed()
	}
	if _, err := t.tx.Exec(ctx, `SAVEPOINT write`); err != nil {
		return t.s.mapErr(ctx, "savepoint", err)
	}
	if err := fn(); err != nil {
		undo := context.WithoutCancel(ctx)
		if _, rbErr := t.tx.Exec(undo, `ROLLBACK TO SAVEPOINT write`); rbErr == nil {
			_, _ = t.tx.Exec(undo, `RELEASE SAVEPOINT write`)
		}
		return err
	}
	if _, err := t.tx.Exec(ctx, `RELEASE SAVEPOINT write`); err != nil {
		return t.s.mapErr(ctx, "release savepoint", err)
	}
	return nil
}

// CreateLayout inserts l at version 1 with its first change.
func (t *tx) CreateLayout(ctx context.Context, l dsync.Layout, c dsync.Change) error {
	if err := storekit.CheckCreate("layout", l.Version, c); err != nil {
		return err
	}
	items, settings, err := encodeLayout(l)
	if err != nil {
		return err
	}
	return t.atomic(ctx, func() error {
		_, err := t.tx.Exec(ctx, `INSERT INTO layouts (`+layoutCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			l.ID, l.Owner, l.Name, l.IsDefault, l.Columns, items, settings, l.Version,
			pgTime(l.CreatedAt), pgTime(l.UpdatedAt))
		if err != nil {
			return t.s.mapWriteErr(ctx, "layout", "create layout", err)
		}
		return t.insertChange(ctx, layoutLog, l.ID, c)
	})
}

// UpdateLayout replaces l's stored document at version l.Version-1 and appends c.
// Owner and CreatedAt are kept as stored.
func (t *tx) UpdateLayout(ctx context.Context, l dsync.Layout, c dsync.Change) error {
	if err := storekit.CheckUpdate("layout", l.Version, c); err != nil {
		return err
	}
	items, settings, err := encodeLayout(l)
	if err != nil {
		return err
	}
	return t.atomic(ctx, func() error {
		tag, err := t.tx.Exec(ctx, `UPDATE layouts
			SET name = $4, is_default = $5, columns = $6, items = $7, settings = $8, version = $9, updated_at = $10
			WHERE id = $1 AND owner = $2 AND version = $3`,
			l.ID, l.Owner, l.Version-1,
			l.Name, l.IsDefault, l.Columns, items, settings, l.Version, pgTime(l.UpdatedAt))
		if err := t.checkSwapped(ctx, "layouts", "layout", l.ID, l.Owner, tag, err); err != nil {
			return err
		}
		return t.insertChange(ctx, layoutLog, l.ID, c)
	})
}

// DeleteLayout deletes one of owner's layouts, its op log, its access list and its
// links (the foreign keys cascade to them).
func (t *tx) DeleteLayout(ctx context.Context, owner, id string) error {
	return t.delete(ctx, "layouts", layoutLog, owner, id)
}

// TrimLayoutChanges deletes a layout's changes with version <= upTo.
func (t *tx) TrimLayoutChanges(ctx context.Context, layoutID string, upTo int64) error {
	return t.trim(ctx, layoutLog, layoutID, upTo)
}

// CreateWidget inserts w at version 1 with its first change.
func (t *tx) CreateWidget(ctx context.Context, w dsync.Widget, c dsync.Change) error {
	if err := storekit.CheckCreate("widget", w.Version, c); err != nil {
		return err
	}
	data, settings, err := encodeWidget(w)
	if err != nil {
		return err
	}
	return t.atomic(ctx, func() error {
		_, err := t.tx.Exec(ctx, `INSERT INTO widgets (`+widgetCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			w.ID, w.Owner, w.Type, w.Title, w.Source.Kind, w.Source.URL, w.Source.RefreshSeconds,
			w.Source.TTLSeconds, data, settings, w.Version, pgTime(w.CreatedAt), pgTime(w.UpdatedAt))
		if err != nil {
			return t.s.mapWriteErr(ctx, "widget", "create widget", err)
		}
		return t.insertChange(ctx, widgetLog, w.ID, c)
	})
}

// UpdateWidget replaces w's stored document at version w.Version-1 and appends c.
// Owner and CreatedAt are kept as stored.
func (t *tx) UpdateWidget(ctx context.Context, w dsync.Widget, c dsync.Change) error {
	if err := storekit.CheckUpdate("widget", w.Version, c); err != nil {
		return err
	}
	data, settings, err := encodeWidget(w)
	if err != nil {
		return err
	}
	return t.atomic(ctx, func() error {
		tag, err := t.tx.Exec(ctx, `UPDATE widgets
			SET type = $4, title = $5, source_kind = $6, source_url = $7, source_refresh_seconds = $8,
			    source_ttl_seconds = $9, source_data = $10, settings = $11, version = $12, updated_at = $13
			WHERE id = $1 AND owner = $2 AND version = $3`,
			w.ID, w.Owner, w.Version-1,
			w.Type, w.Title, w.Source.Kind, w.Source.URL, w.Source.RefreshSeconds, w.Source.TTLSeconds,
			data, settings, w.Version, pgTime(w.UpdatedAt))
		if err := t.checkSwapped(ctx, "widgets", "widget", w.ID, w.Owner, tag, err); err != nil {
			return err
		}
		return t.insertChange(ctx, widgetLog, w.ID, c)
	})
}

// DeleteWidget deletes one of owner's widgets and its op log.
func (t *tx) DeleteWidget(ctx context.Context, owner, id string) error {
	return t.delete(ctx, "widgets", widgetLog, owner, id)
}

// TrimWidgetChanges deletes a widget's changes with version <= upTo.
func (t *tx) TrimWidgetChanges(ctx context.Context, widgetID string, upTo int64) error {
	return t.trim(ctx, widgetLog, widgetID, upTo)
}

// PutDashboard stores d if the stored version is d.Version-1.
func (t *tx) PutDashboard(ctx context.Context, d dsync.Dashboard) error {
	if err := storekit.CheckDashboard(d); err != nil {
		return err
	}
	prefs, err := storekit.EncodePreferences(d.Preferences)
	if err != nil {
		return err
	}
	return t.atomic(ctx, func() error {
		var (
			tag pgconn.CommandTag
			err error
		)
		if d.Version == 1 {
			tag, err = t.tx.Exec(ctx, `INSERT INTO dashboards (owner, current_layout_id, preferences, version)
				VALUES ($1, $2, $3, 1) ON CONFLICT (owner) DO NOTHING`, d.Owner, d.CurrentLayoutID, prefs)
		} else {
			tag, err = t.tx.Exec(ctx, `UPDATE dashboards SET current_layout_id = $2, preferences = $3, version = $4
				WHERE owner = $1 AND version = $5`, d.Owner, d.CurrentLayoutID, prefs, d.Version, d.Version-1)
		}
		if err != nil {
			return t.s.mapWriteErr(ctx, "dashboard", "put dashboard", err)
		}
		if tag.RowsAffected() == 0 {
			return storekit.Stale("dashboard", nil)
		}
		return nil
	})
}

// checkSwapped reads the outcome of a compare-and-swap UPDATE: no row means the
// object is gone (not_found) or at another version (ErrStale).
func (t *tx) checkSwapped(ctx context.Context, table, kind, id, owner string, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return t.s.mapWriteErr(ctx, kind, "update "+kind, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err = t.tx.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = $1 AND owner = $2`, id, owner).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storekit.NotFound(kind)
	case err != nil:
		return t.s.mapErr(ctx, "update "+kind, err)
	}
	return storekit.Stale(kind, nil)
}

func (t *tx) insertChange(ctx context.Context, log opLog, id string, c dsync.Change) error {
	ops, doc, err := storekit.EncodeChange(c)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO `+log.table+` (`+log.keyCol+`, `+changeCols+`, paths)
		VALUES (`+log.keyVal+`, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		id, c.Version, ops, doc, c.Author, c.Client, storekit.NullString(c.EditID), c.Rebased,
		c.RestoredFrom, pgTime(c.Time), storekit.PathsFor(c.Ops, ops))
	if err != nil {
		return t.s.mapWriteErr(ctx, log.kind, "append "+log.kind+" change", err)
	}
	return nil
}

func (t *tx) delete(ctx context.Context, table string, log opLog, owner, id string) error {
	return t.atomic(ctx, func() error {
		// The foreign keys cascade to the op log (and a layout's members and links).
		tag, err := t.tx.Exec(ctx, `DELETE FROM `+table+` WHERE id = $1 AND owner = $2`, id, owner)
		if err != nil {
			return t.s.mapErr(ctx, "delete "+log.kind, err)
		}
		if tag.RowsAffected() == 0 {
			return storekit.NotFound(log.kind)
		}
		return nil
	})
}

func (t *tx) trim(ctx context.Context, log opLog, id string, upTo int64) error {
	if t.s.closed.Load() {
		return storekit.Closed()
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM `+log.table+` WHERE `+log.rows+` AND version <= $2`, id, upTo); err != nil {
		return t.s.mapErr(ctx, "trim "+log.kind+" changes", err)
	}
	return nil
}

func encodeLayout(l dsync.Layout) (items, settings string, err error) {
	if items, err = storekit.EncodeItems(l.Items); err != nil {
		return "", "", err
	}
	if settings, err = storekit.EncodeSettings(l.Settings); err != nil {
		return "", "", err
	}
	return items, settings, nil
}

func encodeWidget(w dsync.Widget) (data any, settings string, err error) {
	if data, err = storekit.NullableJSON("widget source data", w.Source.Data); err != nil {
		return nil, "", err
	}
	if settings, err = storekit.EncodeSettings(w.Settings); err != nil {
		return nil, "", err
	}
	return data, settings, nil
}
