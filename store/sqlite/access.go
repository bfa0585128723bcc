package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// Sharing (SPEC §10): a layout's access list is layouts.access_version with the rows
// of layout_members; its links are the rows of layout_links. Both go with the layout:
// the foreign keys cascade, and DeleteLayout deletes them itself too.

const linkCols = `id, layout_id, role, hash, created_at, expires_at, revoked`

// layoutColsL is layoutCols of the layouts table aliased l, for joins.
var layoutColsL = qualify("l", layoutCols)

// qualify prefixes each column of a comma-separated list with alias.
func qualify(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

func scanLink(row scanner) (dsync.Link, error) {
	var (
		l                dsync.Link
		role             string
		created, expires int64
		revoked          int64
	)
	if err := row.Scan(&l.ID, &l.LayoutID, &role, &l.Hash, &created, &expires, &revoked); err != nil {
		return dsync.Link{}, err
	}
	l.Role = dsync.Role(role)
	l.CreatedAt = storekit.FromUnixMilli(created)
	l.ExpiresAt = storekit.FromUnixMilli(expires)
	l.Revoked = revoked != 0
	return l, nil
}

func scanShared(row scanner) (dsync.SharedLayout, error) {
	var role string
	l, err := scanLayoutWith(row, &role)
	if err != nil {
		return dsync.SharedLayout{}, err
	}
	return dsync.SharedLayout{Layout: l, Role: dsync.Role(role)}, nil
}

// LayoutAs returns layout id with user's role on it, in one query: the layout joined
// with user's membership, if any.
func (r reader) LayoutAs(ctx context.Context, id, user string) (dsync.Layout, dsync.Role, error) {
	if r.s.closed.Load() {
		return dsync.Layout{}, "", storekit.Closed()
	}
	var role string
	l, err := scanLayoutWith(r.q.QueryRowContext(ctx,
		`SELECT `+layoutColsL+`, CASE WHEN l.owner = ? THEN 'owner' ELSE coalesce(m.role, '') END
		 FROM layouts l LEFT JOIN layout_members m ON m.layout_id = l.id AND m.user_id = ?
		 WHERE l.id = ?`, user, user, id), &role)
	if errors.Is(err, sql.ErrNoRows) {
		return dsync.Layout{}, "", storekit.NotFound("layout")
	}
	if err != nil {
		return dsync.Layout{}, "", r.s.mapErr(ctx, "read layout", err)
	}
	return l, dsync.Role(role), nil
}

// Access returns a layout's access list, in one query: the layout's owner and access
// version joined with its members (one row with no member when there is none).
func (r reader) Access(ctx context.Context, layoutID string) (dsync.Access, error) {
	if r.s.closed.Load() {
		return dsync.Access{}, storekit.Closed()
	}
	rows, err := r.q.QueryContext(ctx,
		`SELECT l.owner, l.access_version, m.user_id, m.role
		 FROM layouts l LEFT JOIN layout_members m ON m.layout_id = l.id
		 WHERE l.id = ?`, layoutID)
	if err != nil {
		return dsync.Access{}, r.s.mapErr(ctx, "read access", err)
	}
	defer rows.Close()
	a := dsync.Access{LayoutID: layoutID, Users: map[string]dsync.Role{}}
	found := false
	for rows.Next() {
		var user, role sql.NullString
		if err := rows.Scan(&a.Owner, &a.Version, &user, &role); err != nil {
			return dsync.Access{}, r.s.mapErr(ctx, "read access", err)
		}
		found = true
		if user.Valid && role.Valid {
			a.Users[user.String] = dsync.Role(role.String)
		}
	}
	if err := rows.Err(); err != nil {
		return dsync.Access{}, r.s.mapErr(ctx, "read access", err)
	}
	if !found {
		return dsync.Access{}, storekit.NotFound("layout")
	}
	return a, nil
}

// SharedWith returns the layouts user is a member of and does not own, oldest first.
func (r reader) SharedWith(ctx context.Context, user string) ([]dsync.SharedLayout, error) {
	return queryAll(ctx, r, "list shared layouts", scanShared,
		`SELECT `+layoutColsL+`, m.role
		 FROM layout_members m JOIN layouts l ON l.id = m.layout_id
		 WHERE m.user_id = ? AND l.owner <> ?
		 ORDER BY l.created_at, l.id`, user, user)
}

// Link returns one link, revoked or expired as it may be.
func (r reader) Link(ctx context.Context, id string) (dsync.Link, error) {
	if r.s.closed.Load() {
		return dsync.Link{}, storekit.Closed()
	}
	l, err := scanLink(r.q.QueryRowContext(ctx, `SELECT `+linkCols+` FROM layout_links WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return dsync.Link{}, storekit.NotFound("link")
	}
	if err != nil {
		return dsync.Link{}, r.s.mapErr(ctx, "read link", err)
	}
	return l, nil
}

// Links returns a layout's links that are not revoked, oldest first.
func (r reader) Links(ctx context.Context, layoutID string) ([]dsync.Link, error) {
	return queryAll(ctx, r, "list links", scanLink,
		`SELECT `+linkCols+` FROM layout_links WHERE layout_id = ? AND revoked = 0
		 ORDER BY created_at, id`, layoutID)
}

// PutAccess replaces a.LayoutID's members with a.Users if its access version is
// a.Version-1.
func (t *tx) PutAccess(ctx context.Context, a dsync.Access) error {
	if err := storekit.CheckAccess(a); err != nil {
		return err
	}
	users, roles := storekit.Members(a.Users)
	return t.atomic(ctx, func() error {
		res, err := t.tx.ExecContext(ctx, `UPDATE layouts SET access_version = ? WHERE id = ? AND access_version = ?`,
			a.Version, a.LayoutID, a.Version-1)
		if err != nil {
			return t.s.mapWriteErr(ctx, "access list", "put access", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return t.s.mapErr(ctx, "put access", err)
		} else if n != 1 {
			return t.accessStaleOrGone(ctx, a.LayoutID)
		}
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM layout_members WHERE layout_id = ?`, a.LayoutID); err != nil {
			return t.s.mapWriteErr(ctx, "access list", "put access", err)
		}
		for i, u := range users {
			if _, err := t.tx.ExecContext(ctx, `INSERT INTO layout_members (layout_id, user_id, role) VALUES (?, ?, ?)`,
				a.LayoutID, u, roles[i]); err != nil {
				return t.s.mapWriteErr(ctx, "access list", "put access", err)
			}
		}
		return nil
	})
}

// accessStaleOrGone tells why PutAccess's compare-and-swap matched no row: the layout
// is gone (not_found) or its access list is at another version (ErrStale).
func (t *tx) accessStaleOrGone(ctx context.Context, layoutID string) error {
	var one int
	err := t.tx.QueryRowContext(ctx, `SELECT 1 FROM layouts WHERE id = ?`, layoutID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storekit.NotFound("layout")
	case err != nil:
		return t.s.mapErr(ctx, "put access", err)
	}
	return storekit.Stale("access list", nil)
}

// CreateLink inserts l if its layout is there.
func (t *tx) CreateLink(ctx context.Context, l dsync.Link) error {
	return t.atomic(ctx, func() error {
		res, err := t.tx.ExecContext(ctx, `INSERT INTO layout_links (`+linkCols+`)
			SELECT ?, id, ?, ?, ?, ?, ? FROM layouts WHERE id = ?`,
			l.ID, string(l.Role), l.Hash, storekit.UnixMilli(l.CreatedAt), storekit.UnixMilli(l.ExpiresAt),
			boolInt(l.Revoked), l.LayoutID)
		if err != nil {
			return t.s.mapWriteErr(ctx, "link", "create link", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return t.s.mapErr(ctx, "create link", err)
		} else if n == 0 {
			return storekit.NotFound("layout")
		}
		return nil
	})
}

// RevokeLink marks link id of layout layoutID revoked, unless it is revoked already.
func (t *tx) RevokeLink(ctx context.Context, layoutID, id string) error {
	return t.atomic(ctx, func() error {
		res, err := t.tx.ExecContext(ctx, `UPDATE layout_links SET revoked = 1
			WHERE id = ? AND layout_id = ? AND revoked = 0`, id, layoutID)
		if err != nil {
			return t.s.mapWriteErr(ctx, "link", "revoke link", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return t.s.mapErr(ctx, "revoke link", err)
		} else if n == 0 {
			return storekit.NotFound("link")
		}
		return nil
	})
}
