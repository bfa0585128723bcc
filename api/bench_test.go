package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/internal/app"
	"github.com/dashsync/dashsync/internal/testlog"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// The widget-data benchmarks of BENCHMARKS.md ("Widget data"). Each drives a real
// server (SQLite store, in-process cache, no rate limits) over loopback HTTP with a
// keep-alive client in the same process: client and server share the machine's cores.

// newBenchServer starts a server as cmd/dashsync wires one for a single instance
// without Redis: a SQLite store, the in-process cache, the source registry with the
// test kinds, no rate limiter, and the production logger (JSON, info: one line per
// request) writing to io.Discard, so that formatting the line is counted and the
// write to stderr is not.
func newBenchServer(b *testing.B) *harness {
	b.Helper()
	store := backends[0].open(b) // sqlite, the default store
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sources := newTestSources(b, nil, nil)
	h := &harness{secret: []byte("bench-secret-0123456789abcdef0123"), store: store, registry: prometheus.NewRegistry(), logs: &testlog.Buffer{}}
	h.url = serveApp(b, app.Config{
		// As cmd/dashsync wires the embedded default: the only writer of its store.
		Store: store, SoleWriter: true, Secret: h.secret,
		Sources: sources, Fetchers: sources.Fetchers(), Logger: log, Registry: h.registry,
		// No Limits: no rate limits (the REST budget would cap one user at 100/s).
	})
	return h
}

// benchClient is a keep-alive HTTP client holding enough idle connections for every
// goroutine of a parallel benchmark.
func benchClient(b *testing.B) *http.Client {
	b.Helper()
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchParallelism is goroutines per GOMAXPROCS in the parallel benchmarks: enough
// requests in flight to keep a 2-core server busy rather than waiting on round trips.
const benchParallelism = 8

// BenchmarkWidgetGet_CachedVsBareGin measures cached GET /api/dashboard/widgets/:id
// requests/s against a bare gin handler (gin.New(), no middleware) answering the same
// bytes with the same Content-Type, in the same run and with the same client and
// request. The widget is of the fetched test kind test.echo, read once before the
// measure so that every measured request takes the cache-first path (cache hit, no
// fetch): the full route, i.e. request id, metrics, the log line, token check, the
// widget read from SQLite, the cache read and the JSON answer. The bare-gin result
// carries the ratio as the metric dashsync/bare (target >= 0.6); -v also logs it.
func BenchmarkWidgetGet_CachedVsBareGin(b *testing.B) {
	h := newBenchServer(b)
	c := h.newUser(b)
	w := c.createWidget(b, "test.echo")
	path := "/api/dashboard/widgets/" + w.ID
	warm := c.do(b, "GET", path, nil) // the one fetch: the data is cached from here on
	warm.want(b, http.StatusOK, nil)
	var got struct {
		Data *dsync.WidgetData `json:"data"`
	}
	if err := json.Unmarshal(warm.body, &got); err != nil || got.Data == nil {
		b.Fatalf("warm-up read has no data (%v): %s", err, warm.body)
	}
	body, contentType := warm.body, warm.header.Get("Content-Type")
	if again := c.do(b, "GET", path, nil); !bytes.Equal(again.body, body) {
		b.Fatalf("a second read differs from the first, so it was not served from the cache:\n%s\n%s", body, again.body)
	}

	bare := gin.New() // TestMain has put gin in test mode, as for the dashsync server

	bare.GET("/api/dashboard/widgets/:id", func(g *gin.Context) { g.Data(http.StatusOK, contentType, body) })
	bareSrv := httptest.NewServer(bare)
	b.Cleanup(bareSrv.Close)

	rates := map[string]float64{}
	for _, target := range []struct{ name, url string }{{"dashsync", h.url}, {"bare-gin", bareSrv.URL}} {
		b.Run(target.name, func(b *testing.B) {
			client := benchClient(b)
			url := target.url + path
			auth := "Bearer " + c.token
			b.SetParallelism(benchParallelism)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 2*len(body))
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Authorization", auth)
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					bb := bytes.NewBuffer(buf[:0])
					_, err = bb.ReadFrom(res.Body)
					_ = res.Body.Close()
					if err != nil || res.StatusCode != http.StatusOK || bb.Len() != len(body) {
						b.Errorf("GET %s: status %d, %d bytes (want 200, %d), err %v", url, res.StatusCode, bb.Len(), len(body), err)
						return
					}
				}
			})
			rate := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "req/s")
			rates[target.name] = rate
			if target.name == "bare-gin" && rates["dashsync"] > 0 {
				b.ReportMetric(rates["dashsync"]/rate, "dashsync/bare")
			}
		})
	}
	if rates["dashsync"] > 0 && rates["bare-gin"] > 0 {
		b.Logf("cached GET widget, %d-byte answer: dashsync %.0f req/s, bare gin %.0f req/s, ratio %.3f (target >= 0.6)",
			len(body), rates["dashsync"], rates["bare-gin"], rates["dashsync"]/rates["bare-gin"])
	}
}

// BenchmarkWidgetBatch_50Cached measures the latency of POST /api/dashboard/widgets/batch
// with 50 ids whose data is all cached (test.echo widgets read once before the
// measure). Requests are sent one at a time (one in flight: the latency of the route
// itself, not of a queue), each timed from before the client sends it to after its
// whole answer is read; p50, p99 and max are reported in milliseconds (nearest rank).
func BenchmarkWidgetBatch_50Cached(b *testing.B) {
	h := newBenchServer(b)
	c := h.newUser(b)
	ids := make([]string, widgetdata.MaxBatch)
	for i := range ids {
		ids[i] = c.createWidget(b, "test.echo").ID
	}
	reqBody, err := json.Marshal(map[string]any{"ids": ids})
	if err != nil {
		b.Fatal(err)
	}
	var first struct {
		Results map[string]struct {
			Status int               `json:"status"`
			Data   *dsync.WidgetData `json:"data"`
		} `json:"results"`
	}
	c.do(b, "POST", "/api/dashboard/widgets/batch", reqBody).want(b, http.StatusOK, &first) // fetches all 50
	for _, id := range ids {
		if r := first.Results[id]; r.Status != http.StatusOK || r.Data == nil {
			b.Fatalf("warm-up batch: widget %s: %+v", id, r)
		}
	}
	warm := c.do(b, "POST", "/api/dashboard/widgets/batch", reqBody)
	warm.want(b, http.StatusOK, nil)

	client := benchClient(b)
	url := h.url + "/api/dashboard/widgets/batch"
	auth := "Bearer " + c.token
	lat := make([]time.Duration, 0, 1<<16)
	var buf bytes.Buffer
	b.SetBytes(int64(len(warm.body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(reqBody))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		_, err = buf.ReadFrom(res.Body)
		_ = res.Body.Close()
		lat = append(lat, time.Since(start))
		if err != nil || res.StatusCode != http.StatusOK || buf.Len() != len(warm.body) {
			b.Fatalf("batch: status %d, %d bytes (want 200, %d), err %v", res.StatusCode, buf.Len(), len(warm.body), err)
		}
	}
	b.StopTimer()
	p := percentilesMs(lat)
	b.ReportMetric(p[0], "p50-ms")
	b.ReportMetric(p[1], "p99-ms")
	b.ReportMetric(p[2], "max-ms")
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
}

// percentilesMs returns the p50, p99 and max of d in milliseconds (nearest rank).
func percentilesMs(d []time.Duration) [3]float64 {
	if len(d) == 0 {
		return [3]float64{}
	}
	d = slices.Clone(d)
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p/100*float64(len(d)))) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	return [3]float64{ms(rank(50)), ms(rank(99)), ms(d[len(d)-1])}
}
