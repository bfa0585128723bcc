package sqlite

import (
	"context"

	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// ReadForEdits reads what a group of layout edits needs. SQLite runs in the process
// and its writers take turns (the transaction is IMMEDIATE), so the reads are plain
// queries on cached statements and nothing needs locking.
func (t *tx) ReadForEdits(ctx context.Context, reads []dsync.EditRead) ([]dsync.EditState, error) {
	out := make([]dsync.EditState, len(reads))
	for i, r := range reads {
		st := &out[i]
		st.Roles = make(map[string]dsync.Role, len(r.Users))
		for _, u := range r.Users {
			l, role, err := t.LayoutAs(ctx, r.LayoutID, u)
			if dsync.ErrorCode(err) == dsync.CodeNotFound {
				st.Err = err
				break
			}
			if err != nil {
				return nil, err
			}
			st.Layout, st.Roles[u] = l, role
		}
		if st.Err != nil {
			st.Roles = nil
			continue
		}
		if len(r.EditIDs) > 0 {
			st.Edits = map[string]dsync.Change{}
			for _, id := range r.EditIDs {
				c, err := t.changeByEdit(ctx, layoutLog, r.LayoutID, id)
				switch dsync.ErrorCode(err) {
				case "":
					st.Edits[id] = c
				case dsync.CodeNotFound:
				default:
					return nil, err
				}
			}
		}
		paths, err := t.paths(ctx, layoutLog, r.LayoutID, max(r.After, st.Layout.Version-r.MaxBack), st.Layout.Version)
		if err != nil {
			return nil, err
		}
		st.Paths = paths
		for _, id := range r.Widgets {
			w, err := t.Widget(ctx, st.Layout.Owner, id)
			switch dsync.ErrorCode(err) {
			case "":
				st.Widgets = append(st.Widgets, w)
			case dsync.CodeNotFound:
			default:
				return nil, err
			}
		}
	}
	return out, nil
}

// WriteLayouts writes a group's edits: per layout, one compare-and-swap UPDATE of its
// document, one INSERT of each change, and the trim.
func (t *tx) WriteLayouts(ctx context.Context, ws []dsync.LayoutWrite) error {
	for _, w := range ws {
		l := w.Layout
		if err := storekit.CheckLayoutWrite(w); err != nil {
			return err
		}
		items, settings, err := encodeLayout(l)
		if err != nil {
			return err
		}
		if t.s.closed.Load() {
			return storekit.Closed()
		}
		res, err := t.tx.ExecContext(ctx, `UPDATE layouts
			SET name = ?, is_default = ?, columns = ?, items = ?, settings = ?, version = ?, updated_at = ?
			WHERE id = ? AND owner = ? AND version = ?`,
			l.Name, boolInt(l.IsDefault), l.Columns, items, settings, l.Version, storekit.UnixMilli(l.UpdatedAt),
			l.ID, l.Owner, w.From)
		if err := t.checkSwapped(ctx, "layouts", "layout", l.ID, l.Owner, res, err); err != nil {
			return err
		}
		for _, c := range w.Changes {
			if err := t.insertChange(ctx, layoutLog, l.ID, c); err != nil {
				return err
			}
		}
		if w.TrimUpTo > 0 {
			if err := t.trim(ctx, layoutLog, l.ID, w.TrimUpTo); err != nil {
				return err
			}
		}
	}
	return nil
}
