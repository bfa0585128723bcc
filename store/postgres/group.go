package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// ReadForEdits reads what a group of layout edits needs in one round trip: a batch
// of, per layout, its head (locked FOR UPDATE, in the order given), its members'
// roles, the changes of the editIds, the paths after the oldest base, and the
// widgets.
func (t *tx) ReadForEdits(ctx context.Context, reads []dsync.EditRead) ([]dsync.EditState, error) {
	if t.s.closed.Load() {
		return nil, storekit.Closed()
	}
	b := &pgx.Batch{}
	for _, r := range reads {
		b.Queue(`SELECT `+layoutCols+` FROM layouts WHERE id = $1 FOR UPDATE`, r.LayoutID)
		b.Queue(`SELECT user_id, role FROM layout_members WHERE layout_id = $1 AND user_id = ANY($2)`, r.LayoutID, r.Users)
		if len(r.EditIDs) > 0 {
			b.Queue(`SELECT `+changeCols+` FROM layout_changes WHERE `+layoutLog.rows+` AND edit_id = ANY($2)`, r.LayoutID, r.EditIDs)
		}
		b.Queue(`SELECT c.version, coalesce(c.paths, (SELECT json_agg(e ->> 'path') FROM json_array_elements(c.ops) e), '[]'::json)
			FROM layout_changes c WHERE `+layoutLog.rows+`
			AND c.version > greatest($2, (SELECT version FROM layouts WHERE id = $1) - $3) ORDER BY c.version`,
			r.LayoutID, r.After, r.MaxBack)
		if len(r.Widgets) > 0 {
			b.Queue(`SELECT `+widgetCols+` FROM widgets
				WHERE id = ANY($2) AND owner = (SELECT owner FROM layouts WHERE id = $1) ORDER BY id`, r.LayoutID, r.Widgets)
		}
	}
	res := t.tx.SendBatch(ctx, b)
	out := make([]dsync.EditState, len(reads))
	err := func() error {
		for i, r := range reads {
			st := &out[i]
			l, err := scanLayout(res.QueryRow())
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				st.Err = storekit.NotFound("layout")
			case err != nil:
				return err
			default:
				st.Layout = l
			}
			st.Roles = make(map[string]dsync.Role, len(r.Users))
			for _, u := range r.Users {
				if st.Err == nil && u == l.Owner {
					st.Roles[u] = dsync.RoleOwner
				} else {
					st.Roles[u] = ""
				}
			}
			if err := collect(res, func(row pgx.Row) error {
				var u, role string
				if err := row.Scan(&u, &role); err != nil {
					return err
				}
				if st.Roles[u] != dsync.RoleOwner {
					st.Roles[u] = dsync.Role(role)
				}
				return nil
			}); err != nil {
				return err
			}
			if len(r.EditIDs) > 0 {
				st.Edits = map[string]dsync.Change{}
				if err := collect(res, func(row pgx.Row) error {
					c, err := scanChange(row)
					st.Edits[c.EditID] = c
					return err
				}); err != nil {
					return err
				}
			}
			if err := collect(res, func(row pgx.Row) error {
				c, err := scanPaths(row)
				st.Paths = append(st.Paths, c)
				return err
			}); err != nil {
				return err
			}
			if len(r.Widgets) > 0 {
				if err := collect(res, func(row pgx.Row) error {
					w, err := scanWidget(row)
					st.Widgets = append(st.Widgets, w)
					return err
				}); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, t.s.mapWriteErr(ctx, "layout", "read layouts for edits", err)
	}
	return out, nil
}

// collect reads the rows of the batch's next query.
func collect(res pgx.BatchResults, each func(pgx.Row) error) error {
	rows, err := res.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// WriteLayouts writes a group's edits in one round trip: per layout, one
// compare-and-swap UPDATE of its document, one INSERT of each change, and the trim.
func (t *tx) WriteLayouts(ctx context.Context, ws []dsync.LayoutWrite) error {
	if t.s.closed.Load() {
		return storekit.Closed()
	}
	b := &pgx.Batch{}
	for _, w := range ws {
		l := w.Layout
		if len(w.Changes) == 0 || w.Changes[len(w.Changes)-1].Version != l.Version || w.Changes[0].Version != w.From+1 {
			return fmt.Errorf("write layout %s: changes %d… do not lead from version %d to %d", l.ID, w.Changes[0].Version, w.From, l.Version)
		}
		items, settings, err := encodeLayout(l)
		if err != nil {
			return err
		}
		b.Queue(`UPDATE layouts
			SET name = $4, is_default = $5, columns = $6, items = $7, settings = $8, version = $9, updated_at = $10
			WHERE id = $1 AND owner = $2 AND version = $3`,
			l.ID, l.Owner, w.From, l.Name, l.IsDefault, l.Columns, items, settings, l.Version, pgTime(l.UpdatedAt))
		for _, c := range w.Changes {
			ops, err := storekit.EncodeOps(c.Ops)
			if err != nil {
				return err
			}
			doc, err := storekit.NullableJSON("change doc", c.Doc)
			if err != nil {
				return err
			}
			b.Queue(`INSERT INTO layout_changes (`+layoutLog.keyCol+`, `+changeCols+`, paths)
				VALUES (`+layoutLog.keyVal+`, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				l.ID, c.Version, ops, doc, c.Author, c.Client, storekit.NullString(c.EditID), c.Rebased,
				c.RestoredFrom, pgTime(c.Time), storekit.PathsFor(c.Ops, ops))
		}
		if w.TrimUpTo > 0 {
			b.Queue(`DELETE FROM layout_changes WHERE `+layoutLog.rows+` AND version <= $2`, l.ID, w.TrimUpTo)
		}
	}
	res := t.tx.SendBatch(ctx, b)
	err := func() error {
		for _, w := range ws {
			tag, err := res.Exec()
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return storekit.Stale("layout", nil)
			}
			for range w.Changes {
				if _, err := res.Exec(); err != nil {
					return err
				}
			}
			if w.TrimUpTo > 0 {
				if _, err := res.Exec(); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, dsync.ErrStale) {
		return err
	}
	if err != nil {
		return t.s.mapWriteErr(ctx, "layout", "write layouts", err)
	}
	return nil
}
