package sqlite

import (
	"path/filepath"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

func TestOpen_SetsPragmasOnEveryConnection(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	tests := []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"busy_timeout", "10000"},
		{"foreign_keys", "1"},
		{"synchronous", "2"},
	}
	// Hold several connections at once so the check is not only about the first one.
	conns := make([]interface{ Close() error }, 0, maxOpenConns)
	for range maxOpenConns {
		c, err := s.db.Conn(t.Context())
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		conns = append(conns, c)
		for _, tc := range tests {
			var got string
			if err := c.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s: got %s, want %s", tc.pragma, got, tc.want)
			}
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

func TestOpen_RefusesPathsThatAreNotPlainFiles(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := Open(t.Context(), path); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q): got nil error, want one", path)
		}
	}
}

func TestOpen_TwiceOnOneFileKeepsData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "twice.db")
	for round := range int64(2) {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		d, err := s.Dashboard(ctx, "alice")
		if err != nil || d.Version != round {
			t.Fatalf("Dashboard after reopening %d times: got version %d, %v; want %d", round, d.Version, err, round)
		}
		d.Version++
		if err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.PutDashboard(ctx, d) }); err != nil {
			t.Fatalf("PutDashboard: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}
