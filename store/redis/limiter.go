package redis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/ratelimit"
)

var _ ratelimit.Limiter = (*Limiter)(nil)

// LimiterOptions configure a Limiter.
type LimiterOptions struct {
	// Prefix is put before every key; default "dashsync:". redis_rate puts "rate:"
	// before that, so a budget lives at "rate:<Prefix><key>".
	Prefix string
	// Timeout bounds one Allow (a dial, waiting for a pooled connection, each read and
	// write of the script's round trip), so that an unreachable or silent Redis costs
	// a request little before the caller fails open; default 500 ms.
	Timeout time.Duration
}

// Limiter is the ratelimit.Limiter on Redis: GCRA (github.com/go-redis/redis_rate), one
// key per budget expiring once the budget is full again, so every instance on one Redis
// spends one budget per key. Redis's clock is the only clock.
type Limiter struct {
	rl *redis_rate.Limiter
	o  LimiterOptions
}

// NewLimiter returns a Limiter on rdb, sharing its connection pool with the limiter's
// own timeouts. The caller keeps ownership of rdb; the Limiter holds nothing to close.
func NewLimiter(rdb *goredis.Client, o LimiterOptions) *Limiter {
	if o.Prefix == "" {
		o.Prefix = "dashsync:"
	}
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	return &Limiter{rl: redis_rate.NewLimiter(rdb.WithTimeout(o.Timeout)), o: o}
}

// Allow implements ratelimit.Limiter. Any Redis failure is returned as an error.
func (l *Limiter) Allow(ctx context.Context, key string, lim ratelimit.Limit) (ratelimit.Result, error) {
	if err := ctx.Err(); err != nil {
		return ratelimit.Result{}, err
	}
	if lim.Unlimited() {
		return ratelimit.Result{Allowed: true}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	defer cancel()
	res, err := l.rl.Allow(ctx, l.o.Prefix+key, gcra(lim))
	if err != nil {
		return ratelimit.Result{}, fmt.Errorf("redis rate limit %s: %w", key, err)
	}
	if res.Allowed > 0 {
		return ratelimit.Result{Allowed: true}, nil
	}
	// RetryAfter is -1 only when a call costs more than the burst, which one token
	// never does; keep the contract's "> 0" regardless.
	return ratelimit.Result{RetryAfter: max(res.RetryAfter, time.Millisecond)}, nil
}

// gcra turns a rate a second (a float) into redis_rate's integer rate per period: one
// token per emission interval, which keeps fractional rates exact enough.
func gcra(lim ratelimit.Limit) redis_rate.Limit {
	period := math.Min(float64(time.Second)/lim.Rate, math.MaxInt64)
	return redis_rate.Limit{Rate: 1, Period: max(time.Duration(period), 1), Burst: lim.MinBurst()}
}
