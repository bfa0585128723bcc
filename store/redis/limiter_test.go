package redis_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/ratelimit/limittest"
	"github.com/dashsync/dashsync/store/redis"
)

// LimiterKeysCleanup deletes the budgets under prefix at cleanup: redis_rate puts its
// own "rate:" before our prefix, out of testredis.Prefix's reach.
func limiterKeysCleanup(t testing.TB, rdb *goredis.Client, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, "rate:"+prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
}

func TestLimiterConformance(t *testing.T) {
	limittest.Run(t, func(t testing.TB, n int) []ratelimit.Limiter {
		prefix := testredis.Prefix(t)
		limiterKeysCleanup(t, testredis.Client(t), prefix)
		out := make([]ratelimit.Limiter, n)
		for i := range out {
			// One client per limiter, as each instance has its own.
			opt, _ := testredis.ParseURL(testredis.URL())
			rdb := goredis.NewClient(opt)
			t.Cleanup(func() { _ = rdb.Close() })
			out[i] = redis.NewLimiter(rdb, redis.LimiterOptions{Prefix: prefix})
		}
		return out
	})
}

func TestLimiter_PrefixSeparatesBudgets(t *testing.T) {
	t.Parallel()
	rdb := testredis.Client(t)
	a, b := testredis.Prefix(t), testredis.Prefix(t)
	limiterKeysCleanup(t, rdb, a)
	limiterKeysCleanup(t, rdb, b)
	la := redis.NewLimiter(rdb, redis.LimiterOptions{Prefix: a})
	lb := redis.NewLimiter(rdb, redis.LimiterOptions{Prefix: b})
	lim := ratelimit.Limit{Rate: 0.001, Burst: 1}
	ctx := context.Background()
	for i, l := range []*redis.Limiter{la, lb} {
		r, err := l.Allow(ctx, "k", lim)
		if err != nil || !r.Allowed {
			t.Fatalf("limiter %d: got %+v, %v, want its own full budget", i, r, err)
		}
	}
	if n, err := rdb.Exists(ctx, "rate:"+a+"k", "rate:"+b+"k").Result(); err != nil || n != 2 {
		t.Fatalf("got %d budget keys (%v), want rate:<prefix>k for both prefixes", n, err)
	}
}

func TestLimiter_UnreachableRedisErrsWithinTheTimeout(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never answers: the worst kind of outage.
	rdb := goredis.NewClient(&goredis.Options{Addr: blackhole(t), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	l := redis.NewLimiter(rdb, redis.LimiterOptions{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := l.Allow(context.Background(), "k", ratelimit.Limit{Rate: 1, Burst: 1})
	if err == nil {
		t.Fatal("got no error from a Redis that never answers, want one")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Allow took %v against a silent Redis, want about the 100ms timeout", d)
	}
}

// blackhole returns the address of a listener that accepts connections and never
// answers, closed at cleanup.
func blackhole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}
