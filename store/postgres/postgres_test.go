package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/store/postgres"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/sync/storetest"
)

func TestConformance(t *testing.T) {
	url := testpg.NewDatabase(t) // one database for the suite; cases use their own ids
	storetest.Run(t, func(t testing.TB) dsync.Store {
		t.Helper()
		s, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestOpen_UnreachableServerIsUnavailable(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:1/dashsync?sslmode=disable&connect_timeout=2")
	if got := dsync.ErrorCode(err); got != dsync.CodeUnavailable {
		t.Errorf("Open: got %v (code %q), want code %q", err, got, dsync.CodeUnavailable)
	}
}

func TestServerClosingConnectionsIsUnavailableThenRecovers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testpg.NewDatabase(t)
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(ctx)
	// Terminate every other session on the database (the pool's), waiting until they are gone.
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatalf("terminate: %v", err)
	}

	_, err = s.Layouts(ctx, "someone")
	if got := dsync.ErrorCode(err); got != dsync.CodeUnavailable {
		t.Errorf("Layouts on a terminated connection: got %v (code %q), want code %q", err, got, dsync.CodeUnavailable)
	}
	// The pool drops dead connections as it meets them and dials new ones.
	for attempt := 1; ; attempt++ {
		_, err := s.Layouts(ctx, "someone")
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("Layouts after the pool reconnects: got %v, want nil", err)
		}
	}
}

// TestOpLog_BytesPerVersion: a one-field edit of a 200-item layout adds at most
// storetest.MaxOpLogBytesPerVersion to the op log (the table with its indexes and
// TOAST, as pg_total_relation_size counts them).
func TestOpLog_BytesPerVersion(t *testing.T) {
	url := testpg.NewDatabase(t)
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	size := func(ctx context.Context) (n int64, err error) {
		err = conn.QueryRow(ctx, `SELECT pg_total_relation_size('layout_changes')`).Scan(&n)
		return n, err
	}
	if per := storetest.OpLogBytesPerVersion(t, s, size); per > storetest.MaxOpLogBytesPerVersion {
		t.Errorf("%.0f bytes per version, want at most %d", per, storetest.MaxOpLogBytesPerVersion)
	}
}
