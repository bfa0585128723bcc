package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testlimit"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/store/redis"
	dsync "github.com/dashsync/dashsync/sync"
)

// tiny refills one token in 1000 s: nothing refills while a test runs, so counts are
// exact.
const tiny = 0.001

// limitedServer starts a server whose API and hub spend budgets of l under limits.
func limitedServer(t testing.TB, o testenv.Options, l ratelimit.Limiter, limits ratelimit.Limits) (*testenv.Server, *harness) {
	t.Helper()
	o.API = func(c *api.Config) { c.Limiter, c.Limits = l, limits }
	o.Hub = func(c *hub.Config) { c.Limiter, c.Limits = l, limits }
	s := testenv.New(t, o)
	return s, &harness{url: s.URL, secret: testenv.Secret, store: s.Store}
}

// seedLayout creates a layout for the client's user without spending any budget.
func seedLayout(t testing.TB, s *testenv.Server, user string) dsync.Layout {
	t.Helper()
	name, cols := "L", 12
	l, err := s.Service.CreateLayout(context.Background(), user, dsync.NewLayout{Author: user,
		Doc: dsync.LayoutDoc{Name: &name, Columns: &cols}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// version reads the committed version of a layout, spending no budget.
func version(t testing.TB, s *testenv.Server, user, id string) int64 {
	t.Helper()
	l, err := s.Service.Layout(context.Background(), user, id)
	if err != nil {
		t.Fatal(err)
	}
	return l.Version
}

// patchName is a forced PATCH renaming the layout: each one commits a version.
func patchName(i int) map[string]any {
	return map[string]any{"version": 1, "force": true,
		"ops": []map[string]any{{"op": "replace", "path": "/name", "value": fmt.Sprint("name ", i)}}}
}

// wantRateLimited checks a 429 rate_limited answer with Retry-After and retryAfterMs.
func (r *resp) wantRateLimited(t testing.TB) errorBody {
	t.Helper()
	e := r.wantError(t, http.StatusTooManyRequests, "rate_limited")
	if e.Error.RetryAfterMs <= 0 {
		t.Fatalf("got retryAfterMs %d, want > 0; body: %s", e.Error.RetryAfterMs, r.body)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 || int64(ra) < e.Error.RetryAfterMs/1000 {
		t.Fatalf("got Retry-After %q with retryAfterMs %d, want whole seconds ≥ 1 covering it", r.header.Get("Retry-After"), e.Error.RetryAfterMs)
	}
	return e
}

func TestRateLimit_RESTBurstOverTheLimitGets429AndCommitsNothing(t *testing.T) {
	t.Parallel()
	testlimit.ForEachBackend(t, func(t *testing.T, newLimiter func() ratelimit.Limiter) {
		s, h := limitedServer(t, testenv.Options{}, newLimiter(), ratelimit.Limits{REST: ratelimit.Limit{Rate: tiny, Burst: 5}})
		c := h.newUser(t)
		l := seedLayout(t, s, c.user)
		ok := 0
		for i := range 9 {
			r := c.do(t, "PATCH", "/api/dashboard/layouts/"+l.ID, patchName(i))
			if r.status == http.StatusOK {
				ok++
				continue
			}
			r.wantRateLimited(t)
		}
		if ok != 5 {
			t.Fatalf("got %d of 9 PATCHes answered 200 with a REST burst of 5, want 5", ok)
		}
		if v := version(t, s, c.user, l.ID); v != 1+5 {
			t.Fatalf("got layout version %d, want %d: only the 5 allowed PATCHes commit", v, 1+5)
		}
		// Another user's budget is untouched.
		other := h.newUser(t)
		other.do(t, "GET", "/api/dashboard/layouts", nil).want(t, http.StatusOK, nil)
	})
}

func TestRateLimit_WebSocketUpgradeIsOneRESTRequest(t *testing.T) {
	t.Parallel()
	testlimit.ForEachBackend(t, func(t *testing.T, newLimiter func() ratelimit.Limiter) {
		s, h := limitedServer(t, testenv.Options{}, newLimiter(), ratelimit.Limits{REST: ratelimit.Limit{Rate: tiny, Burst: 2}})
		c := h.newUser(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := wsclient.Dial(ctx, s.WSURL, wsclient.Options{Token: c.token})
		if err != nil {
			t.Fatalf("first upgrade: %v", err)
		}
		ws.CloseNow()
		c.do(t, "GET", "/api/dashboard/layouts", nil).want(t, http.StatusOK, nil)
		_, res, err := wsclient.Dial(ctx, s.WSURL, wsclient.Options{Token: c.token})
		if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("third request (an upgrade) over a REST burst of 2: got %v, %v, want 429", res, err)
		}
		if res.Header.Get("Retry-After") == "" {
			t.Fatal("got a refused upgrade without Retry-After")
		}
	})
}

func TestRateLimit_EditBudgetIsSharedByRESTWritesAndWebSocketEdits(t *testing.T) {
	t.Parallel()
	testlimit.ForEachBackend(t, func(t *testing.T, newLimiter func() ratelimit.Limiter) {
		s, h := limitedServer(t, testenv.Options{}, newLimiter(), ratelimit.Limits{Edits: ratelimit.Limit{Rate: tiny, Burst: 4}})
		c := h.newUser(t)
		l := seedLayout(t, s, c.user)
		c.do(t, "PATCH", "/api/dashboard/layouts/"+l.ID, patchName(1)).want(t, http.StatusOK, nil)
		var got layout
		c.do(t, "GET", "/api/dashboard/layouts/"+l.ID, nil).want(t, http.StatusOK, &got)
		got.Name = "put"
		c.do(t, "PUT", "/api/dashboard/layouts/"+l.ID, got).want(t, http.StatusOK, nil)
		ws := s.Dial(t, c.user, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ack, err := ws.Request(ctx, map[string]any{"type": "edit", "channel": "layout:" + l.ID, "base": 1, "force": true,
			"ops": []map[string]any{{"op": "replace", "path": "/name", "value": "ws"}}})
		if err != nil || ack.Type != "ack" {
			t.Fatalf("third edit over WebSocket: got %+v, %v, want ack", ack, err)
		}
		// The fourth edit, through the bulk PUT, is the last of the budget: of two
		// entries, one commits and one is refused on its own.
		var bulk struct {
			Results []struct {
				ID     string `json:"id"`
				Status int    `json:"status"`
				Error  *struct {
					Code         string `json:"code"`
					RetryAfterMs int64  `json:"retryAfterMs"`
				} `json:"error"`
			} `json:"results"`
		}
		other := seedLayout(t, s, c.user)
		c.do(t, "PUT", "/api/dashboard/layouts", map[string]any{"layouts": []map[string]any{
			{"id": l.ID, "version": 4, "name": "bulk"}, {"id": other.ID, "version": 1, "name": "bulk"}}}).
			want(t, http.StatusMultiStatus, &bulk)
		if r := bulk.Results; len(r) != 2 || r[0].Status != 200 || r[1].Status != 429 || r[1].Error == nil ||
			r[1].Error.Code != "rate_limited" || r[1].Error.RetryAfterMs <= 0 {
			t.Fatalf("got bulk results %+v, want the first committed and the second 429 rate_limited", bulk.Results)
		}
		// The budget is spent for every kind of edit; reads still work.
		c.do(t, "PATCH", "/api/dashboard/layouts/"+l.ID, patchName(2)).wantRateLimited(t)
		c.do(t, "POST", fmt.Sprintf("/api/dashboard/layouts/%s/versions/1/restore", l.ID), nil).wantRateLimited(t)
		ack, err = ws.Request(ctx, map[string]any{"type": "edit", "channel": "layout:" + l.ID, "base": 1, "force": true,
			"ops": []map[string]any{{"op": "replace", "path": "/name", "value": "ws2"}}})
		if err != nil || ack.Type != "error" || ack.Error == nil || ack.Error.Code != "rate_limited" || ack.Error.RetryAfterMs <= 0 {
			t.Fatalf("WebSocket edit over the budget: got %+v, %v, want a rate_limited error with retryAfterMs", ack, err)
		}
		c.do(t, "GET", "/api/dashboard/layouts/"+l.ID, nil).want(t, http.StatusOK, &got)
		if got.Version != 5 || got.Name != "bulk" {
			t.Fatalf("got version %d named %q, want 5 named \"bulk\": nothing over the budget commits", got.Version, got.Name)
		}
		if v := version(t, s, c.user, other.ID); v != 1 {
			t.Fatalf("got the refused bulk entry's layout at version %d, want 1", v)
		}
	})
}

func TestRateLimit_TwoInstancesOnOneRedisShareAUsersBudget(t *testing.T) {
	t.Parallel()
	newLimiter := testlimit.RedisShared(t)
	limits := ratelimit.Limits{REST: ratelimit.Limit{Rate: tiny, Burst: 6}}
	s1, h1 := limitedServer(t, testenv.Options{}, newLimiter(), limits)
	_, h2 := limitedServer(t, testenv.Options{Store: s1.Store}, newLimiter(), limits)
	user := "u-shared-" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano(), 36))
	clients := []*client{
		{h: h1, user: user, token: h1.token(t, user, time.Hour)},
		{h: h2, user: user, token: h2.token(t, user, time.Hour)},
	}
	allowed := [2]int{}
	for i := range 12 {
		r := clients[i%2].do(t, "GET", "/api/dashboard/layouts", nil)
		if r.status == http.StatusOK {
			allowed[i%2]++
			continue
		}
		r.wantRateLimited(t)
	}
	if allowed[0]+allowed[1] != 6 || allowed[0] == 0 || allowed[1] == 0 {
		t.Fatalf("got %v requests allowed by the two instances, want 6 in all, some on each: one budget of 6", allowed)
	}
}

func TestRateLimit_LimiterFailureFailsOpen(t *testing.T) {
	t.Parallel()
	// A Redis that refuses connections: every limiter call fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	l := redis.NewLimiter(rdb, redis.LimiterOptions{Timeout: 200 * time.Millisecond})
	limits := ratelimit.Limits{REST: ratelimit.Limit{Rate: tiny, Burst: 1}, Edits: ratelimit.Limit{Rate: tiny, Burst: 1}}
	s, h := limitedServer(t, testenv.Options{}, l, limits)
	c := h.newUser(t)
	lay := seedLayout(t, s, c.user)
	for i := range 3 {
		c.do(t, "PATCH", "/api/dashboard/layouts/"+lay.ID, patchName(i)).want(t, http.StatusOK, nil)
	}
	if v := version(t, s, c.user, lay.ID); v != 4 {
		t.Fatalf("got version %d, want 4: with the limiter down, requests are allowed", v)
	}
	m := h.do(t, "GET", "/metrics", nil, nil)
	if !strings.Contains(string(m.body), "dashsync_http_rate_limiter_errors_total 6") {
		t.Fatalf("want dashsync_http_rate_limiter_errors_total 6 (a REST and an edit check per PATCH) in /metrics; got:\n%s", m.body)
	}
}

// A link's requests spend a budget of its own (SPEC §10: rate limits for a link count
// per link): one link's burst spent, another link of the same layout and the owner
// still have theirs.
func TestRateLimit_EachLinkHasItsOwnRESTBudget(t *testing.T) {
	t.Parallel()
	testlimit.ForEachBackend(t, func(t *testing.T, newLimiter func() ratelimit.Limiter) {
		s, _ := limitedServer(t, testenv.Options{}, newLimiter(), ratelimit.Limits{REST: ratelimit.Limit{Rate: tiny, Burst: 3}})
		l := seedLayout(t, s, "alice")
		var links []string
		for range 2 {
			lk, err := s.Service.CreateLink(context.Background(), "alice", l.ID, dsync.RoleViewer, dsync.DefaultLinkSeconds)
			if err != nil {
				t.Fatal(err)
			}
			links = append(links, lk.Token)
		}
		path := "/api/dashboard/layouts/" + l.ID
		for i := range 3 {
			if st, b := s.RESTToken(t, links[0], "GET", path, nil); st != http.StatusOK {
				t.Fatalf("link 1, read %d of its burst of 3: status %d: %s", i+1, st, b)
			}
		}
		if st, b := s.RESTToken(t, links[0], "GET", path, nil); st != http.StatusTooManyRequests {
			t.Fatalf("link 1, a 4th read: status %d, want 429: %s", st, b)
		}
		if st, b := s.RESTToken(t, links[1], "GET", path, nil); st != http.StatusOK {
			t.Fatalf("link 2 after link 1 spent its burst: status %d, want 200: %s", st, b)
		}
		if st, b := s.REST(t, "alice", "GET", path, nil); st != http.StatusOK {
			t.Fatalf("the owner after link 1 spent its burst: status %d, want 200: %s", st, b)
		}
	})
}
