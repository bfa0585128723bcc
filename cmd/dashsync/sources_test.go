package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/internal/testredis"
)

// These tests run the real wiring with the real resolver and dialer, so every URL in
// them is a literal loopback address: nothing is resolved and, even with a broken
// policy, nothing leaves loopback. The policy's cases beyond loopback (private,
// metadata, names, redirects) are in source/ and api/, behind an injected resolver and
// a dialer that refuses anything but loopback.

func loopbackJSON(t *testing.T, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// widgetData is GET /api/dashboard/widgets/:id's data, as raw JSON.
func widgetData(t *testing.T, base, tok, id, query string) json.RawMessage {
	t.Helper()
	status, body := request(t, "GET", base+"/api/dashboard/widgets/"+id+query, tok, "")
	if status != http.StatusOK {
		t.Fatalf("GET widget %s: got %d %s", id, status, body)
	}
	var got struct {
		Data *struct {
			Data json.RawMessage `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Data == nil {
		return nil
	}
	return got.Data.Data
}

func createWidget(t *testing.T, base, tok, source string) string {
	t.Helper()
	status, body := request(t, "POST", base+"/api/dashboard/widgets", tok, `{"type":"stat","title":"T","source":`+source+`}`)
	if status != http.StatusCreated {
		t.Fatalf("create widget with source %s: got %d %s", source, status, body)
	}
	var w struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatal(err)
	}
	return w.ID
}

func TestServe_WidgetSourcesEndToEnd(t *testing.T) {
	t.Parallel()
	allowed := loopbackJSON(t, `{"ok":true}`)
	other := loopbackJSON(t, `{"other":true}`)
	secret := "sources-test-secret-0123456789abcdef"
	getenv := envOf("DASHSYNC_JWT_SECRET", secret, "DASHSYNC_SOURCE_ALLOW", strings.TrimPrefix(allowed.URL, "http://"))
	s := startServe(t, getenv, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	tok, err := api.MintToken([]byte(secret), "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	id := createWidget(t, s.url, tok, `{"kind":"http","url":"`+allowed.URL+`/data"}`)
	if got := widgetData(t, s.url, tok, id, ""); string(got) != `{"ok":true}` {
		t.Errorf("allow-listed http source: got %s, want {\"ok\":true}", got)
	}
	status, body := request(t, "POST", s.url+"/api/dashboard/widgets", tok, `{"type":"stat","source":{"kind":"http","url":"`+other.URL+`/"}}`)
	if status != http.StatusBadRequest || !strings.Contains(body, `"validation_failed"`) || !strings.Contains(body, `"source.url"`) {
		t.Errorf("http source on a loopback address not allow-listed: got %d %s, want 400 validation_failed on source.url", status, body)
	}

	counter := createWidget(t, s.url, tok, `{"kind":"demo.counter"}`)
	if got := widgetData(t, s.url, tok, counter, ""); string(got) != `{"value":1}` {
		t.Errorf("demo.counter: got %s, want {\"value\":1}", got)
	}
	// A forced refresh within a second of the last fetch is served from the cache
	// (SPEC §12); past it, the source is called again: the counter goes on to 2.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := widgetData(t, s.url, tok, counter, "?refresh=true")
		if string(got) == `{"value":2}` {
			break
		}
		if string(got) != `{"value":1}` || time.Now().After(deadline) {
			t.Fatalf("demo.counter refreshed: got %s, want {\"value\":1} until a second has passed, then {\"value\":2}", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	clock := createWidget(t, s.url, tok, `{"kind":"demo.clock"}`)
	if got := widgetData(t, s.url, tok, clock, ""); !strings.HasPrefix(string(got), `{"now":"20`) {
		t.Errorf("demo.clock: got %s", got)
	}
	if status, body := request(t, "POST", s.url+"/api/dashboard/layouts", tok, `{"template":"ops-overview"}`); status != http.StatusCreated {
		t.Fatalf("ops-overview template: got %d %s", status, body)
	}
	if status, body := request(t, "GET", s.url+"/api/dashboard", tok, ""); status != http.StatusOK || !strings.Contains(body, `"points":[[`) {
		t.Errorf("dashboard of the ops-overview template: got %d %s, want demo.series points", status, body)
	}

	res, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, m := range []string{
		`dashsync_source_fetch_seconds_count{kind="http"} 1`,
		`dashsync_source_fetch_seconds_count{kind="demo.counter"}`,
		`dashsync_widget_data_cache_misses_total`,
		`dashsync_widget_data_cache_hits_total`,
		`dashsync_widget_data_stale_total 0`,
	} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if err := s.stop(t); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestServe_RefusesBadSourceAllowList(t *testing.T) {
	t.Parallel()
	for _, env := range [][]string{nil, {"DASHSYNC_SOURCE_ALLOW", "10.0.0.0/99"}} {
		args := []string{"serve", "--dev", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0"}
		if env == nil {
			args = append(args, "--source-allow", "not an entry")
		}
		err := run(context.Background(), args, io.Discard, io.Discard, envOf(env...))
		if err == nil || !strings.Contains(err.Error(), "--source-allow") {
			t.Errorf("env %v args %v: got %v, want an error about --source-allow", env, args, err)
		}
	}
}

// With --redis-url, widget data lives in Redis: what one instance caches another
// serves, and a clear on one takes effect on the other at once.
func TestServe_RedisCacheSharedByInstances(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	db := testpg.NewDatabase(t)
	secret := "redis-cache-test-secret-0123456789abcdef"
	getenv := envOf("DASHSYNC_DATABASE_URL", db, "DASHSYNC_JWT_SECRET", secret,
		"DASHSYNC_REDIS_URL", testredis.URL(), "DASHSYNC_REDIS_PREFIX", prefix)
	a := startServe(t, getenv, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	b := startServe(t, getenv, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	tok, err := api.MintToken([]byte(secret), "dana", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id := createWidget(t, a.url, tok, `{"kind":"push"}`)
	if status, body := request(t, "PUT", a.url+"/api/dashboard/widgets/"+id+"/data", tok, `{"data":{"v":1}}`); status != http.StatusOK {
		t.Fatalf("push on instance A: got %d %s", status, body)
	}
	if got := widgetData(t, b.url, tok, id, ""); string(got) != `{"v":1}` {
		t.Fatalf("instance B: got %s, want the data pushed on A", got)
	}
	counter := createWidget(t, a.url, tok, `{"kind":"demo.counter"}`)
	first := widgetData(t, a.url, tok, counter, "")
	if got := widgetData(t, b.url, tok, counter, ""); string(got) != string(first) {
		t.Fatalf("instance B: got %s, want A's cached %s (no second fetch)", got, first)
	}
	if status, body := request(t, "DELETE", a.url+"/api/dashboard/widgets/"+id, tok, ""); status != http.StatusNoContent {
		t.Fatalf("clear on A: got %d %s", status, body)
	}
	if got := widgetData(t, b.url, tok, id, ""); got != nil {
		t.Fatalf("instance B after the clear on A: got %s, want no data", got)
	}
	keys, err := testredis.Client(t).Keys(context.Background(), prefix+"cache:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("cache keys under %q: got %v, %v; want some", prefix+"cache:", keys, err)
	}
	for _, s := range []*server{a, b} {
		if err := s.stop(t); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
}
