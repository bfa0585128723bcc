package memory

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/dashsync/dashsync/ratelimit"
)

var _ ratelimit.Limiter = (*Limiter)(nil)

// DefaultLimiterKeys is the default number of keys a Limiter keeps.
const DefaultLimiterKeys = 100_000

// LimiterOptions configure a Limiter.
type LimiterOptions struct {
	// Keys bounds how many keys' budgets are kept; past it the least recently used key
	// is forgotten (its next call starts with a full budget). Default
	// DefaultLimiterKeys. A key idle for Burst/Rate seconds has a full budget anyway,
	// so only a key among the Keys least recently used can gain by being forgotten.
	Keys int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Limiter is the in-process ratelimit.Limiter of the embedded default: a token bucket
// (golang.org/x/time/rate) per key, in a bounded LRU. Budgets are per instance. It
// starts no goroutine and holds nothing to close.
type Limiter struct {
	now func() time.Time

	mu   sync.Mutex // serialises get-or-create; the buckets lock themselves
	keys *lru.Cache[string, *rate.Limiter]
}

// NewLimiter returns an in-process Limiter.
func NewLimiter(o LimiterOptions) *Limiter {
	if o.Keys <= 0 {
		o.Keys = DefaultLimiterKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	keys, _ := lru.New[string, *rate.Limiter](o.Keys) // fails only for a size <= 0
	return &Limiter{now: o.Now, keys: keys}
}

// Allow implements ratelimit.Limiter. It never fails but for a done ctx.
func (l *Limiter) Allow(ctx context.Context, key string, lim ratelimit.Limit) (ratelimit.Result, error) {
	if err := ctx.Err(); err != nil {
		return ratelimit.Result{}, err
	}
	if lim.Unlimited() {
		return ratelimit.Result{Allowed: true}, nil
	}
	now := l.now()
	b := l.bucket(key, lim, now)
	r := b.ReserveN(now, 1) // always OK: the burst is at least 1
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refusal takes nothing
		return ratelimit.Result{RetryAfter: d}, nil
	}
	return ratelimit.Result{Allowed: true}, nil
}

// bucket returns key's bucket, made full on first use, and set to lim if it was made
// with another limit.
func (l *Limiter) bucket(key string, lim ratelimit.Limit, now time.Time) *rate.Limiter {
	l.mu.Lock()
	b, ok := l.keys.Get(key)
	if !ok {
		b = rate.NewLimiter(rate.Limit(lim.Rate), lim.MinBurst())
		l.keys.Add(key, b)
	}
	l.mu.Unlock()
	if b.Limit() != rate.Limit(lim.Rate) {
		b.SetLimitAt(now, rate.Limit(lim.Rate))
	}
	if b.Burst() != lim.MinBurst() {
		b.SetBurstAt(now, lim.MinBurst())
	}
	return b
}

// Len reports how many keys' budgets are kept.
func (l *Limiter) Len() int { return l.keys.Len() }
