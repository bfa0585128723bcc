// Package limittest is the conformance suite every ratelimit.Limiter implementation
// runs, through a harness of a few lines:
//
//	limittest.Run(t, func(t testing.TB, n int) []ratelimit.Limiter { … })
//
// Cases use rates small enough that nothing refills while they run (so counts are
// exact), or a refill short enough that no case sleeps for long.
package limittest

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashsync/dashsync/ratelimit"
)

// NewLimiters returns n limiters sharing one backend, like n instances on one Redis.
// An in-process implementation returns one instance n times: within a process, that is
// how the budget is shared.
type NewLimiters func(t testing.TB, n int) []ratelimit.Limiter

// tiny refills one token in 1000 s: nothing refills while a case runs.
const tiny = 0.001

// key returns a key no other case uses.
func key(name string) string {
	return "limittest:" + name + ":" + strings.ToLower(rand.Text()[:10])
}

func allow(t testing.TB, l ratelimit.Limiter, key string, lim ratelimit.Limit) ratelimit.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := l.Allow(ctx, key, lim)
	if err != nil {
		t.Fatalf("Allow(%q, %+v): %v", key, lim, err)
	}
	if r.Allowed && r.RetryAfter != 0 {
		t.Fatalf("Allow(%q): allowed with RetryAfter %v, want 0", key, r.RetryAfter)
	}
	if !r.Allowed && r.RetryAfter <= 0 {
		t.Fatalf("Allow(%q): refused with RetryAfter %v, want > 0", key, r.RetryAfter)
	}
	return r
}

// spend calls Allow n times and returns how many were allowed.
func spend(t testing.TB, l ratelimit.Limiter, key string, lim ratelimit.Limit, n int) int {
	t.Helper()
	got := 0
	for range n {
		if allow(t, l, key, lim).Allowed {
			got++
		}
	}
	return got
}

// Run runs the conformance suite.
func Run(t *testing.T, newLimiters NewLimiters) {
	one := func(t *testing.T) ratelimit.Limiter {
		t.Helper()
		return newLimiters(t, 1)[0]
	}

	t.Run("BurstIsHonouredThenRefusedWithRetryAfter", func(t *testing.T) {
		t.Parallel()
		l, k := one(t), key("burst")
		lim := ratelimit.Limit{Rate: tiny, Burst: 5}
		if got := spend(t, l, k, lim, 5); got != 5 {
			t.Fatalf("got %d of a burst of 5 allowed, want 5", got)
		}
		r := allow(t, l, k, lim)
		if r.Allowed {
			t.Fatal("got the 6th call of a burst of 5 allowed, want refused")
		}
		// One token refills in 1000 s: the wait is most of that.
		if r.RetryAfter < 900*time.Second || r.RetryAfter > 1001*time.Second {
			t.Fatalf("got RetryAfter %v, want about 1000s (one token at %v/s)", r.RetryAfter, tiny)
		}
		if ms := r.RetryAfterMs(); ms < 900_000 {
			t.Fatalf("got RetryAfterMs %d, want about 1000000", ms)
		}
	})

	t.Run("ARefusalTakesNothing", func(t *testing.T) {
		t.Parallel()
		l, k := one(t), key("refusal")
		// 10/s, burst 1: after the first call, one token every 100 ms. Refusals in
		// between must not push the next token further away.
		lim := ratelimit.Limit{Rate: 10, Burst: 1}
		if !allow(t, l, k, lim).Allowed {
			t.Fatal("got the first call refused, want allowed")
		}
		var last ratelimit.Result
		for range 20 {
			if last = allow(t, l, k, lim); last.Allowed {
				break
			}
		}
		if last.RetryAfter > 100*time.Millisecond {
			t.Fatalf("got RetryAfter %v after refusals, want at most 100ms: refusals took tokens", last.RetryAfter)
		}
	})

	t.Run("BurstBelowOneIsOne", func(t *testing.T) {
		t.Parallel()
		l, k := one(t), key("burst0")
		lim := ratelimit.Limit{Rate: tiny, Burst: 0}
		if got := spend(t, l, k, lim, 3); got != 1 {
			t.Fatalf("got %d allowed with Burst 0, want 1", got)
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		t.Parallel()
		l := one(t)
		a, b := key("a"), key("b")
		lim := ratelimit.Limit{Rate: tiny, Burst: 3}
		if got := spend(t, l, a, lim, 5); got != 3 {
			t.Fatalf("key a: got %d allowed, want 3", got)
		}
		if got := spend(t, l, b, lim, 5); got != 3 {
			t.Fatalf("key b after a was spent: got %d allowed, want 3", got)
		}
	})

	t.Run("RefillsAfterRetryAfter", func(t *testing.T) {
		t.Parallel()
		l, k := one(t), key("refill")
		lim := ratelimit.Limit{Rate: 20, Burst: 2} // a token every 50 ms
		got := spend(t, l, k, lim, 2)
		if got != 2 {
			t.Fatalf("got %d of a burst of 2 allowed, want 2", got)
		}
		r := allow(t, l, k, lim)
		if r.Allowed {
			// A token may have refilled on a slow machine; then the budget is still
			// honoured if the next call is refused.
			if r = allow(t, l, k, lim); r.Allowed {
				t.Fatal("got 4 calls allowed at once with a burst of 2, want refusals")
			}
		}
		if r.RetryAfter > 50*time.Millisecond {
			t.Fatalf("got RetryAfter %v, want at most 50ms (a token every 50ms)", r.RetryAfter)
		}
		time.Sleep(r.RetryAfter + 15*time.Millisecond)
		if !allow(t, l, k, lim).Allowed {
			t.Fatalf("got refused after waiting RetryAfter (%v), want allowed", r.RetryAfter)
		}
	})

	t.Run("UnlimitedAllowsEverything", func(t *testing.T) {
		t.Parallel()
		l, k := one(t), key("unlimited")
		for _, lim := range []ratelimit.Limit{{}, {Rate: 0, Burst: 1}, {Rate: -1, Burst: 5}} {
			if got := spend(t, l, k, lim, 50); got != 50 {
				t.Fatalf("limit %+v: got %d of 50 allowed, want all", lim, got)
			}
		}
	})

	t.Run("CancelledContextErrsAndTakesNothing", func(t *testing.T) {
		t.Parallel()
		l, k := one(t), key("cancel")
		lim := ratelimit.Limit{Rate: tiny, Burst: 2}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for range 3 {
			if _, err := l.Allow(ctx, k, lim); !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v with a cancelled context, want context.Canceled", err)
			}
		}
		if got := spend(t, l, k, lim, 3); got != 2 {
			t.Fatalf("got %d allowed after cancelled calls, want the whole burst of 2", got)
		}
	})

	t.Run("ConcurrentCallsAllowExactlyTheBurst", func(t *testing.T) {
		t.Parallel()
		l, k := one(t), key("concurrent")
		lim := ratelimit.Limit{Rate: tiny, Burst: 20}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			allowed int
		)
		for range 8 {
			wg.Go(func() {
				n := spend(t, l, k, lim, 10)
				mu.Lock()
				allowed += n
				mu.Unlock()
			})
		}
		wg.Wait()
		if allowed != 20 {
			t.Fatalf("got %d of 80 concurrent calls allowed with a burst of 20, want exactly 20", allowed)
		}
	})

	t.Run("InstancesOnOneBackendShareABudget", func(t *testing.T) {
		t.Parallel()
		ls := newLimiters(t, 2)
		k := key("shared")
		lim := ratelimit.Limit{Rate: tiny, Burst: 6}
		allowed := [2]int{}
		for i := range 10 {
			if allow(t, ls[i%2], k, lim).Allowed {
				allowed[i%2]++
			}
		}
		if allowed[0]+allowed[1] != 6 || allowed[0] != 3 {
			t.Fatalf("got %v allowed by the two instances, want [3 3]: one budget of 6 shared", allowed)
		}
	})
}
