// Package testlimit is for tests: it makes the rate limiters a test server spends
// budgets of, in memory or on the test Redis (on a fresh key prefix whose budgets are
// deleted when the test ends), and runs a test once per limiter backend.
package testlimit

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/store/memory"
	"github.com/dashsync/dashsync/store/redis"
)

// Backend makes the limiters of one backend.
type Backend struct {
	// Name is the backend's name, and its subtest's in ForEachBackend.
	Name string
	// Shared returns a function making limiters that share one budget per key, as
	// the instances on one Redis do.
	Shared func(t testing.TB) func() ratelimit.Limiter
}

// Backends are the limiter backends the rate limits are tested on: in memory, and on
// the test Redis.
var Backends = []Backend{
	{"memory", Memory},
	{"redis", RedisShared},
}

// ForEachBackend runs fn as a parallel subtest per backend, named after it, with a
// function making limiters of that backend that share their budgets.
func ForEachBackend(t *testing.T, fn func(t *testing.T, newLimiter func() ratelimit.Limiter)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.Shared(t))
		})
	}
}

// Memory returns a function that always returns one in-memory limiter: one instance's
// budgets.
func Memory(testing.TB) func() ratelimit.Limiter {
	l := memory.NewLimiter(memory.LimiterOptions{})
	return func() ratelimit.Limiter { return l }
}

// RedisShared returns a function making Redis limiters under one fresh prefix
// (see Redis): they share one budget per key, as instances on one Redis do.
func RedisShared(t testing.TB) func() ratelimit.Limiter {
	t.Helper()
	prefix := testredis.Prefix(t)
	return func() ratelimit.Limiter { return Redis(t, prefix) }
}

// Redis returns a limiter keeping its budgets on the test Redis under prefix, on a
// client of its own as each instance has, closed at cleanup. The budgets under prefix
// are deleted at cleanup too.
func Redis(t testing.TB, prefix string) ratelimit.Limiter {
	t.Helper()
	opt, err := testredis.ParseURL(testredis.URL())
	if err != nil {
		t.Fatalf("testlimit: %s: %v", testredis.EnvURL, err)
	}
	rdb := goredis.NewClient(opt)
	t.Cleanup(func() {
		deleteBudgets(rdb, prefix)
		_ = rdb.Close()
	})
	return redis.NewLimiter(rdb, redis.LimiterOptions{Prefix: prefix})
}

// Prefix returns a fresh key prefix on the test Redis (testredis.Prefix) whose rate
// limit budgets are deleted at cleanup as well, for a server the test starts with that
// prefix (a `dashsync serve`, say). They need deleting apart: redis_rate puts its own
// "rate:" before the prefix, out of testredis.Prefix's reach.
func Prefix(t testing.TB) string {
	t.Helper()
	prefix := testredis.Prefix(t)
	rdb := testredis.Client(t)
	t.Cleanup(func() { deleteBudgets(rdb, prefix) })
	return prefix
}

// deleteBudgets deletes the budgets a limiter on prefix keeps ("rate:<prefix>…").
func deleteBudgets(rdb *goredis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, "rate:"+prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}
