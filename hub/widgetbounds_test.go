package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testnet"
	"github.com/dashsync/dashsync/internal/testrest"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/source"
	"github.com/dashsync/dashsync/store/memory"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// These tests hold widget data on a real server to SPEC §12: a source can neither
// crash, spin nor bloat the server, fetches are budgeted, and a WebSocket `refresh`
// answers `refreshed` and then `data`.

// boundKinds accepts every test.* kind besides static and push.
type boundKinds struct{}

func (boundKinds) CheckSource(ctx context.Context, src dsync.Source) error {
	if strings.HasPrefix(src.Kind, "test.") {
		return nil
	}
	return dsync.BasicSources{}.CheckSource(ctx, src)
}

// tally is a fetched source answering {"value": n}, n counting its fetches; it
// panics instead while panics is set.
type tally struct {
	n      atomic.Int64
	panics atomic.Bool
}

func (s *tally) Fetch(context.Context, dsync.Widget) (json.RawMessage, error) {
	n := s.n.Add(1)
	if s.panics.Load() {
		panic(fmt.Sprintf("source bug on fetch %d", n))
	}
	return fmt.Appendf(nil, `{"value":%d}`, n), nil
}

// createWidget creates one of alice's widgets with src.
func createWidget(t testing.TB, s *testenv.Server, src dsync.Source) dsync.Widget {
	t.Helper()
	w, err := s.Service.CreateWidget(context.Background(), "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("w"), Source: &src}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// storeWidget writes a widget of alice's straight into the store, as one stored
// before the bounds were checked: nothing validates src.
func storeWidget(t testing.TB, s *testenv.Server, id string, src dsync.Source) dsync.Widget {
	t.Helper()
	now := dsync.NewTime(time.Now())
	w := dsync.Widget{ID: id, Owner: "alice", Type: "stat", Title: "old", Source: src, Version: 1, CreatedAt: now, UpdatedAt: now}
	doc, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Store.InTx(context.Background(), func(tx dsync.Tx) error {
		return tx.CreateWidget(context.Background(), w, dsync.Change{Version: 1, Author: "alice", Time: now, Doc: doc})
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// refresh sends a `refresh` with id as a plain frame, so that its reply reaches the
// inbox in order with the connection's other messages.
func refresh(t testing.TB, c *wsclient.Client, id int, channel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, fmt.Appendf(nil, `{"id":%d,"type":"refresh","channel":%q}`, id, channel)); err != nil {
		t.Fatal(err)
	}
}

// dataAfterReply waits for the reply with id and a `data` on channel after it, and
// returns both.
func dataAfterReply(t testing.TB, box *inbox, id int64, channel string) (reply, data wsclient.Msg) {
	t.Helper()
	box.waitFor(t, fmt.Sprintf("the reply to %d, then data on %s", id, channel), func(ms []wsclient.Msg) bool {
		i := slices.IndexFunc(ms, func(m wsclient.Msg) bool { return m.ID != nil && *m.ID == id })
		if i < 0 {
			return false
		}
		reply = ms[i]
		if reply.Type != "refreshed" {
			t.Fatalf("refresh %d: got %s, want refreshed", id, reply.Raw)
		}
		j := slices.IndexFunc(ms[i+1:], func(m wsclient.Msg) bool { return m.Type == "data" && m.Channel == channel })
		if j < 0 {
			return false
		}
		data = ms[i+1+j]
		return true
	})
	return reply, data
}

func TestRefresh_RefreshedIsFollowedByDataForEveryKind(t *testing.T) {
	t.Parallel()
	src := &tally{}
	s := testenv.New(t, testenv.Options{Sources: boundKinds{}, Fetchers: map[string]widgetdata.Fetcher{"test.tally": src}})
	static := createWidget(t, s, dsync.Source{Kind: "static", Data: json.RawMessage(`{"value":42}`)})
	empty := createWidget(t, s, dsync.Source{Kind: "push"})
	pushed := createWidget(t, s, dsync.Source{Kind: "push"})
	if code, body := s.REST(t, "alice", http.MethodPut, "/api/dashboard/widgets/"+pushed.ID+"/data", map[string]any{"data": map[string]int{"value": 7}}); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	fetched := createWidget(t, s, dsync.Source{Kind: "test.tally", RefreshSeconds: 3600})
	cases := []struct {
		name      string
		w         dsync.Widget
		subscribe bool
		data      string // a part of the data message, or "null"
	}{
		{"static", static, false, `"data":{"value":42}`},
		{"static, subscribed", static, true, `"data":{"value":42}`},
		{"push with nothing pushed", empty, false, "null"},
		{"push with nothing pushed, subscribed", empty, true, "null"},
		{"push", pushed, false, `"data":{"value":7}`},
		{"push, subscribed", pushed, true, `"data":{"value":7}`},
		{"fetched", fetched, false, `"data":{"value":`},
		{"fetched, subscribed", fetched, true, `"data":{"value":`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			box := newInbox()
			cl := s.Dial(t, "alice", box.add)
			ch := "widget:" + c.w.ID
			if c.subscribe {
				if r := req(t, cl, map[string]any{"type": "subscribe", "channel": ch}); r.Type != "subscribed" {
					t.Fatalf("subscribe: %s", r.Raw)
				}
			}
			id := 1000 + i
			refresh(t, cl, id, ch)
			_, d := dataAfterReply(t, box, int64(id), ch)
			if got := string(d.Data); (c.data == "null" && got != "null") || (c.data != "null" && !strings.Contains(got, c.data)) {
				t.Fatalf("data after refreshed: got %s, want %s", d.Raw, c.data)
			}
		})
	}
}

func TestWidgetSource_PanicIsSourceFailedAndTheServerServesOn(t *testing.T) {
	t.Parallel()
	src := &tally{}
	src.panics.Store(true)
	s := testenv.New(t, testenv.Options{Sources: boundKinds{}, Fetchers: map[string]widgetdata.Fetcher{"test.tally": src}})
	w := createWidget(t, s, dsync.Source{Kind: "test.tally", RefreshSeconds: 1})
	ch := "widget:" + w.ID
	box := newInbox()
	cl := s.Dial(t, "alice", box.add)
	// A subscribe reads the data: a source failure answers data null.
	if r := req(t, cl, map[string]any{"type": "subscribe", "channel": ch}); r.Type != "subscribed" || string(r.Data) != "null" {
		t.Fatalf("subscribe to a panicking widget: got %s, want subscribed with data null", r.Raw)
	}
	if r := req(t, cl, map[string]any{"type": "refresh", "channel": ch}); r.Type != "error" || r.Error == nil || r.Error.Code != "source_failed" {
		t.Fatalf("refresh of a panicking widget: got %s, want source_failed", r.Raw)
	}
	code, body := s.REST(t, "alice", http.MethodGet, "/api/dashboard/widgets/"+w.ID+"?refresh=true", nil)
	if code != http.StatusBadGateway || !strings.Contains(string(body), "source_failed") {
		t.Fatalf("GET of a panicking widget: got %d %s, want 502 source_failed", code, body)
	}
	// The live refresher (once a second) meets the panic too, and goes on: a wait for
	// two more fetches, with a generous deadline.
	deadline := time.Now().Add(30 * time.Second)
	start := src.n.Load()
	for src.n.Load() < start+2 {
		if time.Now().After(deadline) {
			t.Fatalf("the live refresher stopped after a panic: %d fetches", src.n.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The server serves on: the same connection, and the widget once its source heals.
	if r := req(t, cl, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("ping after the panics: got %s", r.Raw)
	}
	src.panics.Store(false)
	box.waitFor(t, "live data once the source works", func(ms []wsclient.Msg) bool {
		return slices.ContainsFunc(ms, func(m wsclient.Msg) bool { return m.Type == "data" && m.Channel == ch })
	})
	if code, body := s.REST(t, "alice", http.MethodGet, "/api/dashboard/widgets/"+w.ID, nil); code != http.StatusOK {
		t.Fatalf("GET after the source healed: %d %s", code, body)
	}
}

// A demo.series widget stored with a refreshSeconds whose ×1000 wraps to 0 (a
// division by zero in the fetch) and whose period in seconds wraps to 0 (a live
// refresh with no pause), and a ttlSeconds whose TTL overflows: reading and
// subscribing to it works, and the live refresh keeps to the bounded period.
func TestWidgetSource_OutOfBoundsSecondsNeitherCrashNorSpin(t *testing.T) {
	t.Parallel()
	reg, err := source.NewBuiltins(source.Options{HTTP: source.HTTPOptions{Resolver: testnet.NewResolver(nil), Dialer: testnet.NewDialer(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	tl := &tally{}
	fetchers := reg.Fetchers()
	fetchers["test.tally"] = tl
	s := testenv.New(t, testenv.Options{Sources: boundKinds{}, Fetchers: fetchers})
	const huge = 2305843009213693952 // 1<<61
	series := storeWidget(t, s, "0192f0c4-6c3e-7b8a-9d3e-000000000001", dsync.Source{Kind: "demo.series", RefreshSeconds: huge, TTLSeconds: huge})
	counted := storeWidget(t, s, "0192f0c4-6c3e-7b8a-9d3e-000000000002", dsync.Source{Kind: "test.tally", RefreshSeconds: huge, TTLSeconds: math.MaxInt64 / int(time.Second)})

	code, body := s.REST(t, "alice", http.MethodGet, "/api/dashboard/widgets/"+series.ID, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"points":[[`) {
		t.Fatalf("GET of the demo.series widget: got %d %.200s, want its points", code, body)
	}
	code, body = s.REST(t, "alice", http.MethodGet, "/api/dashboard/widgets/"+counted.ID, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"value":1`) {
		t.Fatalf("GET of the widget with a huge ttlSeconds: got %d %s, want its data", code, body)
	}
	box := newInbox()
	cl := s.Dial(t, "alice", box.add)
	for _, w := range []dsync.Widget{series, counted} {
		if r := req(t, cl, map[string]any{"type": "subscribe", "channel": "widget:" + w.ID}); r.Type != "subscribed" || string(r.Data) == "null" {
			t.Fatalf("subscribe: got %.200s, want subscribed with data", r.Raw)
		}
	}
	// The period is bounded to a day: in the next second and a half, no live refresh
	// at all. Unbounded, it was tens of thousands of fetches. The window is part of
	// the scenario, not a wait for anything: a correct server does nothing in it
	// however slow the machine, and the spin it guards against shows within any part
	// of it however fast the machine.
	time.Sleep(1500 * time.Millisecond)
	if n := len(ofType(box.all(), "data")); n != 0 {
		t.Fatalf("%d data messages in 1.5 s for widgets refreshed once a day, want 0", n)
	}
	if n := tl.n.Load(); n != 1 {
		t.Fatalf("%d fetches in 1.5 s of a widget refreshed once a day, want 1 (the first read)", n)
	}
	if r := req(t, cl, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("ping: got %s", r.Raw)
	}
}

// budgetServer is a server whose data service keeps the per-user fetch budget lim.
func budgetServer(t testing.TB, src widgetdata.Fetcher, lim ratelimit.Limit) *testenv.Server {
	return testenv.New(t, testenv.Options{Sources: boundKinds{},
		Fetchers: map[string]widgetdata.Fetcher{"test.tally": src},
		Data: func(o *widgetdata.Options) {
			o.FetchLimiter, o.FetchRate = memory.NewLimiter(memory.LimiterOptions{}), lim
		}})
}

func TestRefresh_WithinASecondOfTheLastFetchIsAnsweredFromTheCache(t *testing.T) {
	t.Parallel()
	src := &tally{}
	s := budgetServer(t, src, ratelimit.Limit{})
	w := createWidget(t, s, dsync.Source{Kind: "test.tally", RefreshSeconds: 3600})
	ch := "widget:" + w.ID
	box := newInbox()
	cl := s.Dial(t, "alice", box.add)
	// forced does forced refresh i (WebSocket refreshes and REST ?refresh=true alike)
	// and returns the data it answered.
	forced := func(i int) dsync.WidgetData {
		t.Helper()
		var raw json.RawMessage
		if i%2 == 0 {
			refresh(t, cl, 2000+i, ch)
			_, m := dataAfterReply(t, box, int64(2000+i), ch)
			raw = m.Data
		} else {
			code, body := s.REST(t, "alice", http.MethodGet, "/api/dashboard/widgets/"+w.ID+"?refresh=true", nil)
			var got struct {
				Data json.RawMessage `json:"data"`
			}
			if code != http.StatusOK || json.Unmarshal(body, &got) != nil {
				t.Fatalf("GET ?refresh=true: %d %s", code, body)
			}
			raw = got.Data
		}
		var d dsync.WidgetData
		if err := json.Unmarshal(raw, &d); err != nil || d.FetchedAt.IsZero() {
			t.Fatalf("forced refresh %d: got data %s, want the widget's data with its fetchedAt (%v)", i, raw, err)
		}
		return d
	}
	// Each answer carries the fetchedAt of the fetch it stands on. An answer that came
	// back less than MinFetchInterval after the last fetch was decided less than that
	// after it, so it must be that fetch, again; one that came back later may be a new
	// fetch (it is, on a machine this slow). So this never fails for a slow machine,
	// and a server fetching each time fails wherever the five fit in a second.
	last := forced(0) // nothing cached yet: the first one fetches
	fetches := 1
	for i := 1; i < 5; i++ {
		d := forced(i)
		answered := time.Now()
		switch {
		case answered.Sub(last.FetchedAt.Time) < widgetdata.MinFetchInterval:
			if !d.FetchedAt.Equal(last.FetchedAt.Time) || string(d.Data) != string(last.Data) {
				t.Fatalf("forced refresh %d, answered %v after the fetch at %v: got data %s fetched at %v, want that fetch's %s",
					i, answered.Sub(last.FetchedAt.Time), last.FetchedAt, d.Data, d.FetchedAt, last.Data)
			}
		case d.FetchedAt.Before(last.FetchedAt.Time):
			t.Fatalf("forced refresh %d: got data fetched at %v, older than the fetch at %v", i, d.FetchedAt, last.FetchedAt)
		case !d.FetchedAt.Equal(last.FetchedAt.Time):
			last = d
			fetches++
		}
	}
	// No fetch went unseen: every fetch the source answered is one the answers show.
	if n := src.n.Load(); n != int64(fetches) {
		t.Fatalf("5 forced refreshes answered with %d fetches: the source was asked %d times", fetches, n)
	}
	t.Logf("5 forced refreshes: %d fetch(es)", fetches)
}

func TestFetchBudget_PerUserOnOneInstance(t *testing.T) {
	t.Parallel()
	src := &tally{}
	// The default burst, refilled slowly enough that nothing comes back during the
	// test.
	s := budgetServer(t, src, ratelimit.Limit{Rate: 0.001, Burst: 20})
	var ids []string
	for range 30 {
		ids = append(ids, createWidget(t, s, dsync.Source{Kind: "test.tally", RefreshSeconds: 3600}).ID)
	}
	code, body := s.REST(t, "alice", http.MethodPost, "/api/dashboard/widgets/batch", map[string]any{"ids": ids, "refresh": true})
	if code != http.StatusMultiStatus {
		t.Fatalf("batch of 30 forced refreshes: got %d, want 207", code)
	}
	_, limited := testrest.SplitRateLimited(t, body, ids)
	if n := src.n.Load(); n != 20 || len(limited) != 10 {
		t.Fatalf("30 forced refreshes with a burst of 20: %d fetches, %d rate limited; want 20 and 10", n, len(limited))
	}
	// Over budget, a WebSocket refresh of a widget with nothing cached is rate_limited,
	// and the connection stays open.
	cl := s.Dial(t, "alice", nil)
	r := req(t, cl, map[string]any{"type": "refresh", "channel": "widget:" + limited[0]})
	if r.Type != "error" || r.Error == nil || r.Error.Code != "rate_limited" || r.Error.RetryAfterMs <= 0 {
		t.Fatalf("refresh over budget: got %s, want rate_limited with retryAfterMs", r.Raw)
	}
	if r := req(t, cl, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("ping: %s", r.Raw)
	}
	// Another user has a budget of their own.
	bw, err := s.Service.CreateWidget(context.Background(), "bob", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("b"),
		Source: &dsync.Source{Kind: "test.tally", RefreshSeconds: 3600}}, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := s.REST(t, "bob", http.MethodGet, "/api/dashboard/widgets/"+bw.ID, nil); code != http.StatusOK {
		t.Fatalf("bob's widget with alice's budget spent: %d %s", code, body)
	}
}

// panickyLeases is a lease service that panics when the live refresher takes its
// lease: a fault in the refresher outside the fetch. The fetch locks are in-process
// ones that work.
type panickyLeases struct {
	calls atomic.Int64
	fetch *memory.Leases
}

func (l *panickyLeases) Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if !strings.HasPrefix(key, "lease:refresh:") {
		return l.fetch.Acquire(ctx, key, ttl)
	}
	panic(fmt.Sprintf("lease service bug on call %d", l.calls.Add(1)))
}

func (l *panickyLeases) Release(ctx context.Context, key string) error {
	return l.fetch.Release(ctx, key)
}

func TestLiveRefresh_PanicInTheRefresherIsLoggedAndItGoesOn(t *testing.T) {
	t.Parallel()
	leases := &panickyLeases{fetch: memory.NewLeases(nil)}
	s := testenv.New(t, testenv.Options{Sources: boundKinds{}, Fetchers: map[string]widgetdata.Fetcher{"test.tally": &tally{}},
		Leases: leases})
	const period = time.Second
	w := createWidget(t, s, dsync.Source{Kind: "test.tally", RefreshSeconds: int(period / time.Second)})
	cl := s.Dial(t, "alice", nil)
	followed := time.Now() // the refresher starts with the subscribe, after this
	if r := req(t, cl, map[string]any{"type": "subscribe", "channel": "widget:" + w.ID}); r.Type != "subscribed" {
		t.Fatalf("subscribe: %s", r.Raw)
	}
	// The refresher panics once a period; after each panic it waits (5 s) and tries
	// again rather than die or spin. A wait for the second panic, with a generous
	// deadline.
	deadline := time.Now().Add(30 * time.Second)
	for leases.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the refresher stopped after %d panics", leases.calls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := req(t, cl, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("ping after the panics: %s", r.Raw)
	}
	if code, body := s.REST(t, "alice", http.MethodGet, "/api/dashboard/widgets/"+w.ID, nil); code != http.StatusOK {
		t.Fatalf("GET after the panics: %d %s", code, body)
	}
	// Each panic comes a period after the refresher started or a retry wait and a
	// period after the one before, so in the time elapsed there can have been at most
	// 1 + elapsed/(retry+period) of them. The bound grows with the time this machine
	// took; a refresher that spins, or skips the retry wait, exceeds it at once.
	const retry = 5 * time.Second // widgetdata's wait after a panicked refresh
	elapsed := time.Since(followed)
	if n, most := leases.calls.Load(), 1+int64(elapsed/(retry+period)); n > most {
		t.Fatalf("%d panics in %v: the refresher spins (at most %d with a %v wait after each)", n, elapsed.Round(time.Millisecond), most, retry)
	}
}
