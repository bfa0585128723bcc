package main

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantMode fails t unless path exists with permissions mode.
func wantMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", filepath.Base(path), err)
		return
	}
	if got := fi.Mode().Perm(); got != mode {
		t.Errorf("%s has mode %v, want %v", filepath.Base(path), got, mode)
	}
}

// TestServe_DataDirAndItsFilesArePrivate: the embedded data dir is 0700 and its
// files (the database, its -wal and -shm, the --dev secret) 0600, whether serve
// creates them or finds them with wider modes (SPEC §12).
func TestServe_DataDirAndItsFilesArePrivate(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("ab", 32) // a kept secret of the right length
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
	}{
		{"created by serve", func(t *testing.T, dir string) {}},
		{"found with wider modes", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string]string{"jwt-secret": secret + "\n", "dashsync.db": "", "dashsync.db-wal": "", "dashsync.db-shm": ""} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// WriteFile's mode passes through the umask; make them as wide as asked.
			for _, p := range []string{dir, filepath.Join(dir, "jwt-secret"), filepath.Join(dir, "dashsync.db"),
				filepath.Join(dir, "dashsync.db-wal"), filepath.Join(dir, "dashsync.db-shm")} {
				mode := fs.FileMode(0o644)
				if p == dir {
					mode = 0o755
				}
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			tc.prepare(t, dir)
			s := startServe(t, envOf(), "--dev", "--addr", "127.0.0.1:0", "--data-dir", dir)
			// A write, so that SQLite has its -wal and -shm files in use.
			if status, body := request(t, "POST", s.url+"/api/dashboard/layouts", s.token, `{"name":"Private"}`); status != http.StatusCreated {
				t.Fatalf("create a layout: got %d %s", status, body)
			}
			wantMode(t, dir, 0o700)
			for _, name := range []string{"dashsync.db", "dashsync.db-wal", "dashsync.db-shm", "jwt-secret"} {
				wantMode(t, filepath.Join(dir, name), 0o600)
			}
			if err := s.stop(t); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		})
	}
}

// TestMigrate_CreatesAPrivateDatabaseFile: migrate on a fresh data dir makes it and
// the database as private as serve does.
func TestMigrate_CreatesAPrivateDatabaseFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if err := run(t.Context(), []string{"migrate", "up", "--data-dir", dir}, io.Discard, io.Discard, envOf()); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, "dashsync.db"), 0o600)
}
