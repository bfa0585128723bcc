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

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// counting is a source that counts its fetches and can be made to fail or stall.
type counting struct {
	n    atomic.Int64
	fail atomic.Bool
	gate chan struct{} // when non-nil, fetches wait for it
}

func (c *counting) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	n := c.n.Add(1)
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

func widget(id, kind string) dsync.Widget {
	return dsync.Widget{ID: id, Owner: "alice", Type: "stat", Source: dsync.Source{Kind: kind, RefreshSeconds: 60, TTLSeconds: 60}}
}

func TestGet_CacheFirstThenRefetchAfterTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	src := &counting{}
	s := newService(t, src, clk)
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
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	src := &counting{gate: make(chan struct{})}
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
	for src.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(src.gate)
	wg.Wait()
	if got := src.n.Load(); got != 1 {
		t.Fatalf("fetches for 50 concurrent cold reads: got %d, want 1", got)
	}
}

func TestGet_StaleIfError(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	src := &counting{}
	s := newService(t, src, clk)
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
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
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

func TestBatch_SlowSourceDoesNotDelayOthers(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	slow := &counting{gate: make(chan struct{})}
	defer close(slow.gate)
	fast := &counting{}
	cache := memory.NewCache(0, clk.Now)
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"slow": slow, "fast": fast},
		Now: clk.Now, FetchTimeout: 200 * time.Millisecond})
	ws := []dsync.Widget{widget("a", "fast"), widget("b", "slow"), widget("c", "fast")}
	rs := s.Batch(context.Background(), ws, false)
	if rs[0].Err != nil || rs[2].Err != nil {
		t.Fatalf("fast widgets failed: %v %v", rs[0].Err, rs[2].Err)
	}
	if dsync.ErrorCode(rs[1].Err) != dsync.CodeSourceFailed {
		t.Fatalf("slow widget: got %v, want source_failed after its deadline", rs[1].Err)
	}
}
