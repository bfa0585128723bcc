package source_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/internal/testnet"
	"github.com/dashsync/dashsync/source"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

func newBuiltins(t testing.TB, now func() time.Time, reg prometheus.Registerer) *source.Registry {
	t.Helper()
	var m *source.Metrics
	if reg != nil {
		var err error
		if m, err = source.NewMetrics(reg); err != nil {
			t.Fatal(err)
		}
	}
	r, err := source.NewBuiltins(source.Options{Now: now, Metrics: m,
		HTTP: source.HTTPOptions{Resolver: testnet.NewResolver(nil), Dialer: testnet.NewDialer(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRegistry_BuiltinKinds(t *testing.T) {
	t.Parallel()
	r := newBuiltins(t, nil, nil)
	if got, want := r.Names(), []string{"demo.clock", "demo.counter", "demo.series", "http", "push", "static"}; !slices.Equal(got, want) {
		t.Fatalf("kinds: got %v, want %v", got, want)
	}
	var fetched []string
	for k := range r.Fetchers() {
		fetched = append(fetched, k)
	}
	slices.Sort(fetched)
	if want := []string{"demo.clock", "demo.counter", "demo.series", "http"}; !slices.Equal(fetched, want) {
		t.Fatalf("fetched kinds: got %v, want %v (static and push are never fetched)", fetched, want)
	}
}

func TestRegistry_CheckSource(t *testing.T) {
	t.Parallel()
	r := newBuiltins(t, nil, nil)
	ctx := context.Background()
	cases := []struct {
		name  string
		src   dsync.Source
		field string // "" accepted
	}{
		{"static with data", dsync.Source{Kind: "static", Data: json.RawMessage(`1`)}, ""},
		{"static without data", dsync.Source{Kind: "static"}, "source.data"},
		{"push", dsync.Source{Kind: "push"}, ""},
		{"demo.counter", dsync.Source{Kind: "demo.counter"}, ""},
		{"demo.series", dsync.Source{Kind: "demo.series"}, ""},
		{"demo.clock", dsync.Source{Kind: "demo.clock"}, ""},
		{"http without url", dsync.Source{Kind: "http"}, "source.url"},
		{"http to loopback", dsync.Source{Kind: "http", URL: "http://127.0.0.1/"}, "source.url"},
		{"unknown kind", dsync.Source{Kind: "ftp"}, "source.kind"},
	}
	for _, c := range cases {
		err := r.CheckSource(ctx, c.src)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: got %v, want accepted", c.name, err)
			}
			continue
		}
		var de *dsync.Error
		if !errors.As(err, &de) || de.Code != dsync.CodeValidation || de.Details[0].Field != c.field {
			t.Errorf("%s: got %v, want validation_failed on %s", c.name, err, c.field)
		}
	}
	var de *dsync.Error
	if err := r.CheckSource(ctx, dsync.Source{Kind: "ftp"}); !errors.As(err, &de) || !strings.Contains(de.Message, "demo.clock, demo.counter") {
		t.Errorf("unknown kind: message %v does not list the known kinds", err)
	}
}

func TestRegistry_NewKindsByRegistering(t *testing.T) {
	t.Parallel()
	r := newBuiltins(t, nil, nil)
	echo := source.Funcs{FetchFunc: func(_ context.Context, w dsync.Widget) (json.RawMessage, error) {
		return json.Marshal(map[string]string{"id": w.ID})
	}}
	if err := r.Register("test.echo", echo); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("test.echo", echo); err == nil {
		t.Fatal("registering a name twice: got nil, want an error")
	}
	if err := r.Register("Bad Name", echo); err == nil {
		t.Fatal("registering a bad name: got nil, want an error")
	}
	if err := r.CheckSource(context.Background(), dsync.Source{Kind: "test.echo"}); err != nil {
		t.Fatal(err)
	}
	f := r.Fetchers()["test.echo"]
	if f == nil {
		t.Fatal("the registered kind is not among the fetchers")
	}
	raw, err := f.Fetch(context.Background(), dsync.Widget{ID: "w9", Source: dsync.Source{Kind: "test.echo"}})
	if err != nil || string(raw) != `{"id":"w9"}` {
		t.Fatalf("got %s, %v", raw, err)
	}
	if _, err := r.Fetch(context.Background(), dsync.Widget{Source: dsync.Source{Kind: "push"}}); dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("fetch of a push widget: got %v, want source_failed", err)
	}
}

func TestRegistry_Metrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	r := newBuiltins(t, nil, reg)
	ctx := context.Background()
	w := dsync.Widget{ID: "w1", Owner: "alice", Source: dsync.Source{Kind: "demo.counter", RefreshSeconds: 1}}
	for range 3 {
		if _, err := r.Fetch(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.Fetch(ctx, dsync.Widget{ID: "w2", Source: dsync.Source{Kind: "http", URL: "http://10.0.0.1/"}})
	if dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("got %v, want source_failed", err)
	}
	if got := seriesCount(t, reg, "dashsync_source_fetch_seconds"); got != 2 {
		t.Errorf("latency series: got %d, want 2 (demo.counter and http)", got)
	}
	if got := counterValue(t, reg, "dashsync_source_fetch_errors_total", "http", "forbidden"); got != 1 {
		t.Errorf("http forbidden errors: got %v, want 1", got)
	}
}

// seriesCount is how many label sets a metric has.
func seriesCount(t testing.TB, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// counterValue is the value of one sample of a counter vector, by its labels.
func counterValue(t testing.TB, reg *prometheus.Registry, name, kind, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{kind=%q,reason=%q}", name, kind, reason)
	return 0
}

func TestDemo_Counter(t *testing.T) {
	t.Parallel()
	c := source.NewCounter(0)
	ctx := context.Background()
	a := dsync.Widget{ID: "a", Owner: "alice"}
	b := dsync.Widget{ID: "a", Owner: "bob"} // same id, another owner: its own count
	for i, want := range []string{`{"value":1}`, `{"value":2}`, `{"value":3}`} {
		raw, err := c.Fetch(ctx, a)
		if err != nil || string(raw) != want {
			t.Fatalf("fetch %d: got %s, %v; want %s", i+1, raw, err, want)
		}
	}
	if raw, _ := c.Fetch(ctx, b); string(raw) != `{"value":1}` {
		t.Fatalf("another owner's widget: got %s, want {\"value\":1}", raw)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _, _ = c.Fetch(ctx, a) })
	}
	wg.Wait()
	if raw, _ := c.Fetch(ctx, a); string(raw) != `{"value":54}` {
		t.Fatalf("after 50 concurrent fetches: got %s, want {\"value\":54}", raw)
	}
}

func TestDemo_Series(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_700_000_012_345)
	s := source.Series{Now: func() time.Time { return now }}
	w := dsync.Widget{ID: "w1", Owner: "alice", Source: dsync.Source{Kind: "demo.series", RefreshSeconds: 5}}
	raw, err := s.Fetch(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Points [][2]float64 `json:"points"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Points) != source.SeriesPoints {
		t.Fatalf("got %d points, want %d", len(got.Points), source.SeriesPoints)
	}
	last := got.Points[len(got.Points)-1]
	if last[0] != 1_700_000_010_000 {
		t.Fatalf("newest point at %v, want 1700000010000 (now truncated to the 5 s step)", last[0])
	}
	for i := 1; i < len(got.Points); i++ {
		if d := got.Points[i][0] - got.Points[i-1][0]; d != 5000 {
			t.Fatalf("points %d and %d are %v ms apart, want 5000", i-1, i, d)
		}
	}
	for _, p := range got.Points {
		if p[1] < 0 || p[1] > 200 {
			t.Fatalf("value %v out of the demo range", p[1])
		}
	}
	again, _ := s.Fetch(context.Background(), w)
	if string(again) != string(raw) {
		t.Fatalf("two fetches at one time differ: the series must depend only on the widget and the time")
	}
	if !strings.HasPrefix(string(raw), `{"points":[[1699999715000,`) {
		t.Fatalf("got %.40s…, want unix millisecond integers first", raw)
	}
}

func TestDemo_Clock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.FixedZone("x", 3600))
	raw, err := source.Clock{Now: func() time.Time { return now }}.Fetch(context.Background(), dsync.Widget{})
	if err != nil || string(raw) != `{"now":"2026-03-04T04:06:07.891Z"}` {
		t.Fatalf("got %s, %v", raw, err)
	}
}

var _ widgetdata.Fetcher = source.Funcs{}
