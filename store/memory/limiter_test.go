package memory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/ratelimit/limittest"
	"github.com/dashsync/dashsync/store/memory"
)

func TestLimiterConformance(t *testing.T) {
	limittest.Run(t, func(t testing.TB, n int) []ratelimit.Limiter {
		// In-process budgets are shared by sharing the instance, as api and hub do.
		l := memory.NewLimiter(memory.LimiterOptions{})
		out := make([]ratelimit.Limiter, n)
		for i := range out {
			out[i] = l
		}
		return out
	})
}

func TestLimiter_KeepsAtMostKeysAndForgetsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := memory.NewLimiter(memory.LimiterOptions{Keys: 10})
	lim := ratelimit.Limit{Rate: 0.001, Burst: 1}
	for i := range 100 {
		if r, err := l.Allow(ctx, fmt.Sprint("k", i), lim); err != nil || !r.Allowed {
			t.Fatalf("key k%d: got %+v, %v, want allowed", i, r, err)
		}
	}
	if got := l.Len(); got != 10 {
		t.Fatalf("got %d keys kept, want at most 10", got)
	}
	// The 10 most recent keys are still spent; the oldest starts afresh.
	if r, _ := l.Allow(ctx, "k99", lim); r.Allowed {
		t.Fatal("got k99 allowed twice, want its spent budget kept")
	}
	if r, _ := l.Allow(ctx, "k0", lim); !r.Allowed {
		t.Fatal("got k0 refused, want a forgotten key to start with a full budget")
	}
}
