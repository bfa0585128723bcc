// Package sqlite is the embedded implementation of dsync.Store: one SQLite file, pure
// Go (modernc.org/sqlite, no cgo), for a single dashsync instance with nothing to
// install. It owns the file's connections and applies the embedded migrations when
// it opens. It speaks domain types only and imports no other store and no api code.
//
// Concurrency: a *Store is safe for concurrent use. The file is in WAL mode, so reads
// never wait for a writer. Transactions (InTx) begin IMMEDIATE, taking SQLite's write
// lock up front, and writers of one Store queue in process before they begin, so
// concurrent writers serialise instead of failing; another process holding the lock
// is waited for up to busy_timeout (10 s). Because writers serialise, a transaction
// reads the current head and its compare-and-swap only fails (ErrStale) against a
// version read before the transaction began. The fn passed to InTx must not call InTx
// on the same Store: it would wait for itself.
package sqlite
