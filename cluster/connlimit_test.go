package cluster_test

// This file tests SPEC §12's bound on WebSocket connections per user across
// instances: with Redis, a user's connections on every instance count against one
// limit, a connection closed on one instance frees a slot for the others, and the
// slots of an instance that died free themselves.

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testdial"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/redis"
)

// newLimitedCluster starts two instances as newCluster does, each also counting
// connections in Redis on a client of its own, at most max per user.
func newLimitedCluster(t testing.TB, max int) (cluster, string) {
	t.Helper()
	testredis.Require(t)
	db := testpg.NewDatabase(t)
	prefix := testredis.Prefix(t)
	instance := func() *testenv.Server {
		br, pr, check := testenv.RedisWithCheck(t, testredis.URL(), prefix)
		slots := redis.NewConnSlots(testredis.Client(t), prefix, 0)
		return testenv.New(t, testenv.Options{Backend: "postgres", Store: openPostgres(t, db),
			Broker: br, Presence: pr,
			Hub: func(c *hub.Config) { c.MaxConnsPerUser, c.Slots = max, slots },
			API: func(c *api.Config) { c.Checks = append(c.Checks, check) }})
	}
	return cluster{a: instance(), b: instance()}, prefix
}

// dialStatus opens a WebSocket to s as user: the client, or the refused upgrade's
// status and error code.
func dialStatus(t testing.TB, s *testenv.Server, user string) (*wsclient.Client, int, string) {
	t.Helper()
	c, r, err := testdial.Try(t, s.WSURL, testenv.Token(t, user), waitLimit)
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	if c != nil {
		return c, http.StatusSwitchingProtocols, ""
	}
	if r.Status == http.StatusTooManyRequests && r.RetryAfter == "" {
		t.Errorf("a 429 without Retry-After")
	}
	return nil, r.Status, r.Code
}

func TestCluster_ConnectionsPerUserCountAcrossInstances(t *testing.T) {
	t.Parallel()
	c, prefix := newLimitedCluster(t, 3)
	onA, status, _ := dialStatus(t, c.a, owner)
	if onA == nil {
		t.Fatalf("first connection, on A: got %d, want it open", status)
	}
	if cl, status, _ := dialStatus(t, c.a, owner); cl == nil {
		t.Fatalf("second connection, on A: got %d, want it open", status)
	}
	if cl, status, _ := dialStatus(t, c.b, owner); cl == nil {
		t.Fatalf("third connection, on B: got %d, want it open", status)
	}
	for i, s := range []*testenv.Server{c.b, c.a} {
		if cl, status, code := dialStatus(t, s, owner); cl != nil || status != http.StatusTooManyRequests || code != "rate_limited" {
			t.Fatalf("fourth connection, on instance %d: got %d %q, want 429 rate_limited: the limit is the user's across instances", i, status, code)
		}
	}
	if cl, status, _ := dialStatus(t, c.b, "bob"); cl == nil {
		t.Fatalf("bob's connection: got %d, want it open", status)
	}

	// A connection closed on A frees a slot B can give out.
	onA.CloseNow()
	eventually(t, "B admitting a connection once one on A closed", func() bool {
		cl, status, code := dialStatus(t, c.b, owner)
		if cl == nil && (status != http.StatusTooManyRequests || code != "rate_limited") {
			t.Fatalf("a connection on B: got %d %q, want it open or 429", status, code)
		}
		return cl != nil
	})
	if cl, status, _ := dialStatus(t, c.a, owner); cl != nil || status != http.StatusTooManyRequests {
		t.Fatalf("a connection past the limit again, on A: got %d, want 429", status)
	}

	// An instance that died holds carol's three slots: it never refreshes them, so
	// they expire and the live instances admit her again.
	dead := redis.NewConnSlots(testredis.Client(t), prefix, time.Second)
	for _, conn := range []string{"c-dead-1", "c-dead-2", "c-dead-3"} {
		if ok, err := dead.Acquire(context.Background(), "carol", conn, 3); err != nil || !ok {
			t.Fatalf("the dead instance's slot %s: %v %v", conn, ok, err)
		}
	}
	if cl, status, _ := dialStatus(t, c.a, "carol"); cl != nil || status != http.StatusTooManyRequests {
		t.Fatalf("carol on A while the dead instance's slots live: got %d, want 429", status)
	}
	eventually(t, "A admitting carol once the dead instance's slots expired", func() bool {
		cl, _, _ := dialStatus(t, c.a, "carol")
		return cl != nil
	})
}
