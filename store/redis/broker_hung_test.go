package redis_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/internal/tcpproxy"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/store/redis"
)

// lossRecorder is a hub.Handler counting messages and reported losses.
type lossRecorder struct {
	mu       sync.Mutex
	messages []string
	losses   int
}

func (r *lossRecorder) HandleMessage(_ string, p []byte) {
	r.mu.Lock()
	r.messages = append(r.messages, string(p))
	r.mu.Unlock()
}

func (r *lossRecorder) HandleLoss() {
	r.mu.Lock()
	r.losses++
	r.mu.Unlock()
}

func (r *lossRecorder) saw(payload string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.messages {
		if m == payload {
			return true
		}
	}
	return false
}

func (r *lossRecorder) lossCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.losses
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBroker_HungRedisFailsPublishesInTimeAndReportsTheLoss: with Redis hung (its
// connections open, nothing answered) a publish fails within its timeout and the ones
// after it fail at once; once Redis answers again the broker reports a possible loss
// (the hub then re-reads its layouts) and publishes go through again.
func TestBroker_HungRedisFailsPublishesInTimeAndReportsTheLoss(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	proxy, redisURL := tcpproxy.InFrontOf(t, testredis.URL(), "6379")
	opt, err := testredis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	const publishTimeout = 300 * time.Millisecond
	b := redis.NewBroker(rdb, redis.BrokerOptions{Prefix: prefix, PublishTimeout: publishTimeout, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = b.Close() })
	rec := &lossRecorder{}
	ctx := context.Background()
	if err := b.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "layout:l1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "layout:l1", []byte("1 before")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the message published before the freeze", func() bool { return rec.saw("1 before") })

	proxy.Freeze()
	const bound = 2 * time.Second // generous: the publish timeout is 300 ms
	for i, payload := range []string{"2 frozen", "3 frozen"} {
		start := time.Now()
		err := b.Publish(ctx, "layout:l1", []byte(payload))
		took := time.Since(start)
		if err == nil {
			t.Fatalf("publish %d with Redis hung: got nil error", i+1)
		}
		if took > bound {
			t.Errorf("publish %d with Redis hung returned after %v, want within %v", i+1, took.Round(time.Millisecond), bound)
		}
		if i > 0 && !errors.Is(err, redis.ErrDown) {
			t.Errorf("publish %d with Redis hung: got %v, want ErrDown at once: the first one found Redis hung", i+1, err)
		}
	}
	proxy.Thaw()

	waitUntil(t, "the broker reporting a possible loss once Redis answers", func() bool { return rec.lossCount() >= 1 })
	waitUntil(t, "a publish going through again", func() bool {
		return b.Publish(ctx, "layout:l1", []byte("4 after")) == nil && rec.saw("4 after")
	})
}
