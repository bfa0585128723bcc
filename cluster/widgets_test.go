package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/redis"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// countingSource is a widget source both instances share, so its count is the
// cluster's number of fetches.
type countingSource struct {
	n     atomic.Int64
	delay time.Duration
}

func (c *countingSource) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	n := c.n.Add(1)
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return json.RawMessage(fmt.Sprintf(`{"value":%d}`, n)), nil
}

// countingKinds accepts the test.count kind besides static and push.
type countingKinds struct{}

func (countingKinds) CheckSource(ctx context.Context, src dsync.Source) error {
	if src.Kind == "test.count" {
		return nil
	}
	return dsync.BasicSources{}.CheckSource(ctx, src)
}

// newDataCluster starts two instances on one Postgres database and one Redis, with
// the Redis widget-data cache and leases, fetching test.count from src.
// data, when given, adjusts each instance's widget data options, with the cluster's
// prefix.
func newDataCluster(t *testing.T, src widgetdata.Fetcher, data ...func(prefix string) func(*widgetdata.Options)) cluster {
	t.Helper()
	testredis.Require(t)
	dbURL := testpg.NewDatabase(t)
	prefix := testredis.Prefix(t)
	instance := func(name string) *testenv.Server {
		br, pr := testenv.Redis(t, testredis.URL(), prefix)
		opt, _ := testredis.ParseURL(testredis.URL())
		rdb := goredis.NewClient(opt)
		t.Cleanup(func() { _ = rdb.Close() })
		var dataOpts func(*widgetdata.Options)
		for _, d := range data {
			dataOpts = d(prefix)
		}
		return testenv.New(t, testenv.Options{Backend: "postgres", Store: openPostgres(t, dbURL),
			Broker: br, Presence: pr, Sources: countingKinds{},
			Fetchers: map[string]widgetdata.Fetcher{"test.count": src},
			Cache:    redis.NewCache(rdb, prefix),
			Leases:   redis.NewLeases(rdb, prefix, name),
			Data:     dataOpts})
	}
	return cluster{a: instance("a"), b: instance("b")}
}

func countingWidget(t *testing.T, s *testenv.Server, refreshSeconds int) dsync.Widget {
	t.Helper()
	w, err := s.Service.CreateWidget(context.Background(), owner, dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("count"),
		Source: &dsync.Source{Kind: "test.count", RefreshSeconds: refreshSeconds, TTLSeconds: 3600}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWidgetData_ConcurrentColdReadsAcrossInstancesFetchOnce(t *testing.T) {
	t.Parallel()
	src := &countingSource{delay: 300 * time.Millisecond}
	c := newDataCluster(t, src)
	w := countingWidget(t, c.a, 60)
	var wg sync.WaitGroup
	for i := range 50 {
		s := c.a
		if i%2 == 1 {
			s = c.b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := rest(t, s, http.MethodGet, "/api/dashboard/widgets/"+w.ID, nil)
			if code != http.StatusOK {
				t.Errorf("GET: %d %s", code, body)
			}
		}()
	}
	wg.Wait()
	if got := src.n.Load(); got != 1 {
		t.Fatalf("50 concurrent cold reads over two instances: %d fetches, want 1", got)
	}
}

func TestWidgetData_LiveRefreshIsOnePerPeriodAcrossInstancesAndStops(t *testing.T) {
	t.Parallel()
	src := &countingSource{}
	c := newDataCluster(t, src)
	w := countingWidget(t, c.a, 1)
	var boxes [2]inbox
	var clients []*wsclient.Client
	for i, s := range []*testenv.Server{c.a, c.b} {
		cl := s.Dial(t, owner, boxes[i].add)
		if r := req(t, cl, map[string]any{"type": "subscribe", "channel": "widget:" + w.ID}); r.Type != "subscribed" {
			t.Fatalf("subscribe: %s", r.Raw)
		}
		clients = append(clients, cl)
	}
	start := src.n.Load() // the first subscribe's cold read
	const periods = 10
	time.Sleep(periods*time.Second + 500*time.Millisecond)
	fetched := src.n.Load() - start
	if fetched < periods-1 || fetched > periods+1 {
		t.Fatalf("%d refresh periods with subscribers on two instances: %d fetches, want %d ± 1", periods, fetched, periods)
	}
	for i := range boxes {
		n := 0
		for _, m := range boxes[i].all() {
			if m.Type == "data" {
				n++
			}
		}
		if n < periods-1 {
			t.Fatalf("subscriber on instance %d got %d data messages, want about %d", i, n, periods)
		}
	}
	for _, cl := range clients {
		if r := req(t, cl, map[string]any{"type": "unsubscribe", "channel": "widget:" + w.ID}); r.Type != "unsubscribed" {
			t.Fatalf("unsubscribe: %s", r.Raw)
		}
	}
	after := src.n.Load()
	time.Sleep(2500 * time.Millisecond)
	if got := src.n.Load(); got != after {
		t.Fatalf("after the last unsubscribe: %d more fetches, want 0", got-after)
	}
}

func TestWidgetData_PushReachesSubscribersOnBothInstances(t *testing.T) {
	t.Parallel()
	c := newDataCluster(t, &countingSource{})
	w, err := c.a.Service.CreateWidget(context.Background(), owner, dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("p"),
		Source: &dsync.Source{Kind: "push"}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	var boxes [2]inbox
	for i, s := range []*testenv.Server{c.a, c.b} {
		cl := s.Dial(t, owner, boxes[i].add)
		if r := req(t, cl, map[string]any{"type": "subscribe", "channel": "widget:" + w.ID}); r.Type != "subscribed" || string(r.Data) != "null" {
			t.Fatalf("subscribe: %s", r.Raw)
		}
	}
	if code, body := rest(t, c.a, http.MethodPut, "/api/dashboard/widgets/"+w.ID+"/data", map[string]any{"data": map[string]int{"value": 42}}); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	for i := range boxes {
		boxes[i].waitFor(t, fmt.Sprintf("data on instance %d", i), func(m wsclient.Msg) bool {
			return m.Type == "data" && m.Channel == "widget:"+w.ID && containsValue(m.Data, 42)
		})
	}
	// The other instance reads the same data from the shared cache.
	code, body := rest(t, c.b, http.MethodGet, "/api/dashboard/widgets/"+w.ID, nil)
	if code != http.StatusOK || !containsValue(body, 42) {
		t.Fatalf("GET on the other instance: %d %s", code, body)
	}
	// A clear on one instance is seen by the other.
	if code, body := rest(t, c.a, http.MethodDelete, "/api/dashboard/widgets/"+w.ID, nil); code != http.StatusNoContent {
		t.Fatalf("clear: %d %s", code, body)
	}
	code, body = rest(t, c.b, http.MethodGet, "/api/dashboard/widgets/"+w.ID, nil)
	if code != http.StatusOK || containsValue(body, 42) {
		t.Fatalf("GET after a clear on the other instance: %d %s, want no data", code, body)
	}
}

// containsValue reports whether the JSON in b carries "value": v.
func containsValue(b []byte, v int) bool {
	return bytes.Contains(b, fmt.Appendf(nil, `"value":%d`, v))
}
