package sqlite_test

import (
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
