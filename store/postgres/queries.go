package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reader implements dsync.Reader on the pool or on a transaction.
type reader struct {
	s *Store
	q querier
}

// opLog names the op log table of one kind of object: rows is the condition that
// picks an object's rows, with its id as $1; keyCol and keyVal are the key column
// of a new row and its value, from the id in $1.
type opLog struct {
	kind, table, rows, keyCol, keyVal string
}

var (
	// A layout's rows are keyed by its log_id (migration 00004).
	layoutLog = opLog{kind: "layout", table: "layout_changes",
		rows:   `log_id = (SELECT log_id FROM layouts WHERE id = $1)`,
		keyCol: "log_id", keyVal: `(SELECT log_id FROM layouts WHERE id = $1)`}
	widgetLog = opLog{kind: "widget", table: "widget_changes", rows: `widget_id = $1`, keyCol: "widget_id", keyVal: "$1"}
)

const (
	layoutCols = `id, owner, name, is_default, columns, items, settings, version, created_at, updated_at`
	widgetCols = `id, owner, type, title, source_kind, source_url, source_refresh_seconds,
		source_ttl_seconds, source_data, settings, version, created_at, updated_at`
	changeCols = `version, ops, doc, author, client, edit_id, rebased, restored_from, created_at`
)

// pgTime returns t as stored: UTC, milliseconds.
func pgTime(t dsync.Time) time.Time { return dsync.NewTime(t.Time).Time }

func scanLayout(row pgx.Row) (dsync.Layout, error) { return scanLayoutWith(row) }

// scanLayoutWith scans layoutCols and then the row's further columns into extra.
func scanLayoutWith(row pgx.Row, extra ...any) (dsync.Layout, error) {
	var (
		l                dsync.Layout
		items, settings  []byte
		created, updated time.Time
	)
	dest := append([]any{&l.ID, &l.Owner, &l.Name, &l.IsDefault, &l.Columns, &items, &settings,
		&l.Version, &created, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return dsync.Layout{}, err
	}
	var err error
	if l.Items, err = storekit.DecodeItems(items); err != nil {
		return dsync.Layout{}, err
	}
	if l.Settings, err = storekit.DecodeSettings(settings); err != nil {
		return dsync.Layout{}, err
	}
	l.CreatedAt = dsync.NewTime(created)
	l.UpdatedAt = dsync.NewTime(updated)
	return l, nil
}

func scanWidget(row pgx.Row) (dsync.Widget, error) { return scanWidgetWith(row) }

// scanWidgetWith scans the row's leading columns into lead, then widgetCols.
func scanWidgetWith(row pgx.Row, lead ...any) (dsync.Widget, error) {
	var (
		w                dsync.Widget
		data, settings   []byte
		created, updated time.Time
	)
	if err := row.Scan(append(lead, &w.ID, &w.Owner, &w.Type, &w.Title, &w.Source.Kind, &w.Source.URL,
		&w.Source.RefreshSeconds, &w.Source.TTLSeconds, &data, &settings, &w.Version,
		&created, &updated)...); err != nil {
		return dsync.Widget{}, err
	}
	var err error
	if w.Settings, err = storekit.DecodeSettings(settings); err != nil {
		return dsync.Widget{}, err
	}
	w.Source.Data = storekit.RawJSON(data)
	w.CreatedAt = dsync.NewTime(created)
	w.UpdatedAt = dsync.NewTime(updated)
	return w, nil
}

func scanChange(row pgx.Row) (dsync.Change, error) { return scanChangeWith(row) }

// scanChangeWith scans the row's leading columns into lead, then changeCols.
func scanChangeWith(row pgx.Row, lead ...any) (dsync.Change, error) {
	var (
		c        dsync.Change
		ops, doc []byte
		editID   *string
		created  time.Time
	)
	if err := row.Scan(append(lead, &c.Version, &ops, &doc, &c.Author, &c.Client, &editID, &c.Rebased,
		&c.RestoredFrom, &created)...); err != nil {
		return dsync.Change{}, err
	}
	var err error
	if c.Ops, err = storekit.DecodeOps(ops); err != nil {
		return dsync.Change{}, err
	}
	c.Doc = storekit.RawJSON(doc)
	if editID != nil {
		c.EditID = *editID
	}
	c.Time = dsync.NewTime(created)
	return c, nil
}

// Layout returns one of owner's layouts.
func (r reader) Layout(ctx context.Context, owner, id string) (dsync.Layout, error) {
	if r.s.closed.Load() {
		return dsync.Layout{}, storekit.Closed()
	}
	l, err := scanLayout(r.q.QueryRow(ctx,
		`SELECT `+layoutCols+` FROM layouts WHERE id = $1 AND owner = $2`, id, owner))
	if errors.Is(err, pgx.ErrNoRows) {
		return dsync.Layout{}, storekit.NotFound("layout")
	}
	if err != nil {
		return dsync.Layout{}, r.s.mapErr(ctx, "read layout", err)
	}
	return l, nil
}

// Layouts returns owner's layouts, oldest first.
func (r reader) Layouts(ctx context.Context, owner string) ([]dsync.Layout, error) {
	return queryAll(ctx, r, "list layouts", scanLayout,
		`SELECT `+layoutCols+` FROM layouts WHERE owner = $1 ORDER BY created_at, id`, owner)
}

// LayoutChanges returns a layout's kept changes with after < version <= upTo.
func (r reader) LayoutChanges(ctx context.Context, layoutID string, after, upTo int64) ([]dsync.Change, error) {
	return r.changes(ctx, layoutLog, layoutID, after, upTo)
}

// LayoutPaths returns the kept changes' versions and distinct op paths.
func (r reader) LayoutPaths(ctx context.Context, layoutID string, after, upTo int64) ([]dsync.Change, error) {
	return r.paths(ctx, layoutLog, layoutID, after, upTo)
}

// LayoutHistory returns up to limit kept changes with version < before, newest first.
func (r reader) LayoutHistory(ctx context.Context, layoutID string, before int64, limit int) ([]dsync.Change, error) {
	if limit <= 0 {
		return []dsync.Change{}, nil
	}
	return queryAll(ctx, r, "read layout history", scanChange,
		`SELECT `+changeCols+` FROM layout_changes WHERE `+layoutLog.rows+` AND version < $2
		 ORDER BY version DESC LIMIT $3`, layoutID, before, limit)
}

// LayoutChangeByEdit returns the kept change of a layout committed with editID.
func (r reader) LayoutChangeByEdit(ctx context.Context, layoutID, editID string) (dsync.Change, error) {
	return r.changeByEdit(ctx, layoutLog, layoutID, editID)
}

// Widget returns one of owner's widgets.
func (r reader) Widget(ctx context.Context, owner, id string) (dsync.Widget, error) {
	if r.s.closed.Load() {
		return dsync.Widget{}, storekit.Closed()
	}
	w, err := scanWidget(r.q.QueryRow(ctx,
		`SELECT `+widgetCols+` FROM widgets WHERE id = $1 AND owner = $2`, id, owner))
	if errors.Is(err, pgx.ErrNoRows) {
		return dsync.Widget{}, storekit.NotFound("widget")
	}
	if err != nil {
		return dsync.Widget{}, r.s.mapErr(ctx, "read widget", err)
	}
	return w, nil
}

// Widgets returns owner's widgets, oldest first.
func (r reader) Widgets(ctx context.Context, owner string) ([]dsync.Widget, error) {
	return queryAll(ctx, r, "list widgets", scanWidget,
		`SELECT `+widgetCols+` FROM widgets WHERE owner = $1 ORDER BY created_at, id`, owner)
}

// WidgetChanges returns a widget's kept changes with after < version <= upTo.
func (r reader) WidgetChanges(ctx context.Context, widgetID string, after, upTo int64) ([]dsync.Change, error) {
	return r.changes(ctx, widgetLog, widgetID, after, upTo)
}

// WidgetPaths returns the kept changes' versions and distinct op paths.
func (r reader) WidgetPaths(ctx context.Context, widgetID string, after, upTo int64) ([]dsync.Change, error) {
	return r.paths(ctx, widgetLog, widgetID, after, upTo)
}

// WidgetChangeByEdit returns the kept change of a widget committed with editID.
func (r reader) WidgetChangeByEdit(ctx context.Context, widgetID, editID string) (dsync.Change, error) {
	return r.changeByEdit(ctx, widgetLog, widgetID, editID)
}

// Dashboard returns owner's dashboard state, or the empty one at version 0.
func (r reader) Dashboard(ctx context.Context, owner string) (dsync.Dashboard, error) {
	if r.s.closed.Load() {
		return dsync.Dashboard{}, storekit.Closed()
	}
	var (
		current *string
		prefs   []byte
		version int64
	)
	err := r.q.QueryRow(ctx,
		`SELECT current_layout_id, preferences, version FROM dashboards WHERE owner = $1`, owner).
		Scan(&current, &prefs, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return storekit.EmptyDashboard(owner), nil
	}
	if err != nil {
		return dsync.Dashboard{}, r.s.mapErr(ctx, "read dashboard", err)
	}
	return dsync.Dashboard{
		Owner:           owner,
		CurrentLayoutID: current,
		Preferences:     storekit.DecodePreferences(prefs),
		Version:         version,
	}, nil
}

func (r reader) changes(ctx context.Context, log opLog, id string, after, upTo int64) ([]dsync.Change, error) {
	return queryAll(ctx, r, "read "+log.kind+" changes", scanChange,
		`SELECT `+changeCols+` FROM `+log.table+` WHERE `+log.rows+` AND version > $2 AND version <= $3
		 ORDER BY version`, id, after, upTo)
}

// paths reads each change's distinct op paths: the paths column, or for rows written
// before it existed, the paths Postgres takes from the ops.
func (r reader) paths(ctx context.Context, log opLog, id string, after, upTo int64) ([]dsync.Change, error) {
	return queryAll(ctx, r, "read "+log.kind+" change paths", scanPaths,
		`SELECT c.version, coalesce(c.paths, (SELECT json_agg(e ->> 'path') FROM json_array_elements(c.ops) e), '[]'::json)
		 FROM `+log.table+` c WHERE `+log.rows+` AND c.version > $2 AND c.version <= $3
		 ORDER BY c.version`, id, after, upTo)
}

func scanPaths(row pgx.Row) (dsync.Change, error) {
	var (
		c     dsync.Change
		paths []byte
	)
	if err := row.Scan(&c.Version, &paths); err != nil {
		return c, err
	}
	return c, storekit.DecodePaths(&c, paths)
}

func (r reader) changeByEdit(ctx context.Context, log opLog, id, editID string) (dsync.Change, error) {
	if r.s.closed.Load() {
		return dsync.Change{}, storekit.Closed()
	}
	if editID == "" {
		return dsync.Change{}, storekit.NotFound(log.kind + " change")
	}
	c, err := scanChange(r.q.QueryRow(ctx,
		`SELECT `+changeCols+` FROM `+log.table+` WHERE `+log.rows+` AND edit_id = $2`, id, editID))
	if errors.Is(err, pgx.ErrNoRows) {
		return dsync.Change{}, storekit.NotFound(log.kind + " change")
	}
	if err != nil {
		return dsync.Change{}, r.s.mapErr(ctx, "read "+log.kind+" change", err)
	}
	return c, nil
}

// queryAll runs a query and scans every row; the result is never nil.
func queryAll[T any](ctx context.Context, r reader, op string, scan func(pgx.Row) (T, error), query string, args ...any) ([]T, error) {
	if r.s.closed.Load() {
		return nil, storekit.Closed()
	}
	rows, err := r.q.Query(ctx, query, args...)
	if err != nil {
		return nil, r.s.mapErr(ctx, op, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, r.s.mapErr(ctx, op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, r.s.mapErr(ctx, op, err)
	}
	return out, nil
}
