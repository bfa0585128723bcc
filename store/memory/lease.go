package memory

import (
	"context"
	"sync"
	"time"
)

// Leases are the in-process try-locks with a time to live of the embedded default.
type Leases struct {
	now func() time.Time

	mu   sync.Mutex
	held map[string]time.Time // key → expiry
}

// NewLeases returns empty leases on the clock now (nil: time.Now).
func NewLeases(now func() time.Time) *Leases {
	if now == nil {
		now = time.Now
	}
	return &Leases{now: now, held: map[string]time.Time{}}
}

// Acquire takes key for ttl and reports whether this caller got it.
func (l *Leases) Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, exp := range l.held { // keep the map small: drop what has expired
		if !now.Before(exp) {
			delete(l.held, k)
		}
	}
	if _, ok := l.held[key]; ok {
		return false, nil
	}
	l.held[key] = now.Add(ttl)
	return true, nil
}

// Release gives key back before its time is up.
func (l *Leases) Release(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, key)
	return nil
}
