// Package testredis gives tests a Redis client and a fresh key prefix on the test
// server, so concurrent test runs never see each other's keys or channels.
package testredis

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the variable holding the URL of the test server.
const EnvURL = "DASHSYNC_TEST_REDIS_URL"

// DefaultURL is used when EnvURL is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL returns the test server's URL.
func URL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// ParseURL parses a Redis URL into client options as the server makes them: with
// ContextTimeoutEnabled, so that a Redis that stops answering holds a call no longer
// than its context allows (go-redis otherwise waits out ReadTimeout on socket reads,
// whatever the context says).
func ParseURL(url string) (*redis.Options, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.ContextTimeoutEnabled = true
	return opt, nil
}

var reachable = sync.OnceValue(func() error {
	opt, err := ParseURL(URL())
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
})

// Require skips t (fails it with CI=true) when the test server cannot be reached, and
// fails it when the server is not on this machine.
func Require(t testing.TB) {
	t.Helper()
	opt, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("testredis: %s: %v", EnvURL, err)
	}
	host, _, err := net.SplitHostPort(opt.Addr)
	if err != nil {
		t.Fatalf("testredis: %s: %v", EnvURL, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		t.Fatalf("testredis: %s must name a loopback address, not %s", EnvURL, host)
	}
	if err := reachable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("REDIS NOT REACHABLE at %s: %v (CI=true makes this a failure)", opt.Addr, err)
		}
		t.Skipf("REDIS NOT REACHABLE at %s: %v: skipping Redis suite; set CI=true to make this a failure", opt.Addr, err)
	}
}

// Prefix returns a key prefix unique to this call ("test:<random>:"); keys under it are
// deleted at cleanup.
func Prefix(t testing.TB) string {
	t.Helper()
	Require(t)
	p := "test:" + strings.ToLower(rand.Text()[:12]) + ":"
	c := Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, p+"*", 500).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

// Client returns a client of the test server, closed at cleanup.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	Require(t)
	opt, _ := ParseURL(URL())
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
