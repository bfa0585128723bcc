package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// Sharing (SPEC §10): a layout's access list is layouts.access_version with the rows
// of layout_members; its links are the rows of layout_links. Both go with the layout
// (ON DELETE CASCADE).

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

func scanLink(row pgx.Row) (dsync.Link, error) {
	var (
		l                dsync.Link
		role             string
		created, expires time.Time
	)
	if err := row.Scan(&l.ID, &l.LayoutID, &role, &l.Hash, &created, &expires, &l.Revoked); err != nil {
		return dsync.Link{}, err
	}
	l.Role = dsync.Role(role)
	l.CreatedAt = dsync.NewTime(created)
	l.ExpiresAt = dsync.NewTime(expires)
	return l, nil
}

func scanShared(row pgx.Row) (dsync.SharedLayout, error) {
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
	l, err := scanLayoutWith(r.q.QueryRow(ctx,
		`SELECT `+layoutColsL+`, CASE WHEN l.owner = $2 THEN 'owner' ELSE coalesce(m.role, '') END
		 FROM layouts l LEFT JOIN layout_members m ON m.layout_id = l.id AND m.user_id = $2
		 WHERE l.id = $1`, id, user), &role)
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := r.q.Query(ctx,
		`SELECT l.owner, l.access_version, m.user_id, m.role
		 FROM layouts l LEFT JOIN layout_members m ON m.layout_id = l.id
		 WHERE l.id = $1`, layoutID)
	if err != nil {
		return dsync.Access{}, r.s.mapErr(ctx, "read access", err)
	}
	defer rows.Close()
	a := dsync.Access{LayoutID: layoutID, Users: map[string]dsync.Role{}}
	found := false
	for rows.Next() {
		var user, role *string
		if err := rows.Scan(&a.Owner, &a.Version, &user, &role); err != nil {
			return dsync.Access{}, r.s.mapErr(ctx, "read access", err)
		}
		found = true
		if user != nil && role != nil {
			a.Users[*user] = dsync.Role(*role)
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
		 WHERE m.user_id = $1 AND l.owner <> $1
		 ORDER BY l.created_at, l.id`, user)
}

// Link returns one link, revoked or expired as it may be.
func (r reader) Link(ctx context.Context, id string) (dsync.Link, error) {
	if r.s.closed.Load() {
		return dsync.Link{}, storekit.Closed()
	}
	l, err := scanLink(r.q.QueryRow(ctx, `SELECT `+linkCols+` FROM layout_links WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
		`SELECT `+linkCols+` FROM layout_links WHERE layout_id = $1 AND NOT revoked
		 ORDER BY created_at, id`, layoutID)
}

// PutAccess replaces a.LayoutID's members with a.Users if its access version is
// a.Version-1. The UPDATE of the layout's row is the compare-and-swap: it holds the
// row until commit, so of concurrent puts on one version one wins and the others,
// re-checking the version once it commits, are stale.
func (t *tx) PutAccess(ctx context.Context, a dsync.Access) error {
	if err := storekit.CheckAccess(a); err != nil {
		return err
	}
	users, roles := storekit.Members(a.Users)
	return t.atomic(ctx, func() error {
		tag, err := t.tx.Exec(ctx, `UPDATE layouts SET access_version = $2 WHERE id = $1 AND access_version = $3`,
			a.LayoutID, a.Version, a.Version-1)
		if err != nil {
			return t.s.mapWriteErr(ctx, "access list", "put access", err)
		}
		if tag.RowsAffected() != 1 {
			return t.accessStaleOrGone(ctx, a.LayoutID)
		}
		if _, err := t.tx.Exec(ctx, `DELETE FROM layout_members WHERE layout_id = $1`, a.LayoutID); err != nil {
			return t.s.mapWriteErr(ctx, "access list", "put access", err)
		}
		if len(users) == 0 {
			return nil
		}
		if _, err := t.tx.Exec(ctx, `INSERT INTO layout_members (layout_id, user_id, role)
			SELECT $1::text, m.user_id, m.role FROM unnest($2::text[], $3::text[]) AS m (user_id, role)`,
			a.LayoutID, users, roles); err != nil {
			return t.s.mapWriteErr(ctx, "access list", "put access", err)
		}
		return nil
	})
}

// accessStaleOrGone tells why PutAccess's compare-and-swap matched no row: the layout
// is gone (not_found) or its access list is at another version (ErrStale).
func (t *tx) accessStaleOrGone(ctx context.Context, layoutID string) error {
	var one int
	err := t.tx.QueryRow(ctx, `SELECT 1 FROM layouts WHERE id = $1`, layoutID).Scan(&one)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storekit.NotFound("layout")
	case err != nil:
		return t.s.mapErr(ctx, "put access", err)
	}
	return storekit.Stale("access list", nil)
}

// CreateLink inserts l if its layout is there. The foreign key catches a layout
// deleted by a transaction that commits meanwhile.
func (t *tx) CreateLink(ctx context.Context, l dsync.Link) error {
	return t.atomic(ctx, func() error {
		tag, err := t.tx.Exec(ctx, `INSERT INTO layout_links (`+linkCols+`)
			SELECT $1::text, id, $3::text, $4::bytea, $5::timestamptz, $6::timestamptz, $7::boolean
			FROM layouts WHERE id = $2`,
			l.ID, l.LayoutID, string(l.Role), l.Hash, pgTime(l.CreatedAt), pgTime(l.ExpiresAt), l.Revoked)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == codeForeignKeyViolation {
				return storekit.NotFound("layout")
			}
			return t.s.mapWriteErr(ctx, "link", "create link", err)
		}
		if tag.RowsAffected() == 0 {
			return storekit.NotFound("layout")
		}
		return nil
	})
}

// RevokeLink marks link id of layout layoutID revoked, unless it is revoked already.
func (t *tx) RevokeLink(ctx context.Context, layoutID, id string) error {
	return t.atomic(ctx, func() error {
		tag, err := t.tx.Exec(ctx, `UPDATE layout_links SET revoked = true
			WHERE id = $1 AND layout_id = $2 AND NOT revoked`, id, layoutID)
		if err != nil {
			return t.s.mapWriteErr(ctx, "link", "revoke link", err)
		}
		if tag.RowsAffected() == 0 {
			return storekit.NotFound("link")
		}
		return nil
	})
}
