// Package postgres is the Postgres implementation of dsync.Store (pgx, pgxpool): the
// source of truth when several dashsync instances run behind a load balancer. It owns
// the connection pool and applies the embedded migrations when it opens. It speaks
// domain types only and imports no other store and no api code.
//
// Concurrency: a *Store is safe for concurrent use, also by several processes on one
// database. Transactions (InTx) run at READ COMMITTED; every write is a
// compare-and-swap on the version (UPDATE … WHERE version = expected), so of several
// transactions that read the same head exactly one commits the next version and the
// others get ErrStale once the winner commits. Unique indexes back the rest: a
// repeated editId is ErrDuplicateEdit, a second default layout ErrStale. Each write
// runs in a savepoint, so a failed write leaves its transaction usable.
package postgres
