package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/tcpproxy"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testmetrics"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/store/memory"
	"github.com/dashsync/dashsync/store/redis"
)

// errorDetails reads the details of an `error` reply.
func errorDetails(t testing.TB, m wsclient.Msg) []struct{ Field, Rule, Param string } {
	t.Helper()
	var e struct {
		Error struct {
			Details []struct{ Field, Rule, Param string } `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Raw, &e); err != nil {
		t.Fatalf("error reply %s: %v", m.Raw, err)
	}
	return e.Error.Details
}

// TestLimits_AtMost100SubscriptionsPerConnection: by default a connection holds at most
// 100 subscriptions (SPEC §12); the 101st is refused with validation_failed on the
// field channel, the connection stays open, and leaving one makes room for another.
func TestLimits_AtMost100SubscriptionsPerConnection(t *testing.T) {
	t.Parallel()
	s := testenv.New(t, testenv.Options{})
	var channels []string
	for len(channels) < 102 {
		l, ws := seed(t, s, "alice")
		channels = append(channels, "layout:"+l.ID, "widget:"+ws[0], "widget:"+ws[1])
	}
	c := s.Dial(t, "alice", nil)
	for i, ch := range channels[:100] {
		if r := req(t, c, map[string]any{"type": "subscribe", "channel": ch}); r.Type != "subscribed" {
			t.Fatalf("subscription %d of 100 (%s): got %s", i+1, ch, r.Raw)
		}
	}
	r := req(t, c, map[string]any{"type": "subscribe", "channel": channels[100]})
	if r.Type != "error" || r.Error == nil || r.Error.Code != "validation_failed" {
		t.Fatalf("the 101st subscription: got %s, want an error validation_failed", r.Raw)
	}
	if d := errorDetails(t, r); len(d) != 1 || d[0].Field != "channel" || d[0].Rule != "max" || d[0].Param != "100" {
		t.Fatalf("the 101st subscription's details: got %+v, want channel/max/100", d)
	}
	if r := req(t, c, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("after the refusal: got %s, want pong (the connection stays open)", r.Raw)
	}
	if r := req(t, c, map[string]any{"type": "unsubscribe", "channel": channels[1]}); r.Type != "unsubscribed" {
		t.Fatalf("unsubscribe: %s", r.Raw)
	}
	if r := req(t, c, map[string]any{"type": "subscribe", "channel": channels[100]}); r.Type != "subscribed" {
		t.Fatalf("a subscription after leaving one: got %s", r.Raw)
	}
	if r := req(t, c, map[string]any{"type": "subscribe", "channel": channels[101]}); r.Type != "error" {
		t.Fatalf("the 101st again: got %s, want an error", r.Raw)
	}
}

// clock is a settable time for the presence store.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// ghosts records n clients of other instances (users ghost-0 … ghost-9) on layout.
func ghosts(t testing.TB, p hub.Presence, layout string, n int) {
	t.Helper()
	for i := range n {
		e := hub.PresenceEntry{User: fmt.Sprintf("ghost-%d", i%10), Client: fmt.Sprintf("c-ghost-%04d", i)}
		if err := p.Join(context.Background(), layout, e); err != nil {
			t.Fatal(err)
		}
	}
}

type counts struct {
	Users   int `json:"users"`
	Clients int `json:"clients"`
}

// TestLimits_PresenceIsCountedPast1000Clients: up to 1,000 clients on a channel,
// `subscribed` lists them; past 1,000 it carries counts (SPEC §5), and so does a
// `presence` message sent while the channel is past 1,000 — and once it is back under,
// lists again. The clients past the first are other instances' (entries in the shared
// presence store), whose expiry is announced as leaves.
func TestLimits_PresenceIsCountedPast1000Clients(t *testing.T) {
	t.Parallel()
	clk := newClock()
	pres := memory.NewPresence(time.Minute, clk.now)
	s := testenv.New(t, testenv.Options{Presence: pres, Hub: func(c *hub.Config) {
		c.PresenceInterval, c.PresenceRefresh = 20*time.Millisecond, 50*time.Millisecond
	}})

	// 999 others and the subscriber: 1,000 clients, listed.
	at, _ := seed(t, s, "alice")
	ghosts(t, pres, at.ID, 999)
	r := req(t, s.Dial(t, "alice", nil), map[string]any{"type": "subscribe", "channel": "layout:" + at.ID})
	var list []struct {
		User    string   `json:"user"`
		Clients []string `json:"clients"`
	}
	if err := json.Unmarshal(r.Presence, &list); err != nil || len(list) != 11 {
		t.Fatalf("subscribed.presence with 1,000 clients: got %.200s (%v), want a list of 11 users", r.Presence, err)
	}

	// 1,000 others and the subscriber: counted.
	l, _ := seed(t, s, "alice")
	ghosts(t, pres, l.ID, 1000)
	box := newInbox()
	c := s.Dial(t, "alice", box.add)
	r = req(t, c, map[string]any{"type": "subscribe", "channel": "layout:" + l.ID})
	var got counts
	if err := json.Unmarshal(r.Presence, &got); err != nil || got != (counts{Users: 11, Clients: 1001}) {
		t.Fatalf("subscribed.presence with 1,001 clients: got %.200s (%v), want {users: 11, clients: 1001}", r.Presence, err)
	}

	// A join past 1,000: the presence message carries counts.
	c2 := s.Dial(t, "alice", nil)
	req(t, c2, map[string]any{"type": "subscribe", "channel": "layout:" + l.ID})
	ms := box.waitFor(t, "presence counts after a join", func(ms []wsclient.Msg) bool {
		for _, m := range ofType(ms, "presence") {
			if presenceCounts(t, m) == (counts{Users: 11, Clients: 1002}) {
				return true
			}
		}
		return false
	})
	for _, m := range ofType(ms, "presence") {
		if m.Joined != nil || m.Left != nil {
			t.Fatalf("a presence message past 1,000 clients lists entries: %.300s", m.Raw)
		}
	}

	// The others expire (their instance is gone): 1,000 leave at once, and the channel
	// is down to alice's two tabs, so the message lists them rather than counting.
	before := len(ofType(box.all(), "presence"))
	clk.add(2 * time.Minute)
	box.waitFor(t, "the others' leaves", func(ms []wsclient.Msg) bool {
		for _, m := range ofType(ms, "presence")[before:] {
			var left []hub.PresenceEntry
			if json.Unmarshal(m.Left, &left) == nil && len(left) > 0 {
				return true
			}
			if cs := presenceCounts(t, m); cs != (counts{}) {
				t.Fatalf("presence with two clients left on the channel: got counts %+v, want lists", cs)
			}
		}
		return false
	})
}

// presenceCounts reads the counts of a `presence` message (zero when it lists).
func presenceCounts(t testing.TB, m wsclient.Msg) counts {
	t.Helper()
	var p struct {
		Counts counts `json:"counts"`
	}
	if err := json.Unmarshal(m.Raw, &p); err != nil {
		t.Fatalf("presence %s: %v", m.Raw, err)
	}
	return p.Counts
}

// TestLimits_WebSocketLimiterOutageAllowsMessages: when the rate limiter fails (its
// Redis is unreachable), messages and edits are allowed — fail open (SPEC §9) — and
// each failure is counted.
func TestLimits_WebSocketLimiterOutageAllowsMessages(t *testing.T) {
	t.Parallel()
	down := tcpproxy.New(t, "127.0.0.1:6379")
	down.Cut()
	rdb := goredis.NewClient(&goredis.Options{Addr: down.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	l := redis.NewLimiter(rdb, redis.LimiterOptions{Timeout: 100 * time.Millisecond})
	// A budget of one message and one edit: were the limiter up, the second of each
	// would be refused.
	one := ratelimit.Limit{Rate: 0.001, Burst: 1}
	s := limitedHub(t, l, ratelimit.Limits{Messages: one, Edits: one})
	lay, _ := seed(t, s, "alice")
	c := s.Dial(t, "alice", nil)
	for i := range 3 {
		if r := req(t, c, map[string]any{"type": "ping"}); r.Type != "pong" {
			t.Fatalf("ping %d with the limiter down: got %s, want pong", i+1, r.Raw)
		}
	}
	for i := range 2 {
		if r := req(t, c, rename(lay.ID, i)); r.Type != "ack" {
			t.Fatalf("edit %d with the limiter down: got %s, want ack", i+1, r.Raw)
		}
	}
	// Each message asks the message budget; each edit the edit budget too.
	if n := testmetrics.Value(t, s, "dashsync_ws_rate_limiter_errors_total"); n < 7 {
		t.Fatalf("dashsync_ws_rate_limiter_errors_total = %v after 5 messages and 2 edits with the limiter down, want ≥ 7", n)
	}
}
