package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
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
// cluster's number of fetches. It records when each fetch began, so that tests
// measure the spacing of fetches instead of counting them over a slept interval, and
// how many have returned.
type countingSource struct {
	n     atomic.Int64
	delay time.Duration

	mu     sync.Mutex
	starts []time.Time // starts[i]: when the fetch that answered value i+1 began
	ended  int         // fetches that have returned
}

func (c *countingSource) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	c.mu.Lock()
	n := c.n.Add(1)
	c.starts = append(c.starts, time.Now())
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.ended++
		c.mu.Unlock()
	}()
	select {
	case <-time.After(c.delay): // the source's latency, part of the scenario
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return json.RawMessage(fmt.Sprintf(`{"value":%d}`, n)), nil
}

// fetchStarts returns when each fetch so far began, in order (fetch i+1 answered
// value i+1), and how many of them have returned.
func (c *countingSource) fetchStarts() (starts []time.Time, ended int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.starts), c.ended
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

// dataValue is the "value" a data message for channel carries; false for any other
// message.
func dataValue(m wsclient.Msg, channel string) (int64, bool) {
	if m.Type != "data" || m.Channel != channel {
		return 0, false
	}
	var d struct {
		Data struct {
			Value *int64 `json:"value"`
		} `json:"data"`
	}
	if json.Unmarshal(m.Data, &d) != nil || d.Data.Value == nil {
		return 0, false
	}
	return *d.Data.Value, true
}

// SPEC §6: while anyone is subscribed, a widget is refreshed every refreshSeconds by
// exactly one instance, every subscriber gets `data`, and the refreshes stop with the
// last unsubscribe. Instead of counting fetches over a slept interval, the test
// measures the spacing of the fetches the source recorded, on both instances
// together.
//
// The two refreshers are kept half a period out of phase. Then the refresh lease is
// what stands between them and two fetches a period: in phase, the forced refresh's
// one-second rule (MinFetchInterval) would already make the later one read the other
// instance's fetch from the shared cache; half a period (1.5 s) apart, each would
// find the other's fetch older than a second and fetch again.
func TestWidgetData_LiveRefreshIsOnePerPeriodAcrossInstancesAndStops(t *testing.T) {
	t.Parallel()
	const refreshSeconds = 3
	const period = refreshSeconds * time.Second
	// The bounds on the gap between consecutive fetches, both instances together.
	//
	// minGap: two refreshers a period each give two fetches a period, so a gap of
	// at most half a period (1.5 s); one refresher holds the lease, so the next fetch
	// (on either instance) waits for the lease to expire, 0.9 period (2.7 s) after it
	// was taken. Lateness cannot shrink that: a late tick takes the lease late, and
	// the next fetch waits 2.7 s from then. Only a fetch that starts late after taking
	// its lease can: minGap lets it start 0.95 s late (and the forced refresh's rule
	// keeps any two fetches at least 1 s apart whatever happens).
	const minGap = period/2 + 250*time.Millisecond
	// maxGap: a refresher that waited two periods would give gaps over 2 periods; a
	// slow machine adds only its lateness to a period, and maxGap allows a whole
	// period of it.
	const maxGap = 2 * period
	const refreshes = 3 // waited for: refreshes keep happening

	src := &countingSource{}
	c := newDataCluster(t, src)
	w := countingWidget(t, c.a, refreshSeconds)
	channel := "widget:" + w.ID
	var boxes [2]inbox
	var clients [2]*wsclient.Client
	subscribe := func(i int, s *testenv.Server) {
		t.Helper()
		clients[i] = s.Dial(t, owner, boxes[i].add)
		if r := req(t, clients[i], map[string]any{"type": "subscribe", "channel": channel}); r.Type != "subscribed" {
			t.Fatalf("subscribe on instance %d: %s", i, r.Raw)
		}
	}
	subscribe(0, c.a)
	cold, _ := src.fetchStarts() // the first subscribe read the data cold: no refresh
	// The scenario, not a wait for a result: the second instance's refresher starts
	// half a period after the first's.
	time.Sleep(period / 2)
	subscribe(1, c.b)

	first := int64(len(cold)) // fetches before the first refresh
	eventually(t, fmt.Sprintf("%d live refreshes", refreshes), func() bool { return src.n.Load() >= first+refreshes })
	starts, _ := src.fetchStarts()
	last := int64(len(starts)) // the last refresh's value
	refreshed := starts[first:]
	var gaps []string
	for i := 1; i < len(refreshed); i++ {
		gaps = append(gaps, refreshed[i].Sub(refreshed[i-1]).Round(time.Millisecond).String())
	}
	t.Logf("gaps between refreshes: %s", strings.Join(gaps, ", "))
	for i := 1; i < len(refreshed); i++ {
		if gap := refreshed[i].Sub(refreshed[i-1]); gap < minGap || gap >= maxGap {
			t.Errorf("refreshes %d and %d (values %d, %d) began %v apart, want %v ≤ gap < %v for a refresh period of %v on one instance at a time",
				i, i+1, first+int64(i), first+int64(i)+1, gap.Round(time.Millisecond), minGap, maxGap, period)
		}
	}
	// Every refresh reaches the subscribers of both instances.
	for v := first + 1; v <= last; v++ {
		for i := range boxes {
			boxes[i].waitFor(t, fmt.Sprintf("data with value %d on instance %d", v, i), func(m wsclient.Msg) bool {
				got, ok := dataValue(m, channel)
				return ok && got == v
			})
		}
	}

	// The last refresh has just been announced: the next cannot start before its
	// lease expires, 0.9 period after it was taken, so none is under way while the
	// subscribers leave. A fetch that started anyway is waited for, and not counted.
	for _, cl := range clients {
		if r := req(t, cl, map[string]any{"type": "unsubscribe", "channel": channel}); r.Type != "unsubscribed" {
			t.Fatalf("unsubscribe: %s", r.Raw)
		}
	}
	var after int
	eventually(t, "the fetches under way at the last unsubscribe to return", func() bool {
		starts, ended := src.fetchStarts()
		after = len(starts)
		return ended == after
	})
	// A negative check needs a wait: two periods, in which a refresher still running
	// would have fetched at least once (it fetches once a period, plus any lateness).
	time.Sleep(2*period + 500*time.Millisecond)
	if got := int(src.n.Load()); got != after {
		t.Fatalf("after the last unsubscribe: %d more fetches in %v, want 0", got-after, 2*period+500*time.Millisecond)
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
