package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// ReadForEdits reads what a group of layout edits needs in one round trip, with a
// fixed number of statements whatever the group's size (each over arrays): the heads
// (locked FOR UPDATE, in id order), the editors' memberships, the changes of the
// editIds, the paths after each layout's oldest base, and the widgets.
func (t *tx) ReadForEdits(ctx context.Context, reads []dsync.EditRead) ([]dsync.EditState, error) {
	if t.s.closed.Load() {
		return nil, storekit.Closed()
	}
	var (
		ids, users, editIDs, pathIDs, widgetLayouts, widgetIDs []string
		afters                                                 []int64
		maxBack                                                int64
	)
	at := make(map[string]int, len(reads))
	for i, r := range reads {
		at[r.LayoutID] = i
		ids = append(ids, r.LayoutID)
		users = append(users, r.Users...)
		editIDs = append(editIDs, r.EditIDs...)
		pathIDs, afters = append(pathIDs, r.LayoutID), append(afters, r.After)
		maxBack = max(maxBack, r.MaxBack)
		for _, w := range r.Widgets {
			widgetLayouts, widgetIDs = append(widgetLayouts, r.LayoutID), append(widgetIDs, w)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+layoutCols+` FROM layouts WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	b.Queue(`SELECT layout_id, user_id, role FROM layout_members WHERE layout_id = ANY($1) AND user_id = ANY($2)`, ids, users)
	b.Queue(`SELECT l.id, `+qualify("c", changeCols)+` FROM layout_changes c JOIN layouts l ON l.log_id = c.log_id
		WHERE c.edit_id = ANY($1::uuid[])`, editIDs)
	b.Queue(`SELECT l.id, c.version, coalesce(c.paths, (SELECT json_agg(e ->> 'path') FROM json_array_elements(c.ops) e), '[]'::json)
		FROM unnest($1::text[], $2::bigint[]) AS r(id, after)
		JOIN layouts l ON l.id = r.id
		JOIN layout_changes c ON c.log_id = l.log_id AND c.version > greatest(r.after, l.version - $3)
		ORDER BY l.id, c.version`, pathIDs, afters, maxBack)
	b.Queue(`SELECT r.layout_id, `+qualify("w", widgetCols)+`
		FROM unnest($1::text[], $2::text[]) AS r(layout_id, widget_id)
		JOIN layouts l ON l.id = r.layout_id
		JOIN widgets w ON w.id = r.widget_id AND w.owner = l.owner`, widgetLayouts, widgetIDs)
	res := t.tx.SendBatch(ctx, b)
	out := make([]dsync.EditState, len(reads))
	for i := range out {
		out[i].Err = storekit.NotFound("layout")
	}
	err := func() error {
		if err := collect(res, func(row pgx.Row) error {
			l, err := scanLayout(row)
			if err != nil {
				return err
			}
			st := &out[at[l.ID]]
			st.Layout, st.Err = l, nil
			st.Roles = make(map[string]dsync.Role, len(reads[at[l.ID]].Users))
			for _, u := range reads[at[l.ID]].Users {
				st.Roles[u] = ""
				if u == l.Owner {
					st.Roles[u] = dsync.RoleOwner
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := collect(res, func(row pgx.Row) error {
			var id, u, role string
			if err := row.Scan(&id, &u, &role); err != nil {
				return err
			}
			if st := &out[at[id]]; st.Err == nil {
				if r, asked := st.Roles[u]; asked && r != dsync.RoleOwner {
					st.Roles[u] = dsync.Role(role)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := collect(res, func(row pgx.Row) error {
			var id string
			c, err := scanChangeWith(row, &id)
			if err != nil {
				return err
			}
			if i, ok := at[id]; ok && slices.Contains(reads[i].EditIDs, c.EditID) {
				if out[i].Edits == nil {
					out[i].Edits = map[string]dsync.Change{}
				}
				out[i].Edits[c.EditID] = c
			}
			return nil
		}); err != nil {
			return err
		}
		if err := collect(res, func(row pgx.Row) error {
			var id string
			var paths []byte
			var c dsync.Change
			if err := row.Scan(&id, &c.Version, &paths); err != nil {
				return err
			}
			if err := storekit.DecodePaths(&c, paths); err != nil {
				return err
			}
			i := at[id]
			// Each layout's own MaxBack (the query took the largest).
			if st := &out[i]; c.Version > st.Layout.Version-reads[i].MaxBack {
				st.Paths = append(st.Paths, c)
			}
			return nil
		}); err != nil {
			return err
		}
		return collect(res, func(row pgx.Row) error {
			var id string
			w, err := scanWidgetWith(row, &id)
			if err != nil {
				return err
			}
			out[at[id]].Widgets = append(out[at[id]].Widgets, w)
			return nil
		})
	}()
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, t.s.mapWriteErr(ctx, "layout", "read layouts for edits", err)
	}
	for i := range out {
		if out[i].Err != nil {
			out[i].Roles = nil
		}
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

// WriteLayouts writes a group's edits in one round trip, with at most three
// statements whatever the group's size (each over arrays): one compare-and-swap
// UPDATE of every layout's document, one INSERT of every change, and the trims.
func (t *tx) WriteLayouts(ctx context.Context, ws []dsync.LayoutWrite) error {
	if t.s.closed.Load() {
		return storekit.Closed()
	}
	var (
		ids, owners, names, items, settings []string
		froms, versions                     []int64
		defaults                            []bool
		columns                             []int32
		updated                             []time.Time
		cIDs, cAuthors, cClients, cOps      []string
		cDocs, cEditIDs, cPaths             []*string
		cVersions                           []int64
		cRestored                           []*int64
		cRebased                            []bool
		cTimes                              []time.Time
		trimIDs                             []string
		trimTo                              []int64
	)
	for _, w := range ws {
		l := w.Layout
		if err := storekit.CheckLayoutWrite(w); err != nil {
			return err
		}
		it, st, err := encodeLayout(l)
		if err != nil {
			return err
		}
		ids, owners, names, items, settings = append(ids, l.ID), append(owners, l.Owner), append(names, l.Name), append(items, it), append(settings, st)
		froms, versions, defaults = append(froms, w.From), append(versions, l.Version), append(defaults, l.IsDefault)
		columns, updated = append(columns, int32(l.Columns)), append(updated, pgTime(l.UpdatedAt))
		for _, c := range w.Changes {
			ops, doc, err := storekit.EncodeChange(c)
			if err != nil {
				return err
			}
			cIDs, cVersions, cOps = append(cIDs, l.ID), append(cVersions, c.Version), append(cOps, ops)
			cDocs, cAuthors, cClients = append(cDocs, textOrNil(doc)), append(cAuthors, c.Author), append(cClients, c.Client)
			cEditIDs, cRebased, cRestored = append(cEditIDs, textOrNil(storekit.NullString(c.EditID))), append(cRebased, c.Rebased), append(cRestored, c.RestoredFrom)
			cTimes, cPaths = append(cTimes, pgTime(c.Time)), append(cPaths, textOrNil(storekit.PathsFor(c.Ops, ops)))
		}
		if w.TrimUpTo > 0 {
			trimIDs, trimTo = append(trimIDs, l.ID), append(trimTo, w.TrimUpTo)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE layouts l
		SET name = u.name, is_default = u.is_default, columns = u.columns, items = u.items, settings = u.settings,
		    version = u.version, updated_at = u.updated_at
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bool[], $6::int[], $7::json[], $8::json[],
		            $9::bigint[], $10::timestamptz[])
		     AS u(id, owner, from_version, name, is_default, columns, items, settings, version, updated_at)
		WHERE l.id = u.id AND l.owner = u.owner AND l.version = u.from_version`,
		ids, owners, froms, names, defaults, columns, items, settings, versions, updated)
	b.Queue(`INSERT INTO layout_changes (log_id, `+changeCols+`, paths)
		SELECT l.log_id, c.version, c.ops, c.doc, c.author, c.client, c.edit_id, c.rebased, c.restored_from, c.created_at, c.paths
		FROM unnest($1::text[], $2::bigint[], $3::json[], $4::json[], $5::text[], $6::text[], $7::uuid[], $8::bool[],
		            $9::bigint[], $10::timestamptz[], $11::json[])
		     AS c(id, version, ops, doc, author, client, edit_id, rebased, restored_from, created_at, paths)
		JOIN layouts l ON l.id = c.id`,
		cIDs, cVersions, cOps, cDocs, cAuthors, cClients, cEditIDs, cRebased, cRestored, cTimes, cPaths)
	if len(trimIDs) > 0 {
		b.Queue(`DELETE FROM layout_changes c USING unnest($1::text[], $2::bigint[]) AS t(id, up_to), layouts l
			WHERE l.id = t.id AND c.log_id = l.log_id AND c.version <= t.up_to`, trimIDs, trimTo)
	}
	res := t.tx.SendBatch(ctx, b)
	err := func() error {
		tag, err := res.Exec()
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(ws)) {
			return storekit.Stale("layout", nil)
		}
		if tag, err = res.Exec(); err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(cIDs)) {
			return fmt.Errorf("write layouts: %d of %d changes appended", tag.RowsAffected(), len(cIDs))
		}
		if len(trimIDs) > 0 {
			_, err = res.Exec()
		}
		return err
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

// textOrNil is a nullable text parameter (storekit's nil or string) as an array
// element.
func textOrNil(v any) *string {
	if s, ok := v.(string); ok {
		return &s
	}
	return nil
}
