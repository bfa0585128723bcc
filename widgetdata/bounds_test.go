package widgetdata_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/internal/testlog"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/store/memory"
	"github.com/dashsync/dashsync/store/redis"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// These tests hold widget data to SPEC §12: a source can neither crash, spin nor bloat
// the server, and fetches are budgeted.

// panicking is a source that panics on every fetch once armed, and answers
// {"value":n} before.
type panicking struct {
	n     atomic.Int64
	armed atomic.Bool
}

func (p *panicking) Fetch(context.Context, dsync.Widget) (json.RawMessage, error) {
	n := p.n.Add(1)
	per := int64(1)
	if p.armed.Load() {
		per = 0 // the division by zero an overflowed period once caused
	}
	return json.RawMessage(fmt.Sprintf(`{"value":%d}`, n/per)), nil
}

func TestGet_PanickingSourceIsSourceFailedNeverACrash(t *testing.T) {
	clk := newClock()
	src := &panicking{}
	src.armed.Store(true)
	var logs testlog.Buffer
	cache := memory.NewCache(0, clk.Now)
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src},
		Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	w := widget("w1", "test")
	for i, refresh := range []bool{false, true, false} {
		if _, err := s.Get(ctx, w, refresh); dsync.ErrorCode(err) != dsync.CodeSourceFailed {
			t.Fatalf("read %d of a panicking source: got %v, want source_failed", i, err)
		}
	}
	if got := src.n.Load(); got != 3 {
		t.Fatalf("the source was asked %d times, want 3: a panic must not leave the widget's fetch stuck", got)
	}
	if !strings.Contains(logs.String(), "widget source panicked") || !strings.Contains(logs.String(), "integer divide by zero") {
		t.Fatalf("no log line of the panic; logs: %s", logs.String())
	}
	// With older data at hand, a panic serves it marked stale.
	src.armed.Store(false)
	clk.Add(widgetdata.MinFetchInterval)
	if _, err := s.Get(ctx, w, true); err != nil {
		t.Fatal(err)
	}
	src.armed.Store(true)
	clk.Add(widgetdata.MinFetchInterval)
	d, err := s.Get(ctx, w, true)
	if err != nil || !d.Stale || string(d.Data) != `{"value":4}` {
		t.Fatalf("a panic with older data: got %v, %v; want {\"value\":4} marked stale", d, err)
	}
	rs := s.Batch(ctx, []dsync.Widget{widget("w2", "test"), widget("w3", "test")}, false)
	for i, r := range rs {
		if dsync.ErrorCode(r.Err) != dsync.CodeSourceFailed {
			t.Fatalf("batch result %d: got %v, want source_failed", i, r.Err)
		}
	}
}

// panickingAnnouncer panics when told of new data: a panic in the fetch, outside the
// source, inside singleflight's callback.
type panickingAnnouncer struct{}

func (panickingAnnouncer) AnnounceData(context.Context, widgetdata.DataChanged) {
	panic("announcer exploded")
}

func TestGet_PanicAnywhereInTheFetchIsSourceFailed(t *testing.T) {
	clk := newClock()
	cache := memory.NewCache(0, clk.Now)
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": &counting{}},
		Now: clk.Now, Announcer: panickingAnnouncer{}, Logger: slog.New(slog.DiscardHandler)})
	for _, id := range []string{"w1", "w2"} {
		if _, err := s.Get(context.Background(), widget(id, "test"), false); dsync.ErrorCode(err) != dsync.CodeSourceFailed {
			t.Fatalf("widget %s: got %v, want source_failed", id, err)
		}
	}
}

// deaf is a source that ignores its deadline: a fetch returns only once released.
type deaf struct {
	n       atomic.Int64
	release chan struct{}
}

func (d *deaf) Fetch(context.Context, dsync.Widget) (json.RawMessage, error) {
	d.n.Add(1)
	<-d.release
	return json.RawMessage(`{"late":true}`), nil
}

func TestGet_SourceIgnoringItsDeadlineFailsWithoutPilingUp(t *testing.T) {
	clk := newClock()
	src := &deaf{release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(src.release)
		}
	}
	t.Cleanup(release)
	cache := memory.NewCache(0, clk.Now)
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src},
		Now: clk.Now, FetchTimeout: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	w := widget("w1", "test")
	// Each read gives up at the fetch timeout (or sooner), however long the source
	// takes: one that waited for the source would never answer before the test
	// releases it, and fails at the watchdog's generous waitBound.
	for i := range 5 {
		err := within(t, waitBound, fmt.Sprintf("read %d with a 100 ms fetch timeout", i), func() error {
			_, err := s.Get(ctx, w, false)
			return err
		})
		if dsync.ErrorCode(err) != dsync.CodeSourceFailed {
			t.Fatalf("read %d: got %v, want source_failed", i, err)
		}
	}
	if got := src.n.Load(); got != 1 {
		t.Fatalf("the source was called %d times while its first call had not returned, want 1", got)
	}
	release()
	// Nothing tells when the source's call has ended: poll, within a generous bound.
	deadline := time.Now().Add(waitBound)
	for {
		d, err := s.Get(ctx, w, false)
		if err == nil && string(d.Data) == `{"late":true}` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the source returned: still %v, %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGet_ForcedRefreshWithinASecondOfTheLastFetchIsAnsweredFromTheCache(t *testing.T) {
	clk, src, s := newCounted(t)
	ctx := context.Background()
	w := widget("w1", "test")
	if _, err := s.Get(ctx, w, false); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		after   time.Duration // since the previous step
		fetches int64
	}{
		{0, 1},
		{widgetdata.MinFetchInterval - time.Millisecond, 1},
		{time.Millisecond, 2}, // a second after the first fetch
		{widgetdata.MinFetchInterval / 2, 2},
		{widgetdata.MinFetchInterval / 2, 3},
	}
	for i, c := range cases {
		clk.Add(c.after)
		for range 3 {
			d, err := s.Get(ctx, w, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := src.n.Load(); got != c.fetches || string(d.Data) != fmt.Sprintf(`{"value":%d}`, c.fetches) || d.Stale {
				t.Fatalf("step %d: %d fetches, data %s stale %v; want %d fetches and the last one's data", i, got, d.Data, d.Stale, c.fetches)
			}
		}
	}
}

func TestGet_FetchBudgetPerOwner(t *testing.T) {
	clk := newClock()
	src := &counting{}
	cache := memory.NewCache(0, clk.Now)
	// A burst of 20 as by default, refilled slowly enough that a second later (past
	// the one-second rule) the budget is still spent.
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src}, Now: clk.Now,
		FetchLimiter: memory.NewLimiter(memory.LimiterOptions{Now: clk.Now}),
		FetchRate:    ratelimit.Limit{Rate: 1, Burst: 20}, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	var ws []dsync.Widget
	for i := range widgetdata.MaxBatch {
		ws = append(ws, widget(fmt.Sprintf("w%02d", i), "test"))
	}
	rs := s.Batch(ctx, ws, true)
	var ok, limited []dsync.Widget
	for i, r := range rs {
		switch {
		case r.Err == nil:
			ok = append(ok, ws[i])
		case dsync.ErrorCode(r.Err) == dsync.CodeRateLimited:
			if e, _ := r.Err.(*dsync.Error); e == nil || e.RetryAfterMs <= 0 {
				t.Fatalf("rate_limited without retryAfterMs: %#v", r.Err)
			}
			limited = append(limited, ws[i])
		default:
			t.Fatalf("widget %s: got %v, want data or rate_limited", ws[i].ID, r.Err)
		}
	}
	if len(ok) != 20 || src.n.Load() != 20 {
		t.Fatalf("a batch of %d forced refreshes: %d answered, %d fetches; want 20 (the burst)", len(ws), len(ok), src.n.Load())
	}
	// Another owner has a budget of their own.
	bobs := widget("w00", "test")
	bobs.Owner = "bob"
	if _, err := s.Get(ctx, bobs, true); err != nil {
		t.Fatalf("bob, with alice's budget spent: %v", err)
	}
	// A second later one token is back: of 20 forced refreshes one fetches, and the
	// others are answered with what is cached, unexpired and not stale.
	clk.Add(widgetdata.MinFetchInterval)
	for _, r := range s.Batch(ctx, ok, true) {
		if r.Err != nil || r.Data == nil || r.Data.Stale {
			t.Fatalf("over budget with data cached: got %+v, want the cached data", r)
		}
	}
	if got := src.n.Load(); got != 21+1 { // bob's included
		t.Fatalf("forced refreshes with one token: %d fetches in all, want 22", got)
	}
	if _, err := s.Get(ctx, limited[0], false); dsync.ErrorCode(err) != dsync.CodeRateLimited {
		t.Fatalf("over budget with nothing cached: got %v, want rate_limited", err)
	}
	// Past the TTL the budget is full again; once it is spent, expired data is served
	// marked stale.
	clk.Add(60 * time.Second)
	for _, w := range limited[:20] {
		if _, err := s.Get(ctx, w, false); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Get(ctx, ok[1], false)
	if err != nil || !d.Stale {
		t.Fatalf("expired data over budget: got %v, %v; want it marked stale", d, err)
	}
	if got := src.n.Load(); got != 42 {
		t.Fatalf("%d fetches in all, want 42", got)
	}
}

func TestGet_FetchLimiterFailureFailsOpen(t *testing.T) {
	// A Redis limiter on a port nobody listens on: every Allow fails.
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	clk := newClock()
	src := &counting{}
	var logs testlog.Buffer
	s := widgetdata.New(memory.NewCache(0, clk.Now), widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src},
		Now: clk.Now, FetchLimiter: redis.NewLimiter(rdb, redis.LimiterOptions{}), FetchRate: ratelimit.Limit{Rate: 1, Burst: 1},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for i := range 3 {
		clk.Add(widgetdata.MinFetchInterval)
		if _, err := s.Get(context.Background(), widget("w1", "test"), true); err != nil {
			t.Fatalf("fetch %d with the limiter down: %v, want the fetch to go ahead", i, err)
		}
	}
	if got := src.n.Load(); got != 3 {
		t.Fatalf("%d fetches with the limiter down, want 3", got)
	}
	if !strings.Contains(logs.String(), "fetch rate limiter failed") {
		t.Fatalf("no log line of the limiter's failure; logs: %s", logs.String())
	}
}

// A pushed or fetched value is cached once: the data and its stale copy are one entry.
func TestStore_DataIsKeptOnce(t *testing.T) {
	clk := newClock()
	cache := memory.NewCache(0, clk.Now)
	big := `{"html":"` + strings.Repeat("<b>&</b>", 100<<10/8) + `"}` // 100 KiB of what JSON may escape
	var down atomic.Bool
	src := widgetdata.FetcherFunc(func(context.Context, dsync.Widget) (json.RawMessage, error) {
		if down.Load() {
			return nil, errors.New("source down")
		}
		return json.RawMessage(big), nil
	})
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src}, Now: clk.Now})
	ctx := context.Background()
	if _, err := s.Push(ctx, widget("p1", "push"), json.RawMessage(big)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, widget("w1", "test"), false); err != nil {
		t.Fatal(err)
	}
	if got, most := cache.Bytes(), int64(2*len(big)+2<<10); got > most {
		t.Fatalf("two widgets of %d bytes of data take %d bytes of cache, want at most %d (one copy each)", len(big), got, most)
	}
	// The one copy is also the stale copy.
	down.Store(true)
	clk.Add(61 * time.Second)
	if d, err := s.Get(ctx, widget("w1", "test"), false); err != nil || !d.Stale || string(d.Data) != big {
		t.Fatalf("a failed fetch after the TTL: got %v, %v; want the data marked stale", d, err)
	}
}

func TestStore_CacheIsBoundedByBytes(t *testing.T) {
	clk := newClock()
	const bound = 1 << 20
	cache := memory.NewCache(bound, clk.Now)
	s := widgetdata.New(cache, widgetdata.Options{Now: clk.Now})
	ctx := context.Background()
	data := json.RawMessage(`"` + strings.Repeat("x", dsync.MaxDataSize-2) + `"`)
	for i := range 20 {
		if _, err := s.Push(ctx, widget(fmt.Sprintf("p%d", i), "push"), data); err != nil {
			t.Fatal(err)
		}
		if got := cache.Bytes(); got > bound {
			t.Fatalf("after %d pushes of 256 KiB: %d bytes cached, want at most %d", i+1, got, bound)
		}
	}
	if d, err := s.Get(ctx, widget("p19", "push"), false); err != nil || d == nil {
		t.Fatalf("the last push: got %v, %v; want its data", d, err)
	}
	if d, err := s.Get(ctx, widget("p0", "push"), false); err != nil || d != nil {
		t.Fatalf("the first push, least recently used: got %v, %v; want it evicted", d, err)
	}
}

func TestRefreshPeriodAndTTL_AreWithinTheBounds(t *testing.T) {
	cases := []struct {
		secs            int
		refresh, ttlGot time.Duration
	}{
		{1, time.Second, time.Second},
		{30, 30 * time.Second, 30 * time.Second},
		{dsync.MaxRefreshSeconds, dsync.MaxRefreshSeconds * time.Second, dsync.MaxRefreshSeconds * time.Second},
		{dsync.MaxRefreshSeconds + 1, dsync.MaxRefreshSeconds * time.Second, (dsync.MaxRefreshSeconds + 1) * time.Second},
		{dsync.MaxTTLSeconds + 1, dsync.MaxRefreshSeconds * time.Second, dsync.MaxTTLSeconds * time.Second},
		{1 << 61, dsync.MaxRefreshSeconds * time.Second, dsync.MaxTTLSeconds * time.Second},
		{math.MaxInt, dsync.MaxRefreshSeconds * time.Second, dsync.MaxTTLSeconds * time.Second},
		{0, dsync.DefaultRefreshSeconds * time.Second, dsync.DefaultTTLSeconds * time.Second},
		{math.MinInt, dsync.DefaultRefreshSeconds * time.Second, dsync.DefaultTTLSeconds * time.Second},
	}
	for _, c := range cases {
		src := dsync.Source{RefreshSeconds: c.secs, TTLSeconds: c.secs}
		if got := widgetdata.RefreshPeriod(src); got != c.refresh {
			t.Errorf("RefreshPeriod(%d): got %v, want %v", c.secs, got, c.refresh)
		}
		if got := widgetdata.TTL(src); got != c.ttlGot {
			t.Errorf("TTL(%d): got %v, want %v", c.secs, got, c.ttlGot)
		}
	}
}

// refusals tells (on refused, buffered) of the Acquire calls of a real lock service
// that found the lock held, so that a test knows a waiter is waiting.
type refusals struct {
	widgetdata.Leases
	refused chan struct{}
}

func (r *refusals) Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	got, err := r.Leases.Acquire(ctx, key, ttl)
	if err == nil && !got {
		select {
		case r.refused <- struct{}{}:
		default:
		}
	}
	return got, err
}

// Two services on one cache and one lock service play two instances. When the
// instance holding a widget's fetch lock fails (a source error, or over budget), the
// one waiting for its result fetches at once instead of waiting out the fetch timeout.
func TestGet_WaiterFetchesWhenTheLockHolderFailed(t *testing.T) {
	cache := memory.NewCache(0, nil)
	leases := &refusals{Leases: memory.NewLeases(nil), refused: make(chan struct{}, 1)}
	gate, holding := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	src := widgetdata.FetcherFunc(func(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
		if calls.Add(1) == 1 {
			close(holding)
			<-gate
			return nil, errors.New("source down")
		}
		return json.RawMessage(`{"ok":true}`), nil
	})
	const timeout = 20 * time.Second
	newSvc := func() *widgetdata.Service {
		return widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src},
			Leases: leases, FetchTimeout: timeout, Logger: slog.New(slog.DiscardHandler)})
	}
	a, b := newSvc(), newSvc()
	w := widget("w1", "test")
	ctx := context.Background()
	aErr := make(chan error, 1)
	go func() { _, err := a.Get(ctx, w, false); aErr <- err }()
	await(t, holding, "the lock holder's fetch")
	type result struct {
		d   *dsync.WidgetData
		err error
	}
	bRes := make(chan result, 1)
	go func() { d, err := b.Get(ctx, w, false); bRes <- result{d, err} }()
	await(t, leases.refused, "the waiter finding the lock held") // it waits for a's result
	close(gate)
	if err := <-aErr; dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("the lock holder: got %v, want source_failed", err)
	}
	// The waiter looks again every LockWait (25 ms); one that waited out the fetch
	// timeout would answer at 20 s. Half of that is the generous bound between the two.
	select {
	case r := <-bRes:
		if r.err != nil || string(r.d.Data) != `{"ok":true}` {
			t.Fatalf("the waiter: got %v, %v; want its own fetch's data", r.d, r.err)
		}
	case <-time.After(timeout / 2):
		t.Fatalf("the waiter had not answered %v after the holder failed, want well within the %v fetch timeout", timeout/2, timeout)
	}
}
