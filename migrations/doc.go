// Package migrations owns dashsync's versioned database schema: SQL files embedded in
// the binary, one folder per dialect (postgres/, sqlite/), applied with goose.
//
// Up applies what is pending and Status reports what is applied; `dashsync migrate`
// and both SQL stores (store/postgres, store/sqlite) call them. The package takes an
// open *sql.DB and registers no database driver: opening the database is the caller's
// job. It imports no other dashsync package.
//
// Concurrency: Up and Status are safe to call from several processes at once. On
// Postgres they hold a session-level advisory lock while they run, so instances that
// start together apply each migration exactly once; on SQLite the database's own
// write lock serialises them.
package migrations
