package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dashsync/dashsync/internal/tcpproxy"
	"github.com/dashsync/dashsync/internal/testredis"
)

// TestServe_HungRedisHoldsNoAcknowledgement: serve's Redis client bounds every call
// by its context, so with Redis hung (a proxy that stops forwarding without closing,
// as a redis-server stopped with SIGSTOP looks) a WebSocket edit, which spends the
// Redis edit budget and publishes through Redis, is acknowledged within a generous
// bound (SPEC §12; it was about 5 s).
func TestServe_HungRedisHoldsNoAcknowledgement(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	proxy, redisURL := tcpproxy.InFrontOf(t, testredis.URL(), "6379")
	getenv := envOf("DASHSYNC_REDIS_URL", redisURL, "DASHSYNC_REDIS_PREFIX", prefix)
	s := startServe(t, getenv, "--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	status, body := request(t, "POST", s.url+"/api/dashboard/layouts", s.token, `{"name":"Frozen"}`)
	var l struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	}
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &l) != nil {
		t.Fatalf("create a layout: got %d %s", status, body)
	}
	ws, status := dialServe(t, s.url, s.token)
	if ws == nil {
		t.Fatalf("dial: got %d", status)
	}

	proxy.Freeze()
	defer proxy.Thaw()
	const bound = 2 * time.Second
	version := l.Version
	for k := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		m, err := ws.Request(ctx, map[string]any{"type": "edit", "channel": "layout:" + l.ID, "base": version,
			"ops": []map[string]any{{"op": "add", "path": fmt.Sprintf("/settings/k%d", k), "value": k}}})
		took := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("edit %d: %v", k, err)
		}
		if m.Type != "ack" || m.Version != version+1 {
			t.Fatalf("edit %d: got %s, want an ack of version %d", k, m.Raw, version+1)
		}
		if took > bound {
			t.Errorf("edit %d acknowledged after %v with Redis hung, want within %v", k, took.Round(time.Millisecond), bound)
		}
		version = m.Version
	}
}
