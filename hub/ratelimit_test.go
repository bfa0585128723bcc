package hub_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testlimit"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/ratelimit"
	dsync "github.com/dashsync/dashsync/sync"
)

// limitedHub starts a server whose hub spends budgets of l under limits.
func limitedHub(t testing.TB, l ratelimit.Limiter, limits ratelimit.Limits) *testenv.Server {
	t.Helper()
	return testenv.New(t, testenv.Options{Hub: func(c *hub.Config) { c.Limiter, c.MessageLimiter, c.Limits = l, l, limits }})
}

// rename is a forced edit of a layout's name: each one commits a version.
func rename(id string, i int) map[string]any {
	return map[string]any{"type": "edit", "channel": "layout:" + id, "base": 1, "force": true,
		"ops": []map[string]any{{"op": "replace", "path": "/name", "value": fmt.Sprint("name ", i)}}}
}

// wantRateLimited checks an `error` reply with code rate_limited and retryAfterMs.
func wantRateLimited(t testing.TB, m wsclient.Msg) {
	t.Helper()
	if m.Type != "error" || m.Error == nil || m.Error.Code != "rate_limited" || m.Error.RetryAfterMs <= 0 {
		t.Fatalf("got %s, want an error rate_limited with retryAfterMs > 0", m.Raw)
	}
}

func TestRateLimit_EditBurstOverTheBudgetIsRefusedAndTheConnectionStaysOpen(t *testing.T) {
	t.Parallel()
	testlimit.ForEachBackend(t, func(t *testing.T, newLimiter func() ratelimit.Limiter) {
		s := limitedHub(t, newLimiter(), ratelimit.Limits{Edits: ratelimit.Limit{Rate: 0.001, Burst: 3}})
		name, cols := "L", 12
		l, err := s.Service.CreateLayout(context.Background(), "alice", dsync.NewLayout{Author: "alice",
			Doc: dsync.LayoutDoc{Name: &name, Columns: &cols}})
		if err != nil {
			t.Fatal(err)
		}
		c := s.Dial(t, "alice", nil)
		// A burst: every edit in flight at once.
		replies := make([]wsclient.Msg, 8)
		var wg sync.WaitGroup
		for i := range replies {
			wg.Go(func() { replies[i] = req(t, c, rename(l.ID, i)) })
		}
		wg.Wait()
		acks := 0
		for _, m := range replies {
			if m.Type == "ack" {
				acks++
				continue
			}
			wantRateLimited(t, m)
		}
		if acks != 3 {
			t.Fatalf("got %d of 8 edits acknowledged with an edit burst of 3, want 3", acks)
		}
		if got := req(t, c, map[string]any{"type": "ping"}); got.Type != "pong" {
			t.Fatalf("got %s after the refusals, want pong: the connection stays open", got.Raw)
		}
		now, err := s.Service.Layout(context.Background(), "alice", l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if now.Version != 1+int64(acks) {
			t.Fatalf("got version %d after %d acks, want %d: nothing refused commits", now.Version, acks, 1+acks)
		}
	})
}

func TestRateLimit_EveryMessageSpendsTheConnectionsBudget(t *testing.T) {
	t.Parallel()
	testlimit.ForEachBackend(t, func(t *testing.T, newLimiter func() ratelimit.Limiter) {
		// 20 a second, burst 4: a token every 50 ms.
		s := limitedHub(t, newLimiter(), ratelimit.Limits{Messages: ratelimit.Limit{Rate: 20, Burst: 4}})
		c := s.Dial(t, "bob", nil)
		var last wsclient.Msg
		answered := 0
		// Malformed and unknown messages spend the budget like any other.
		for _, m := range []map[string]any{{"type": "nope"}, {"type": "subscribe", "channel": "bad"}, {"type": "ping"}, {"type": "ping"}, {"type": "ping"}, {"type": "ping"}} {
			last = req(t, c, m)
			if last.Type != "error" || last.Error.Code != "rate_limited" {
				answered++
			}
		}
		if answered < 4 || answered > 5 { // a token may refill during the burst on a slow machine
			t.Fatalf("got %d of 6 messages answered with a burst of 4, want 4", answered)
		}
		wantRateLimited(t, last)
		// The connection stays open, and the budget refills.
		time.Sleep(time.Duration(last.Error.RetryAfterMs)*time.Millisecond + 20*time.Millisecond)
		if got := req(t, c, map[string]any{"type": "ping"}); got.Type != "pong" {
			t.Fatalf("got %s after waiting retryAfterMs, want pong", got.Raw)
		}
		// Another connection of the same user has its own budget.
		if got := req(t, s.Dial(t, "bob", nil), map[string]any{"type": "ping"}); got.Type != "pong" {
			t.Fatalf("got %s on a second connection, want pong", got.Raw)
		}
	})
}
