package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dashsync/dashsync/widgetdata"
)

var _ widgetdata.Leases = (*Leases)(nil)

// Leases are the in-process widgetdata.Leases: try-locks with a time to live, in a map.
// One Leases is one instance (one process): a key taken by any of its callers is held
// by all of them, and any caller's Release frees it. Callers within the process that
// must exclude each other do so themselves (widgetdata.Service: singleflight).
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

// Acquire implements widgetdata.Leases: it takes key for ttl unless key is held, and
// reports whether it did.
func (l *Leases) Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, fmt.Errorf("memory leases: acquire %q: ttl %v is not positive", key, ttl)
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

// Release implements widgetdata.Leases: it frees key before its time is up (this
// instance holds every key that is held at all).
func (l *Leases) Release(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, key)
	return nil
}
