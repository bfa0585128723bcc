package hub_test

// This file tests SPEC §12's bound on WebSocket connections per user on one instance:
// over it the upgrade answers 429 rate_limited with Retry-After, before any upgrade;
// a closed connection frees its slot; a slot store that cannot answer admits.

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/tcpproxy"
	"github.com/dashsync/dashsync/internal/testdial"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/memory"
	"github.com/dashsync/dashsync/store/redis"
)

// limitConns bounds a hub's connections per user with slots.
func limitConns(max int, slots hub.ConnSlots) func(*hub.Config) {
	return func(c *hub.Config) { c.MaxConnsPerUser, c.Slots = max, slots }
}

// refusal is a refused upgrade: its status, Retry-After and error body.
type refusal struct {
	status     int
	retryAfter string
	code       string
	retryMs    int64
}

// tryDial opens a WebSocket for user; when the upgrade is refused it returns the
// refusal instead (and a nil client).
func tryDial(t testing.TB, url, user string) (*wsclient.Client, refusal) {
	t.Helper()
	c, r, err := testdial.Try(t, url, testenv.Token(t, user), 10*time.Second)
	switch {
	case err != nil:
		t.Fatalf("dial as %s: %v", user, err)
	case c != nil:
		return c, refusal{}
	case r.BodyErr != nil:
		t.Fatalf("dial as %s refused with %d and body %q, not the error body", user, r.Status, r.Body)
	}
	return nil, refusal{status: r.Status, retryAfter: r.RetryAfter, code: r.Code, retryMs: r.RetryAfterMs}
}

// wantRefused fails t unless r is SPEC §12's refusal: 429 rate_limited, Retry-After.
func wantRefused(t testing.TB, what string, r refusal) {
	t.Helper()
	secs, err := strconv.Atoi(r.retryAfter)
	if r.status != http.StatusTooManyRequests || r.code != "rate_limited" || err != nil || secs < 1 || r.retryMs <= 0 {
		t.Fatalf("%s: got %+v, want 429 rate_limited with Retry-After and retryAfterMs", what, r)
	}
}

// eventuallyDial dials as user until the upgrade is admitted, failing t after a
// generous deadline.
func eventuallyDial(t testing.TB, url, user, what string) *wsclient.Client {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, r := tryDial(t, url, user)
		if c != nil {
			return c
		}
		wantRefused(t, what, r)
		if time.Now().After(deadline) {
			t.Fatalf("%s: still refused after 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConnLimit_UpgradeOverTheLimitIs429AndAClosedConnectionFreesItsSlot(t *testing.T) {
	t.Parallel()
	s := testenv.New(t, testenv.Options{Hub: limitConns(2, memory.NewConnSlots(0, nil))})
	first, _ := tryDial(t, s.WSURL, "alice")
	second, _ := tryDial(t, s.WSURL, "alice")
	if first == nil || second == nil {
		t.Fatal("alice's first two connections refused with a limit of 2")
	}
	_, r := tryDial(t, s.WSURL, "alice")
	wantRefused(t, "alice's third connection", r)
	if got := s.Hub.Connections("alice"); got != 2 {
		t.Errorf("alice has %d connections open after the refusal, want 2: the refusal came after an upgrade", got)
	}
	if c, r := tryDial(t, s.WSURL, "bob"); c == nil {
		t.Fatalf("bob's connection refused (%+v): alice's count against bob", r)
	}
	// The refused upgrade took no slot, and a connection that closes frees its own.
	if m := req(t, first, map[string]any{"type": "ping"}); m.Type != "pong" {
		t.Fatalf("ping: got %s", m.Raw)
	}
	first.CloseNow()
	eventuallyDial(t, s.WSURL, "alice", "a connection after one of alice's closed")
	_, r = tryDial(t, s.WSURL, "alice")
	wantRefused(t, "alice's third connection again", r)
}

func TestConnLimit_SlotStoreUnreachableAdmits(t *testing.T) {
	t.Parallel()
	// A Redis that refuses connections: every slot call fails.
	down := tcpproxy.New(t, "127.0.0.1:6379")
	down.Cut()
	rdb := goredis.NewClient(&goredis.Options{Addr: down.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	s := testenv.New(t, testenv.Options{Hub: limitConns(1, redis.NewConnSlots(rdb, "", 0))})
	for i := range 3 {
		start := time.Now()
		if c, r := tryDial(t, s.WSURL, "alice"); c == nil {
			t.Fatalf("connection %d refused (%+v) while the slot store is down, want it admitted (fail open)", i+1, r)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("connection %d took %v to open: the slot store's outage held it past its timeout", i+1, took)
		}
	}
}
