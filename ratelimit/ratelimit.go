package ratelimit

import (
	"context"
	"math"
	"time"
)

// Limit is a token budget: Rate tokens a second refill it, up to Burst.
//
// A Rate of 0 or less (or NaN, or +Inf) is unlimited: callers do not ask a Limiter
// about it, and Limiters allow it without touching their backend. A Burst below 1 is
// taken as 1, so that a limited budget always lets something through eventually.
type Limit struct {
	// Rate is how many tokens a second refill the budget.
	Rate float64
	// Burst is how many tokens the budget holds: how many may go at once after a
	// quiet time.
	Burst int
}

// PerSecond returns SPEC §9's shape of limit: rate a second with a burst of twice the
// rate (at least 1). A rate of 0 or less is unlimited.
func PerSecond(rate float64) Limit {
	if !(rate > 0) {
		return Limit{}
	}
	return Limit{Rate: rate, Burst: int(min(math.Ceil(2*rate), math.MaxInt32))}
}

// Unlimited reports whether l limits nothing.
func (l Limit) Unlimited() bool { return !(l.Rate > 0) || math.IsInf(l.Rate, 1) }

// MinBurst is Burst as Limiters apply it: at least 1.
func (l Limit) MinBurst() int { return max(l.Burst, 1) }

// Result is a Limiter's answer.
type Result struct {
	// Allowed is true when a token was taken.
	Allowed bool
	// RetryAfter is, when not Allowed, how long until a token will be there (> 0);
	// zero when Allowed.
	RetryAfter time.Duration
}

// RetryAfterMs is RetryAfter in whole milliseconds, rounded up and at least 1 when the
// request was refused: the retryAfterMs of a rate_limited error.
func (r Result) RetryAfterMs() int64 {
	if r.Allowed {
		return 0
	}
	return max(int64((r.RetryAfter+time.Millisecond-1)/time.Millisecond), 1)
}

// Limiter keeps budgets by key. Implementations are safe for concurrent use.
type Limiter interface {
	// Allow takes one token from key's budget under l. When the budget has one, the
	// result is Allowed; when not, nothing is taken and RetryAfter (> 0) says when to
	// try again. A key's budget starts full. An unlimited l is always Allowed.
	//
	// A key is meant to be used with one Limit; what a call with another Limit does
	// to the key's budget is up to the implementation (GCRA, say, keeps the debt run
	// up under the old one).
	//
	// An error means the backend could not answer (Redis unreachable, a timeout) and
	// nothing is known about the budget; callers fail open. A ctx already done returns
	// an error wrapping ctx.Err() and takes nothing.
	Allow(ctx context.Context, key string, l Limit) (Result, error)
}

// Limits are the budgets of SPEC §9. A zero Limit is unlimited.
type Limits struct {
	// REST is per user: every authenticated /api request, the WebSocket upgrade
	// included (key RESTKey).
	REST Limit
	// Messages is per WebSocket connection: every client message (key MessageKey).
	Messages Limit
	// Edits is per user: layout edits over REST and WebSocket alike (key EditKey).
	Edits Limit
}

// DefaultLimits are SPEC §9's defaults: 100 a second, burst 200, for each budget.
func DefaultLimits() Limits {
	return Limits{REST: PerSecond(100), Messages: PerSecond(100), Edits: PerSecond(100)}
}

// RESTKey is the key of user's REST budget.
func RESTKey(user string) string { return "rest:" + user }

// MessageKey is the key of a WebSocket connection's message budget, by its client id.
func MessageKey(client string) string { return "ws:" + client }

// EditKey is the key of user's edit budget, shared by REST and WebSocket edits.
func EditKey(user string) string { return "edit:" + user }

// FetchKey is the key of user's widget-source fetch budget (SPEC §12), spent by every
// fetch of a widget user owns.
func FetchKey(user string) string { return "fetch:" + user }
