package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/dashsync/dashsync/migrations"
	"github.com/dashsync/dashsync/store/internal/storekit"
	dsync "github.com/dashsync/dashsync/sync"
)

// Store is a dsync.Store on a Postgres database. Create it with Open.
type Store struct {
	reader
	pool   *pgxpool.Pool
	closed atomic.Bool
}

var (
	_ dsync.Store = (*Store)(nil)
	_ dsync.Tx    = (*tx)(nil)
)

// rollbackTimeout bounds the rollback of a failed transaction, which runs even when
// the caller's context is done.
const rollbackTimeout = 5 * time.Second

// Open connects to the database at url (a postgres:// URL or key=value DSN; pool
// settings such as pool_max_conns are read from it, default max(4, NumCPU)
// connections), applies the pending migrations and returns a ready Store. When the
// database cannot be reached the error has CodeUnavailable.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	if _, err := migrate(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{pool: pool}
	s.reader = reader{s: s, q: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, s.mapErr(ctx, "ping", err)
	}
	return s, nil
}

// Option configures Open.
type Option func(*pgxpool.Config)

// WithMaxConns bounds the store's connections to n (n ≥ 1; else the pool's default,
// as the URL's pool_max_conns or pgxpool's own gives it).
func WithMaxConns(n int) Option {
	return func(c *pgxpool.Config) {
		if n >= 1 {
			c.MaxConns = int32(min(n, 1<<16))
		}
	}
}

// Migrate applies the pending migrations to the database at url and returns the
// versions it applied.
func Migrate(ctx context.Context, url string) ([]int64, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("migrate postgres: %w", err)
	}
	return migrate(ctx, cfg)
}

// MigrationStatus reports the migrations of the database at url.
func MigrationStatus(ctx context.Context, url string) ([]migrations.MigrationStatus, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("migration status postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	st, err := migrations.Status(ctx, db, migrations.Postgres)
	if err != nil {
		return nil, mapConnErr(ctx, err)
	}
	return st, nil
}

func migrate(ctx context.Context, cfg *pgx.ConnConfig) ([]int64, error) {
	db := stdlib.OpenDB(*cfg.Copy())
	defer db.Close()
	applied, err := migrations.Up(ctx, db, migrations.Postgres)
	if err != nil {
		return nil, mapConnErr(ctx, err)
	}
	return applied, nil
}

// InTx runs fn in one READ COMMITTED transaction and commits when fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(dsync.Tx) error) error {
	if s.closed.Load() {
		return storekit.Closed()
	}
	pgTx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return s.mapErr(ctx, "begin", err)
	}
	finished := false
	rollback := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = pgTx.Rollback(rctx)
	}
	defer func() {
		if !finished { // fn panicked
			rollback()
		}
	}()
	if err := fn(&tx{reader: reader{s: s, q: pgTx}, tx: pgTx}); err != nil {
		finished = true
		rollback()
		return err
	}
	finished = true
	pid := pgTx.Conn().PgConn().PID()
	if err := pgTx.Commit(ctx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			// Answered with an error: not committed.
			return s.mapErr(ctx, "commit", err)
		}
		// The answer was lost, and the server may have committed it. (pgx's
		// SafeToRetry cannot tell: a read that fails after the COMMIT went out is
		// reported as "conn closed", which it calls safe.)
		return storekit.CommitUnknown(s.mapErr(ctx, "commit", err), s.backendGone(ctx, pid))
	}
	return nil
}

// settleTimeout bounds how long a commit whose answer was lost waits for its server
// process to be gone.
const settleTimeout = 5 * time.Second

// backendGone reports whether the server process with pid (the one a commit was sent
// to) has exited, polling pg_stat_activity on another connection for up to
// settleTimeout. Once it has, its transaction is over: committed or rolled back, and
// a fresh read tells which. A process that lost its client goes as soon as it notices.
func (s *Store) backendGone(ctx context.Context, pid uint32) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		var n int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int64(pid)).Scan(&n)
		if err == nil && n == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return storekit.Closed()
	}
	if err := s.pool.Ping(ctx); err != nil {
		return s.mapErr(ctx, "ping", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released; later calls
// fail with CodeUnavailable. Closing twice is safe.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// Postgres error codes the store acts on.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeTooManyConnections   = "53300"
	codeAdminShutdown        = "57P01"
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03"
)

// mapErr translates a database error into the store's error conventions.
func (s *Store) mapErr(ctx context.Context, op string, err error) error {
	if s.closed.Load() && ctx.Err() == nil {
		return storekit.Closed()
	}
	if mapped, ok := connErr(ctx, err); ok {
		return mapped
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// mapWriteErr is mapErr for a write of kind, which also knows the unique indexes: a
// repeated editId is ErrDuplicateEdit; any other unique violation (the one-default
// index, a change version already taken, an id already used), a serialization
// failure or a deadlock is ErrStale, for the caller re-reads and retries.
func (s *Store) mapWriteErr(ctx context.Context, kind, op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			if strings.HasSuffix(pgErr.ConstraintName, "_edit_id_key") {
				return storekit.DuplicateEdit(kind, err)
			}
			return storekit.Stale(kind, err)
		case codeSerializationFailure, codeDeadlockDetected:
			return storekit.Stale(kind, err)
		}
	}
	return s.mapErr(ctx, op, err)
}

// mapConnErr returns the context's error when ctx is done, an unavailable error
// when err says the server cannot be reached or went away, and else err itself.
func mapConnErr(ctx context.Context, err error) error {
	if mapped, ok := connErr(ctx, err); ok {
		return mapped
	}
	return err
}

// connErr reports whether err is the context's or the connection's fault, and the
// error to return for it: the context's error, or an unavailable error.
func connErr(ctx context.Context, err error) (error, bool) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr, true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err, true
	}
	var (
		pgErr      *pgconn.PgError
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	switch {
	case errors.As(err, &pgErr):
		if strings.HasPrefix(pgErr.Code, "08") {
			return dsync.Unavailable(err), true
		}
		switch pgErr.Code {
		case codeTooManyConnections, codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow:
			return dsync.Unavailable(err), true
		}
		return nil, false
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return dsync.Unavailable(err), true
	}
	return nil, false
}
