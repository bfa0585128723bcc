package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache prepares each distinct query once on the database. SQLite spends more
// time parsing and planning a statement than running most of ours, and database/sql
// prepares afresh for every call that is not on a prepared statement.
type stmtCache struct {
	db *sql.DB

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}}
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.RLock()
	st := c.stmts[query]
	c.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st = c.stmts[query]; st != nil {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		_ = st.Close()
		delete(c.stmts, q)
	}
}

// cachedQueryer runs queries on cached statements, on the database or, with tx set,
// within the transaction (database/sql then reuses the statement prepared on the
// transaction's connection, preparing it there once).
type cachedQueryer struct {
	c  *stmtCache
	tx *sql.Tx
}

var _ queryer = cachedQueryer{}

func (q cachedQueryer) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := q.c.get(ctx, query)
	if err != nil || q.tx == nil {
		return st, err
	}
	return q.tx.StmtContext(ctx, st), nil
}

// ExecContext implements queryer.
func (q cachedQueryer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryContext implements queryer.
func (q cachedQueryer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext implements queryer. A statement that cannot be prepared is run
// unprepared, so its error reaches the caller through the row as usual.
func (q cachedQueryer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := q.stmt(ctx, query)
	if err != nil {
		if q.tx != nil {
			return q.tx.QueryRowContext(ctx, query, args...)
		}
		return q.c.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}
