package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testdial"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/internal/wsclient"
)

// dialServe opens a WebSocket to serve at base with token: nil and the refusal's
// status when the upgrade is refused.
func dialServe(t *testing.T, base, token string) (*wsclient.Client, int) {
	t.Helper()
	c, r, err := testdial.Try(t, "ws"+strings.TrimPrefix(base, "http")+"/api/ws", token, 30*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if c != nil {
		return c, http.StatusSwitchingProtocols
	}
	if r.Status == http.StatusTooManyRequests && r.RetryAfter == "" {
		t.Errorf("a 429 without Retry-After")
	}
	return nil, r.Status
}

func TestServe_ConnectionsPerUserAreBoundedByDefault(t *testing.T) {
	t.Parallel()
	s := startServe(t, envOf(), "--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	for i := range 50 {
		if c, status := dialServe(t, s.url, s.token); c == nil {
			t.Fatalf("connection %d of 50: got %d, want it open", i+1, status)
		}
	}
	if c, status := dialServe(t, s.url, s.token); c != nil || status != http.StatusTooManyRequests {
		t.Fatalf("connection 51: got %d, want 429: the default is 50 per user (SPEC §12)", status)
	}
}

func TestServe_ConnectionsPerUserCountAcrossRedisInstances(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	secret := "a-secret-shared-by-both-instances-0123456789"
	getenv := envOf("DASHSYNC_JWT_SECRET", secret, "DASHSYNC_REDIS_URL", testredis.URL(), "DASHSYNC_REDIS_PREFIX", prefix,
		"DASHSYNC_MAX_CONNS_PER_USER", "2")
	s1 := startServe(t, getenv, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	s2 := startServe(t, getenv, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	tok, err := api.MintToken([]byte(secret), "carol", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []*server{s1, s2} {
		if c, status := dialServe(t, s.url, tok); c == nil {
			t.Fatalf("connection on instance %d: got %d, want it open", i+1, status)
		}
	}
	for i, s := range []*server{s1, s2} {
		if c, status := dialServe(t, s.url, tok); c != nil || status != http.StatusTooManyRequests {
			t.Fatalf("a third connection, on instance %d: got %d, want 429: the limit holds across instances", i+1, status)
		}
	}
}
