package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dashsync/dashsync/migrations"
	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// maxOpenConns bounds the file's connections: one writer at a time plus readers,
// which WAL lets run beside it.
const maxOpenConns = 4

// Store is a dsync.Store on one SQLite file. Create it with Open.
type Store struct {
	reader
	db *sql.DB
	// writer is a one-slot semaphore: InTx holds it from BEGIN to COMMIT, so writers
	// in this process queue here (in order, cancellable) instead of polling SQLite's
	// busy handler.
	writer chan struct{}
	closed atomic.Bool
	stmts  *stmtCache
}

var (
	_ dsync.Store = (*Store)(nil)
	_ dsync.Tx    = (*tx)(nil)
)

// Open opens (creating if needed) the SQLite database file at path, applies the
// pending migrations and returns a ready Store. path is a file path (not ":memory:",
// which would give each connection its own database) and must not contain '?'.
//
// The file, and its -wal and -shm companions, are readable and writable by their owner
// only (0600), also when they exist already: they hold every user's data. SQLite
// creates the companions with the database file's mode, so the file is created
// before SQLite opens it.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := openDB(path) // checks the path; connects only when first used
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	_ = f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = db.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	if _, err := migrations.Up(ctx, db, migrations.SQLite); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s := &Store{db: db, writer: make(chan struct{}, 1), stmts: newStmtCache(db)}
	s.reader = reader{s: s, q: cachedQueryer{c: s.stmts}}
	return s, nil
}

// Migrate applies the pending migrations to the database file at path and returns
// the versions it applied.
func Migrate(ctx context.Context, path string) ([]int64, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return migrations.Up(ctx, db, migrations.SQLite)
}

// MigrationStatus reports the migrations of the database file at path.
func MigrationStatus(ctx context.Context, path string) ([]migrations.MigrationStatus, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return migrations.Status(ctx, db, migrations.SQLite)
}

func openDB(path string) (*sql.DB, error) {
	if path == "" || strings.Contains(path, "?") || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite: %q is not a plain file path", path)
	}
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	return db, nil
}

// InTx runs fn in one IMMEDIATE transaction; see the package comment.
func (s *Store) InTx(ctx context.Context, fn func(dsync.Tx) error) error {
	if s.closed.Load() {
		return storekit.Closed()
	}
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writer }()

	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(ctx, "begin", err)
	}
	finished := false
	defer func() {
		if !finished { // fn panicked
			_ = sqlTx.Rollback()
		}
	}()
	q := cachedQueryer{c: s.stmts, tx: sqlTx}
	t := &tx{reader: reader{s: s, q: q}, tx: q}
	if err := fn(t); err != nil {
		finished = true
		_ = sqlTx.Rollback()
		return err
	}
	finished = true
	if err := sqlTx.Commit(); err != nil {
		// The transaction is over either way (database/sql has let it go), so a
		// fresh read tells whether it committed.
		return storekit.CommitUnknown(s.mapErr(ctx, "commit", err), true)
	}
	return nil
}

// Ping checks that the database file answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return storekit.Closed()
	}
	if err := s.db.PingContext(ctx); err != nil {
		return s.mapErr(ctx, "ping", err)
	}
	return nil
}

// Close closes the database; later calls fail with CodeUnavailable. Closing twice is
// safe.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stmts.close()
	return s.db.Close()
}

// mapErr translates a database error into the store's error conventions.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if s.closed.Load() || errors.Is(err, sql.ErrConnDone) {
		return storekit.Closed()
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL:
			return dsync.Unavailable(fmt.Errorf("sqlite: %s: %w", op, err))
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// mapWriteErr is mapErr for a write of kind, which also knows the unique indexes: a
// repeated editId is ErrDuplicateEdit, any other unique or primary key violation
// (the one-default index, a change version already taken, an id already used) is
// ErrStale.
func (s *Store) mapWriteErr(ctx context.Context, kind, op string, err error) error {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			if strings.Contains(se.Error(), ".edit_id") {
				return storekit.DuplicateEdit(kind, err)
			}
			return storekit.Stale(kind, err)
		}
	}
	return s.mapErr(ctx, op, err)
}
