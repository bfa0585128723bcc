package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialect names the SQL dialect, and so the folder of migrations, of a database.
type Dialect string

// The dialects dashsync has migrations for.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// advisoryLockID is the Postgres advisory lock key held while migrating. It differs
// from goose's default so that another goose user on the same database does not
// block dashsync (and the other way round).
const advisoryLockID int64 = 0x6461736873796e63 // "dashsync"

// MigrationStatus is the state of one migration in one database.
type MigrationStatus struct {
	// Version is the number the file name starts with.
	Version int64
	// Name is the file name, e.g. "00001_init.sql".
	Name string
	// Applied reports whether the migration is recorded as applied.
	Applied bool
	// AppliedAt is when it was applied (UTC); zero when pending.
	AppliedAt time.Time
}

// Up applies every pending migration of dialect to db, in version order, each in its
// own transaction. It returns the versions it applied (none when the schema was
// already current).
func Up(ctx context.Context, db *sql.DB, d Dialect) ([]int64, error) {
	p, err := newProvider(db, d)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", d, err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// UpTo applies the pending migrations of dialect to db up to version, and returns
// the versions it applied: for a deployment that moves one step at a time, and for
// tests of what a migration does to data written before it.
func UpTo(ctx context.Context, db *sql.DB, d Dialect, version int64) ([]int64, error) {
	p, err := newProvider(db, d)
	if err != nil {
		return nil, err
	}
	results, err := p.UpTo(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("migrate %s to %d: %w", d, version, err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// Status reports every migration of dialect, in version order, and whether db has it.
func Status(ctx context.Context, db *sql.DB, d Dialect) ([]MigrationStatus, error) {
	p, err := newProvider(db, d)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status %s: %w", d, err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		ms := MigrationStatus{
			Version: s.Source.Version,
			Name:    path.Base(s.Source.Path),
			Applied: s.State == goose.StateApplied,
		}
		if ms.Applied {
			ms.AppliedAt = s.AppliedAt.UTC()
		}
		out = append(out, ms)
	}
	return out, nil
}

// Latest returns the highest migration version embedded for dialect: the schema
// version a fully migrated database has.
func Latest(d Dialect) (int64, error) {
	fsys, _, err := source(d)
	if err != nil {
		return 0, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return 0, fmt.Errorf("migration %s/%s: %w", d, n, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// source returns the migrations folder of d and goose's name for the dialect.
func source(d Dialect) (fs.FS, goose.Dialect, error) {
	var gd goose.Dialect
	switch d {
	case Postgres:
		gd = goose.DialectPostgres
	case SQLite:
		gd = goose.DialectSQLite3
	default:
		return nil, "", fmt.Errorf("migrations: unknown dialect %q (want %q or %q)", d, Postgres, SQLite)
	}
	fsys, err := fs.Sub(files, string(d))
	if err != nil {
		return nil, "", err
	}
	return fsys, gd, nil
}

func newProvider(db *sql.DB, d Dialect) (*goose.Provider, error) {
	fsys, gd, err := source(d)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithVerbose(false),
	}
	if d == Postgres {
		opts = append(opts, goose.WithSessionLocker(advisoryLocker{id: advisoryLockID}))
	}
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", d, err)
	}
	return p, nil
}

// advisoryLocker holds a Postgres session-level advisory lock while goose migrates.
// Unlike goose's own locker, which polls every five seconds, it blocks in
// pg_advisory_lock, so a second instance proceeds as soon as the first is done; the
// context bounds the wait.
type advisoryLocker struct{ id int64 }

var _ lock.SessionLocker = advisoryLocker{}

// SessionLock waits for the lock on conn's session.
func (l advisoryLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", l.id); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	return nil
}

// SessionUnlock releases the lock taken by SessionLock.
func (l advisoryLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", l.id).Scan(&released); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	if !released {
		return fmt.Errorf("release migration lock: lock %d was not held", l.id)
	}
	return nil
}
