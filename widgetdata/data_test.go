package widgetdata_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashsync/dashsync/store/memory"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock is a fake clock at a fixed instant, moved only by Add.
func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// counting is a source that counts its fetches and can be made to fail or stall.
type counting struct {
	n     atomic.Int64
	fail  atomic.Bool
	gate  chan struct{} // when non-nil, fetches wait for it
	began chan struct{} // when non-nil, each fetch sends on it as it begins, if there is room
}

func (c *counting) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	n := c.n.Add(1)
	if c.began != nil {
		select {
		case c.began <- struct{}{}:
		default:
		}
	}
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.fail.Load() {
		return nil, errors.New("source down")
	}
	b, _ := json.Marshal(map[string]int64{"value": n})
	return b, nil
}

func newService(t testing.TB, src widgetdata.Fetcher, clk *clock) *widgetdata.Service {
	t.Helper()
	cache := memory.NewCache(0, clk.Now)
	t.Cleanup(func() { _ = cache.Close() })
	return widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src}, Now: clk.Now, FetchTimeout: time.Second})
}

// newCounted is a service on a fake clock over a counting source.
func newCounted(t testing.TB) (*clock, *counting, *widgetdata.Service) {
	t.Helper()
	clk, src := newClock(), &counting{}
	return clk, src, newService(t, src, clk)
}

// waitBound is how long a test waits for what the code should do at once, or at a
// timeout far shorter: generous, so that a slow machine does not fail the test, and
// finite, so that a bug that never does it fails the test instead of hanging it.
const waitBound = 10 * time.Second

// await waits for ch to deliver (or be closed), failing t after waitBound.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitBound):
		t.Fatalf("%s: not within %v", what, waitBound)
	}
}

// within runs f on a goroutine and returns its result, failing t when f has not
// returned within bound: a watchdog, far past the timeout the code under test should
// end f by, so that a call that would hang fails the test at the bound.
func within[T any](t *testing.T, bound time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(bound):
		t.Fatalf("%s: no answer within %v", what, bound)
	}
	var zero T
	return zero
}

func widget(id, kind string) dsync.Widget {
	return dsync.Widget{ID: id, Owner: "alice", Type: "stat", Source: dsync.Source{Kind: kind, RefreshSeconds: 60, TTLSeconds: 60}}
}

func TestGet_CacheFirstThenRefetchAfterTTL(t *testing.T) {
	clk, src, s := newCounted(t)
	w := widget("w1", "test")
	ctx := context.Background()
	for range 3 {
		if _, err := s.Get(ctx, w, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := src.n.Load(); got != 1 {
		t.Fatalf("fetches after 3 reads within TTL: got %d, want 1", got)
	}
	clk.Add(widgetdata.MinFetchInterval) // a forced refresh sooner is answered from the cache
	if _, err := s.Get(ctx, w, true); err != nil {
		t.Fatal(err)
	}
	if got := src.n.Load(); got != 2 {
		t.Fatalf("fetches after refresh=true: got %d, want 2", got)
	}
	clk.Add(60 * time.Second)
	d, err := s.Get(ctx, w, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.n.Load(); got != 3 || string(d.Data) != `{"value":3}` {
		t.Fatalf("after TTL: fetches %d data %s, want 3 and {\"value\":3}", got, d.Data)
	}
}

func TestGet_ConcurrentMissesFetchOnce(t *testing.T) {
	clk := newClock()
	src := &counting{gate: make(chan struct{}), began: make(chan struct{}, 1)}
	s := newService(t, src, clk)
	w := widget("w1", "test")
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Get(context.Background(), w, false); err != nil {
				t.Error(err)
			}
		}()
	}
	// Reads that come after the first fetch began find it in flight, or its data cached.
	await(t, src.began, "the first fetch")
	close(src.gate)
	wg.Wait()
	if got := src.n.Load(); got != 1 {
		t.Fatalf("fetches for 50 concurrent cold reads: got %d, want 1", got)
	}
}

func TestGet_StaleIfError(t *testing.T) {
	clk, src, s := newCounted(t)
	w := widget("w1", "test")
	ctx := context.Background()
	if _, err := s.Get(ctx, w, false); err != nil {
		t.Fatal(err)
	}
	src.fail.Store(true)
	clk.Add(widgetdata.MinFetchInterval)
	d, err := s.Get(ctx, w, true)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Stale || string(d.Data) != `{"value":1}` {
		t.Fatalf("got stale=%v data=%s, want the last good copy marked stale", d.Stale, d.Data)
	}
	if err := s.Clear(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, w, false); dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("failed fetch without a stale copy: got %v, want source_failed", err)
	}
}

func TestPush(t *testing.T) {
	clk := newClock()
	s := newService(t, &counting{}, clk)
	ctx := context.Background()
	push := widget("p1", "push")
	if d, err := s.Get(ctx, push, false); err != nil || d != nil {
		t.Fatalf("push widget before any push: got %v, %v; want nil, nil", d, err)
	}
	if _, err := s.Push(ctx, push, json.RawMessage(`{ "b": 1, "a": [1, 2] }`)); err != nil {
		t.Fatal(err)
	}
	d, err := s.Get(ctx, push, false)
	if err != nil || string(d.Data) != `{"a":[1,2],"b":1}` {
		t.Fatalf("after push: got %v, %v", d, err)
	}
	if _, err := s.Push(ctx, widget("s1", "static"), json.RawMessage(`1`)); dsync.ErrorCode(err) != dsync.CodeBadRequest {
		t.Fatalf("push to a static widget: got %v, want bad_request", err)
	}
	big := make([]byte, dsync.MaxDataSize+10)
	for i := range big {
		big[i] = ' '
	}
	big[0] = '1'
	if _, err := s.Push(ctx, push, big); dsync.ErrorCode(err) != dsync.CodeTooLarge {
		t.Fatalf("push over 256 KiB: got %v, want too_large", err)
	}
}

// TestBatch_SlowSourceDoesNotDelayOthers: a slow widget of a batch holds up neither
// the fetches of the others nor the batch past its deadline. The slow source (second
// of three) waits for both fast widgets' fetches to begin, which a batch fetching one
// widget at a time never does while it waits, and then answers nothing: its deadline
// cuts it. The test lasts that deadline (the scenario, not a bound on the code).
func TestBatch_SlowSourceDoesNotDelayOthers(t *testing.T) {
	clk := newClock()
	fast := &counting{began: make(chan struct{}, 2)}
	var othersFetched atomic.Bool
	slow := widgetdata.FetcherFunc(func(ctx context.Context, _ dsync.Widget) (json.RawMessage, error) {
		for range 2 {
			select {
			case <-fast.began:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		othersFetched.Store(true)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	cache := memory.NewCache(0, clk.Now)
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"slow": slow, "fast": fast},
		Now: clk.Now, FetchTimeout: 2 * time.Second})
	ws := []dsync.Widget{widget("a", "fast"), widget("b", "slow"), widget("c", "fast")}
	rs := s.Batch(context.Background(), ws, false)
	if rs[0].Err != nil || rs[2].Err != nil {
		t.Fatalf("fast widgets failed: %v %v", rs[0].Err, rs[2].Err)
	}
	if dsync.ErrorCode(rs[1].Err) != dsync.CodeSourceFailed {
		t.Fatalf("slow widget: got %v, want source_failed after its deadline", rs[1].Err)
	}
	if !othersFetched.Load() {
		t.Fatal("the fast widgets were not fetched while the slow one was: the batch held them up")
	}
}

// lateReader is a cache whose first Get reads what is there and then waits for its
// test before it answers: the read of a caller that found the cache empty, delayed
// until another caller's fetch has come and gone.
type lateReader struct {
	widgetdata.Cache
	once    sync.Once
	read    chan struct{} // closed when the first Get has read
	proceed chan struct{} // the first Get answers once this is closed
}

func (c *lateReader) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok, err := c.Cache.Get(ctx, key)
	first := false
	c.once.Do(func() { first = true })
	if first {
		close(c.read)
		<-c.proceed
	}
	return v, ok, err
}

// TestGet_ReadThatMissedJustBeforeAFetchStoredDoesNotFetchAgain: a caller that found
// the cache empty just before another caller's fetch stored its result takes the
// fetch lock after that fetch has let go of it; the fresh result in the cache is its
// answer, not a second fetch.
func TestGet_ReadThatMissedJustBeforeAFetchStoredDoesNotFetchAgain(t *testing.T) {
	clk := newClock()
	src := &counting{}
	cache := &lateReader{Cache: memory.NewCache(0, clk.Now), read: make(chan struct{}), proceed: make(chan struct{})}
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src},
		Now: clk.Now, FetchTimeout: time.Second, Leases: memory.NewLeases(clk.Now)})
	w := widget("w1", "test")
	ctx := context.Background()
	late := make(chan error, 1)
	go func() { _, err := s.Get(ctx, w, false); late <- err }()
	await(t, cache.read, "the late caller's cache read")
	if _, err := s.Get(ctx, w, false); err != nil { // fetches, stores, lets go of the lock
		t.Fatal(err)
	}
	close(cache.proceed)
	select {
	case err := <-late:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitBound):
		t.Fatalf("the late caller had not answered within %v", waitBound)
	}
	if got := src.n.Load(); got != 1 {
		t.Fatalf("the source was fetched %d times, want 1: the late caller fetched again", got)
	}
}
