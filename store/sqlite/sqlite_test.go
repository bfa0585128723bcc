package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/dashsync/dashsync/store/sqlite"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/sync/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) dsync.Store {
		t.Helper()
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "dashsync.db"))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestOpLog_BytesPerVersion: a one-field edit of a 200-item layout adds at most
// storetest.MaxOpLogBytesPerVersion to the op log (its table and indexes, as SQLite's
// dbstat counts their pages).
func TestOpLog_BytesPerVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dashsync.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	size := func(ctx context.Context) (n int64, err error) {
		err = db.QueryRowContext(ctx, `SELECT coalesce(sum(pgsize), 0) FROM dbstat
			WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'layout_changes')`).Scan(&n)
		return n, err
	}
	if per := storetest.OpLogBytesPerVersion(t, s, size); per > storetest.MaxOpLogBytesPerVersion {
		t.Errorf("%.0f bytes per version, want at most %d", per, storetest.MaxOpLogBytesPerVersion)
	}
}
