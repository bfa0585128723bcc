package migrations_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"sync"
	"testing"

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
