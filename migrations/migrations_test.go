package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/migrations"
)

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openPostgres(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestLatest_BothDialectsHaveTheSameVersions(t *testing.T) {
	pg, err := migrations.Latest(migrations.Postgres)
	if err != nil {
		t.Fatalf("Latest(postgres): %v", err)
	}
	lite, err := migrations.Latest(migrations.SQLite)
	if err != nil {
		t.Fatalf("Latest(sqlite): %v", err)
	}
	if pg < 1 || pg != lite {
		t.Errorf("latest versions: got postgres %d, sqlite %d; want equal and at least 1", pg, lite)
	}
}

func TestUnknownDialectIsAnError(t *testing.T) {
	db := openSQLite(t)
	if _, err := migrations.Up(t.Context(), db, "oracle"); err == nil {
		t.Errorf("Up with an unknown dialect: got nil error, want one")
	}
	if _, err := migrations.Latest("oracle"); err == nil {
		t.Errorf("Latest with an unknown dialect: got nil error, want one")
	}
}

func TestUp(t *testing.T) {
	tests := []struct {
		name    string
		dialect migrations.Dialect
		open    func(t *testing.T) *sql.DB
	}{
		{"sqlite", migrations.SQLite, func(t *testing.T) *sql.DB { return openSQLite(t) }},
		{"postgres", migrations.Postgres, func(t *testing.T) *sql.DB { return openPostgres(t, testpg.NewDatabase(t)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/AppliesEverythingOnceAndReportsStatus", func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := tc.open(t)
			latest, err := migrations.Latest(tc.dialect)
			if err != nil {
				t.Fatalf("Latest: %v", err)
			}
			wantAll := make([]int64, 0, latest)
			for v := int64(1); v <= latest; v++ {
				wantAll = append(wantAll, v)
			}

			st, err := migrations.Status(ctx, db, tc.dialect)
			if err != nil {
				t.Fatalf("Status before Up: %v", err)
			}
			for _, s := range st {
				if s.Applied || !s.AppliedAt.IsZero() {
					t.Errorf("before Up, %s: got applied %t at %v, want pending", s.Name, s.Applied, s.AppliedAt)
				}
			}

			applied, err := migrations.Up(ctx, db, tc.dialect)
			if err != nil {
				t.Fatalf("Up: %v", err)
			}
			if !slices.Equal(applied, wantAll) {
				t.Errorf("first Up applied %v, want %v", applied, wantAll)
			}
			applied, err = migrations.Up(ctx, db, tc.dialect)
			if err != nil || len(applied) != 0 {
				t.Errorf("second Up: got %v, %v; want nothing applied", applied, err)
			}

			st, err = migrations.Status(ctx, db, tc.dialect)
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if len(st) != int(latest) {
				t.Fatalf("Status: got %d migrations, want %d", len(st), latest)
			}
			for i, s := range st {
				if s.Version != int64(i+1) || !s.Applied || s.AppliedAt.IsZero() || filepath.Ext(s.Name) != ".sql" {
					t.Errorf("status %d: got %+v, want version %d applied with a time", i, s, i+1)
				}
			}
			for _, table := range []string{"layouts", "layout_changes", "widgets", "widget_changes", "dashboards", "layout_members", "layout_links"} {
				if _, err := db.ExecContext(ctx, "SELECT count(*) FROM "+table); err != nil {
					t.Errorf("table %s: %v", table, err)
				}
			}
		})
	}

	t.Run("postgres/ConcurrentUpAppliesEachMigrationOnce", func(t *testing.T) {
		t.Parallel()
		url := testpg.NewDatabase(t)
		const instances = 4
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total []int64
		)
		for range instances {
			wg.Go(func() {
				db := openPostgres(t, url)
				applied, err := migrations.Up(context.WithoutCancel(t.Context()), db, migrations.Postgres)
				if err != nil {
					t.Errorf("Up: %v", err)
					return
				}
				mu.Lock()
				total = append(total, applied...)
				mu.Unlock()
			})
		}
		wg.Wait()
		latest, _ := migrations.Latest(migrations.Postgres)
		slices.Sort(total)
		if len(total) != int(latest) || (len(total) > 0 && total[len(total)-1] != latest) {
			t.Errorf("versions applied by %d instances together: got %v, want 1..%d once each", instances, total, latest)
		}
	})
}

// TestCompactLayoutLog_KeepsTheRowsWrittenBefore: migration 4 moves the layout op log
// to rows keyed by the layout's log_id with binary editIds; every row written before
// it is still its layout's, with its editId (a UUID in the standard or 32-digit form;
// any other is dropped), and a layout's rows still go with it.
func TestCompactLayoutLog_KeepsTheRowsWrittenBefore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dialect migrations.Dialect
		open    func(t *testing.T) *sql.DB
		arg     func(n int) string
		now     string
	}{
		{"sqlite", migrations.SQLite, func(t *testing.T) *sql.DB {
			// As the store opens it: foreign keys on, on one connection.
			db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_pragma=foreign_keys(1)&_txlock=immediate")
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(1)
			t.Cleanup(func() { _ = db.Close() })
			return db
		}, func(int) string { return "?" }, "0"},
		{"postgres", migrations.Postgres, func(t *testing.T) *sql.DB { return openPostgres(t, testpg.NewDatabase(t)) },
			func(n int) string { return fmt.Sprintf("$%d", n) }, "now()"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := tc.open(t)
			if _, err := migrations.UpTo(ctx, db, tc.dialect, 3); err != nil {
				t.Fatal(err)
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(ctx, q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			a := tc.arg
			for _, id := range []string{"la", "lb"} {
				exec(`INSERT INTO layouts (id, owner, name, is_default, columns, items, settings, version, created_at, updated_at)
					VALUES (`+a(1)+`, 'alice', 'n', false, 12, '{}', '{}', 2, `+tc.now+`, `+tc.now+`)`, id)
			}
			if tc.dialect == migrations.SQLite {
				exec(`UPDATE layouts SET is_default = 0`)
			}
			edits := map[string]string{ // as written → as kept
				"0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e6f": "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e6f",
				"0192F0C46C3E7B8A9D3E1A2B3C4D5E70":     "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e70",
				"not-a-uuid":                           "",
			}
			n, inB := 0, 0
			for raw := range edits {
				n++
				layout := []string{"la", "lb"}[n%2]
				if layout == "lb" {
					inB++
				}
				exec(`INSERT INTO layout_changes (layout_id, version, ops, author, client, edit_id, created_at)
					VALUES (`+a(1)+`, `+a(2)+`, '[]', 'alice', '', `+a(3)+`, `+tc.now+`)`, layout, n, raw)
			}
			if _, err := migrations.Up(ctx, db, tc.dialect); err != nil {
				t.Fatal(err)
			}
			rows, err := db.QueryContext(ctx, `SELECT l.id, c.version, c.edit_id FROM layout_changes c JOIN layouts l ON l.log_id = c.log_id ORDER BY c.version`)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for rows.Next() {
				var (
					id      string
					version int
					editID  any
				)
				if err := rows.Scan(&id, &version, &editID); err != nil {
					t.Fatal(err)
				}
				var kept string
				switch v := editID.(type) {
				case []byte:
					if u, err := uuid.FromBytes(v); err == nil {
						kept = u.String()
					} else {
						kept = string(v)
					}
				case string:
					kept = v
				}
				got[fmt.Sprintf("%s %d", id, version)] = kept
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(edits) {
				t.Fatalf("after the migration the log has %d rows, want %d: %v", len(got), len(edits), got)
			}
			kept := map[string]bool{}
			for _, v := range got {
				kept[v] = true
			}
			for _, want := range edits {
				if !kept[want] {
					t.Errorf("editId %q is not in the migrated log %v", want, got)
				}
			}
			exec(`DELETE FROM layouts WHERE id = 'la'`)
			var left int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM layout_changes`).Scan(&left); err != nil {
				t.Fatal(err)
			}
			if want := inB; left != want {
				t.Errorf("after deleting a layout the log has %d rows, want %d (the other layout's)", left, want)
			}
		})
	}
}
