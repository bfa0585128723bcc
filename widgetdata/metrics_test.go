package widgetdata_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/store/memory"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestMetrics_CacheHitsMissesStale(t *testing.T) {
	clk := newClock()
	reg := prometheus.NewRegistry()
	m, err := widgetdata.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	src := &counting{}
	cache := memory.NewCache(0, clk.Now)
	s := widgetdata.New(cache, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src}, Now: clk.Now, Metrics: m})
	ctx := context.Background()
	w := widget("w1", "test")
	for range 3 { // a miss, then two hits
		if _, err := s.Get(ctx, w, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, w, true); err != nil { // refresh: neither
		t.Fatal(err)
	}
	push := widget("p1", "push")
	if _, err := s.Get(ctx, push, false); err != nil { // a miss
		t.Fatal(err)
	}
	src.fail.Store(true)
	clk.Add(61 * time.Second)
	if d, err := s.Get(ctx, w, false); err != nil || !d.Stale { // a miss, then stale
		t.Fatalf("got %v, %v; want stale data", d, err)
	}
	for name, want := range map[string]float64{
		"dashsync_widget_data_cache_hits_total":   2,
		"dashsync_widget_data_cache_misses_total": 3,
		"dashsync_widget_data_stale_total":        1,
	} {
		if got := counter(t, reg, name); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

// What a source answers is not the caller's input: data over the limit, or not JSON,
// is the source's failure, and the last good copy stands in for it.
func TestGet_UnusableSourceAnswerIsSourceFailure(t *testing.T) {
	clk := newClock()
	var answer string
	src := widgetdata.FetcherFunc(func(context.Context, dsync.Widget) (json.RawMessage, error) {
		return json.RawMessage(answer), nil
	})
	s := newService(t, src, clk)
	ctx := context.Background()
	w := widget("w1", "test")
	for _, bad := range []string{`"` + strings.Repeat("a", dsync.MaxDataSize) + `"`, `{"a":`} {
		answer = bad
		if _, err := s.Get(ctx, w, true); dsync.ErrorCode(err) != dsync.CodeSourceFailed {
			t.Fatalf("answer %.20s…: got %v, want source_failed", bad, err)
		}
	}
	answer = `{"ok":1}`
	if _, err := s.Get(ctx, w, true); err != nil {
		t.Fatal(err)
	}
	answer = `"` + strings.Repeat("a", dsync.MaxDataSize) + `"`
	clk.Add(widgetdata.MinFetchInterval) // a forced refresh sooner is answered from the cache
	d, err := s.Get(ctx, w, true)
	if err != nil || !d.Stale || string(d.Data) != `{"ok":1}` {
		t.Fatalf("got %v, %v; want the last good copy marked stale", d, err)
	}
}
