package sqlite

import (
	"context"
	"database/sql"

	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// tx implements dsync.Tx. Each write runs inside a savepoint, so a write that fails
// (ErrStale, ErrDuplicateEdit, not_found) leaves the transaction as it was and the
// caller may go on using it.
type tx struct {
	reader
	tx queryer // the transaction, on cached statements
}

// atomic runs fn inside a savepoint and rolls back to it when fn fails.
func (t *tx) atomic(ctx context.Context, fn func() error) error {
	if t.s.closed.Load() {
		return storekit.Closed()
	}
	if _, err := t.tx.ExecContext(ctx, `SAVEPOINT write`); err != nil {
		return t.s.mapErr(ctx, "savepoint", err)
	}
	if err := fn(); err != nil {
		undo := context.WithoutCancel(ctx)
		if _, rbErr := t.tx.ExecContext(undo, `ROLLBACK TO write`); rbErr == nil {
			_, _ = t.tx.ExecContext(undo, `RELEASE write`)
		}
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `RELEASE write`); err != nil {
		return t.s.mapErr(ctx, "release savepoint", err)
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
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
		_, err := t.tx.ExecContext(ctx, `INSERT INTO layouts (`+layoutCols+`, log_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(log_id), 0) + 1 FROM layouts))`,
			l.ID, l.Owner, l.Name, boolInt(l.IsDefault), l.Columns, items, settings, l.Version,
			storekit.UnixMilli(l.CreatedAt), storekit.UnixMilli(l.UpdatedAt))
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
		res, err := t.tx.ExecContext(ctx, `UPDATE layouts
			SET name = ?, is_default = ?, columns = ?, items = ?, settings = ?, version = ?, updated_at = ?
			WHERE id = ? AND owner = ? AND version = ?`,
			l.Name, boolInt(l.IsDefault), l.Columns, items, settings, l.Version, storekit.UnixMilli(l.UpdatedAt),
			l.ID, l.Owner, l.Version-1)
		if err := t.checkSwapped(ctx, "layouts", "layout", l.ID, l.Owner, res, err); err != nil {
			return err
		}
		return t.insertChange(ctx, layoutLog, l.ID, c)
	})
}

// DeleteLayout deletes one of owner's layouts, its op log, its access list and its
// links.
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
		_, err := t.tx.ExecContext(ctx, `INSERT INTO widgets (`+widgetCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			w.ID, w.Owner, w.Type, w.Title, w.Source.Kind, w.Source.URL, w.Source.RefreshSeconds,
			w.Source.TTLSeconds, data, settings, w.Version,
			storekit.UnixMilli(w.CreatedAt), storekit.UnixMilli(w.UpdatedAt))
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
		res, err := t.tx.ExecContext(ctx, `UPDATE widgets
			SET type = ?, title = ?, source_kind = ?, source_url = ?, source_refresh_seconds = ?,
			    source_ttl_seconds = ?, source_data = ?, settings = ?, version = ?, updated_at = ?
			WHERE id = ? AND owner = ? AND version = ?`,
			w.Type, w.Title, w.Source.Kind, w.Source.URL, w.Source.RefreshSeconds, w.Source.TTLSeconds,
			data, settings, w.Version, storekit.UnixMilli(w.UpdatedAt),
			w.ID, w.Owner, w.Version-1)
		if err := t.checkSwapped(ctx, "widgets", "widget", w.ID, w.Owner, res, err); err != nil {
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
	var current any
	if d.CurrentLayoutID != nil {
		current = *d.CurrentLayoutID
	}
	return t.atomic(ctx, func() error {
		var (
			res sql.Result
			err error
		)
		if d.Version == 1 {
			res, err = t.tx.ExecContext(ctx, `INSERT INTO dashboards (owner, current_layout_id, preferences, version)
				VALUES (?, ?, ?, 1) ON CONFLICT (owner) DO NOTHING`, d.Owner, current, prefs)
		} else {
			res, err = t.tx.ExecContext(ctx, `UPDATE dashboards SET current_layout_id = ?, preferences = ?, version = ?
				WHERE owner = ? AND version = ?`, current, prefs, d.Version, d.Owner, d.Version-1)
		}
		if err != nil {
			return t.s.mapWriteErr(ctx, "dashboard", "put dashboard", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return t.s.mapErr(ctx, "put dashboard", err)
		} else if n == 0 {
			return storekit.Stale("dashboard", nil)
		}
		return nil
	})
}

// checkSwapped reads the outcome of a compare-and-swap UPDATE: no row means the
// object is gone (not_found) or at another version (ErrStale).
func (t *tx) checkSwapped(ctx context.Context, table, kind, id, owner string, res sql.Result, err error) error {
	if err != nil {
		return t.s.mapWriteErr(ctx, kind, "update "+kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.mapErr(ctx, "update "+kind, err)
	}
	if n == 1 {
		return nil
	}
	var one int
	err = t.tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE id = ? AND owner = ?`, id, owner).Scan(&one)
	switch {
	case err == sql.ErrNoRows:
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
	_, err = t.tx.ExecContext(ctx, `INSERT INTO `+log.table+` (`+log.keyCol+`, `+changeCols+`, paths)
		VALUES (`+log.keyVal+`, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, c.Version, ops, doc, c.Author, c.Client, log.editIDArg(c.EditID), boolInt(c.Rebased),
		storekit.NullInt64(c.RestoredFrom), storekit.UnixMilli(c.Time), storekit.PathsFor(c.Ops, ops))
	if err != nil {
		return t.s.mapWriteErr(ctx, log.kind, "append "+log.kind+" change", err)
	}
	return nil
}

func (t *tx) delete(ctx context.Context, table string, log opLog, owner, id string) error {
	return t.atomic(ctx, func() error {
		// The foreign keys cascade too; this keeps the log (and a layout's members
		// and links) gone even without them. When the object is not owner's, the
		// savepoint undoes it.
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+log.table+` WHERE `+log.rows, id); err != nil {
			return t.s.mapErr(ctx, "delete "+log.kind+" changes", err)
		}
		for _, dep := range log.dependents {
			if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+dep+` WHERE `+log.idCol+` = ?`, id); err != nil {
				return t.s.mapErr(ctx, "delete "+log.kind+" "+dep, err)
			}
		}
		res, err := t.tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = ? AND owner = ?`, id, owner)
		if err != nil {
			return t.s.mapErr(ctx, "delete "+log.kind, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return t.s.mapErr(ctx, "delete "+log.kind, err)
		} else if n == 0 {
			return storekit.NotFound(log.kind)
		}
		return nil
	})
}

func (t *tx) trim(ctx context.Context, log opLog, id string, upTo int64) error {
	if t.s.closed.Load() {
		return storekit.Closed()
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+log.table+` WHERE `+log.rows+` AND version <= ?`, id, upTo); err != nil {
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
