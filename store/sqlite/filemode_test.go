package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dashsync/dashsync/store/sqlite"
)

// TestOpen_DatabaseFilesArePrivate: the database file and its -wal and -shm are
// 0600 after Open, whether Open created them or found them wider (SPEC §12).
func TestOpen_DatabaseFilesArePrivate(t *testing.T) {
	t.Parallel()
	for _, existing := range []bool{false, true} {
		name := map[bool]string{false: "created", true: "found with mode 0644"}[existing]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "dashsync.db")
			files := []string{path, path + "-wal", path + "-shm"}
			if existing {
				for _, p := range files {
					if err := os.WriteFile(p, nil, 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Chmod(p, 0o644); err != nil { // past the umask
						t.Fatal(err)
					}
				}
			}
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, p := range files {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("%s: %v", filepath.Base(p), err)
				}
				if got := fi.Mode().Perm(); got != 0o600 {
					t.Errorf("%s has mode %v, want 0600", filepath.Base(p), got)
				}
			}
		})
	}
}
