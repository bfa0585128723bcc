package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// seqSource is a fetched source answering {"seq": n}, n = 1, 2, … per fetch, so that
// each delivery can be matched to its refresh.
type seqSource struct{ n atomic.Int64 }

func (s *seqSource) Fetch(context.Context, dsync.Widget) (json.RawMessage, error) {
	return fmt.Appendf(nil, `{"seq":%d}`, s.n.Add(1)), nil
}

// seqKinds accepts the test.seq kind besides static and push.
type seqKinds struct{}

func (seqKinds) CheckSource(ctx context.Context, src dsync.Source) error {
	if src.Kind == "test.seq" {
		return nil
	}
	return dsync.BasicSources{}.CheckSource(ctx, src)
}

// refreshRound is what the subscribers saw of one refresh.
type refreshRound struct {
	fetchedAt time.Time // the data's fetchedAt (milliseconds)
	received  int
	last      time.Time // when the last subscriber read it
}

// liveTracker collects the deliveries of every subscriber.
type liveTracker struct {
	channel string
	mu      sync.Mutex
	rounds  map[int64]*refreshRound
	lat     map[int64][]time.Duration // per refresh: fetchedAt → arrival, per subscriber
	cond    *sync.Cond
	bad     atomic.Int64 // undecodable data messages
}

func newLiveTracker(channel string) *liveTracker {
	t := &liveTracker{channel: channel, rounds: map[int64]*refreshRound{}, lat: map[int64][]time.Duration{}}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// onMessage runs in each subscriber's read goroutine.
func (t *liveTracker) onMessage(m wsclient.Msg) {
	if m.Type != "data" || m.Channel != t.channel {
		return
	}
	var d struct {
		Data      struct{ Seq int64 } `json:"data"`
		FetchedAt dsync.Time          `json:"fetchedAt"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil || d.Data.Seq == 0 {
		t.bad.Add(1)
		return
	}
	t.mu.Lock()
	r := t.rounds[d.Data.Seq]
	if r == nil {
		r = &refreshRound{fetchedAt: d.FetchedAt.Time}
		t.rounds[d.Data.Seq] = r
	}
	r.received++
	if m.At.After(r.last) {
		r.last = m.At
	}
	t.lat[d.Data.Seq] = append(t.lat[d.Data.Seq], m.At.Sub(d.FetchedAt.Time))
	t.mu.Unlock()
	t.cond.Broadcast()
}

// waitFor waits until refresh seq has reached n subscribers; false after the timeout.
func (t *liveTracker) waitFor(seq int64, n int, timeout time.Duration) bool {
	stop := time.AfterFunc(timeout, t.cond.Broadcast)
	defer stop.Stop()
	deadline := time.Now().Add(timeout)
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		if r := t.rounds[seq]; r != nil && r.received >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		t.cond.Wait()
	}
}

// maxSeq is the newest refresh any subscriber has seen.
func (t *liveTracker) maxSeq() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var m int64
	for s := range t.rounds {
		m = max(m, s)
	}
	return m
}

// BenchmarkLiveRefresh_1WidgetTo2000Subscribers measures live refresh (SPEC §6) on one
// embedded server (SQLite, in-process broker and cache, no rate limits): 2,000
// WebSocket subscribers of one user on one widget of a fetched kind with
// refreshSeconds 1, so the hub's refresh loop fetches once a second and every
// subscriber gets each result as `data`. One iteration is one refresh delivered to all
// 2,000 subscribers (run it with -benchtime Nx: N refreshes, about N seconds).
//
// Latency is from the data's fetchedAt (set by the data service when the source
// answered, before caching and publishing; RFC 3339 milliseconds, so up to 1 ms is
// added by the truncation) to the moment each subscriber read the frame
// (wsclient.Msg.At). The subscribers are in the same process: their reads and JSON
// decoding share the cores with the server. Reported: deliveries/s over the measured
// time (bounded by the refresh rate: 2,000 per period), fanout-deliveries/s (the
// deliveries over the summed fetchedAt → last arrival times of the refreshes: the
// rate while fanning out), p50/p99/max latency, and the actual refresh period.
//
// Each connection is two file descriptors here (client and server end): the benchmark
// needs ulimit -n of about 4,100.
func BenchmarkLiveRefresh_1WidgetTo2000Subscribers(b *testing.B) {
	const (
		subscribers = 2000
		dialers     = 32
		owner       = "alice"
	)
	gin.SetMode(gin.TestMode) // no route listing on stdout among the results
	src := &seqSource{}
	s := testenv.New(b, testenv.Options{Sources: seqKinds{},
		Fetchers: map[string]widgetdata.Fetcher{"test.seq": src}})
	ctx := context.Background()
	w, err := s.Service.CreateWidget(ctx, owner, dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("live"),
		Source: &dsync.Source{Kind: "test.seq", RefreshSeconds: 1, TTLSeconds: 3600}}, owner)
	if err != nil {
		b.Fatal(err)
	}
	channel := "widget:" + w.ID
	tr := newLiveTracker(channel)
	token := testenv.Token(b, owner)

	// Open and subscribe the 2,000 connections, dialers at a time.
	clients := make([]*wsclient.Client, subscribers)
	b.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.CloseNow()
			}
		}
	})
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		dialErr error
	)
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < subscribers; i = int(next.Add(1) - 1) {
				err := func() error {
					dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					c, _, err := wsclient.Dial(dctx, s.WSURL, wsclient.Options{Token: token, OnMessage: tr.onMessage})
					if err != nil {
						return fmt.Errorf("dial %d (2,000 connections need ulimit -n of about 4,100): %w", i, err)
					}
					clients[i] = c
					r, err := c.Request(dctx, map[string]any{"type": "subscribe", "channel": channel})
					if err != nil || r.Type != "subscribed" {
						return fmt.Errorf("subscribe %d: %s %v", i, r.Raw, err)
					}
					return nil
				}()
				if err != nil {
					errOnce.Do(func() { dialErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if dialErr != nil {
		b.Fatal(dialErr)
	}

	// Let the joins' presence settle and one full refresh go by before measuring.
	first := tr.maxSeq() + 1
	if !tr.waitFor(first, subscribers, 30*time.Second) {
		b.Fatalf("refresh %d did not reach all %d subscribers within 30 s", first, subscribers)
	}
	first++

	seq := first
	b.ResetTimer()
	for b.Loop() {
		if !tr.waitFor(seq, subscribers, 30*time.Second) {
			b.Fatalf("refresh %d did not reach all %d subscribers within 30 s", seq, subscribers)
		}
		seq++
	}
	b.StopTimer()
	last := seq - 1

	tr.mu.Lock()
	defer tr.mu.Unlock()
	var (
		lat        []time.Duration
		deliveries int
		fanout     time.Duration
	)
	for q := first; q <= last; q++ {
		r := tr.rounds[q]
		if r.received != subscribers {
			b.Fatalf("refresh %d reached %d subscribers, want %d (none twice)", q, r.received, subscribers)
		}
		deliveries += r.received
		fanout += r.last.Sub(r.fetchedAt)
		lat = append(lat, tr.lat[q]...)
	}
	if n := tr.bad.Load(); n > 0 {
		b.Fatalf("%d data messages could not be decoded", n)
	}
	slices.Sort(lat)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p/100*float64(len(lat)))) - 1
		return lat[min(max(i, 0), len(lat)-1)]
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(deliveries)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(deliveries)/fanout.Seconds(), "fanout-deliveries/s")
	b.ReportMetric(ms(rank(50)), "p50-ms")
	b.ReportMetric(ms(rank(99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	if last > first {
		period := tr.rounds[last].fetchedAt.Sub(tr.rounds[first].fetchedAt) / time.Duration(last-first)
		b.ReportMetric(period.Seconds(), "period-s")
	}
}
