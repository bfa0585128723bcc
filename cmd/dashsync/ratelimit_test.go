package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testlimit"
	"github.com/dashsync/dashsync/internal/testredis"
)

func TestServe_RateFlagsLimitRESTRequests(t *testing.T) {
	t.Parallel()
	// 1 a second, burst 2: the third request in a row is refused.
	s := startServe(t, envOf(), "--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--rate-rest", "1")
	for i := range 2 {
		if status, body := request(t, "GET", s.url+"/api/dashboard/layouts", s.token, ""); status != http.StatusOK {
			t.Fatalf("request %d: got %d %s, want 200", i+1, status, body)
		}
	}
	status, body := request(t, "GET", s.url+"/api/dashboard/layouts", s.token, "")
	if status != http.StatusTooManyRequests || !strings.Contains(body, `"code":"rate_limited"`) || !strings.Contains(body, `"retryAfterMs":`) {
		t.Fatalf("third request with --rate-rest 1: got %d %s, want 429 rate_limited with retryAfterMs", status, body)
	}
	if status, _ := request(t, "GET", s.url+"/healthz", "", ""); status != http.StatusOK {
		t.Fatalf("healthz: got %d, want 200: health is not rate limited", status)
	}
}

func TestServe_RedisRateLimitsHoldAcrossInstances(t *testing.T) {
	t.Parallel()
	prefix := testlimit.Prefix(t)
	secret := "a-secret-shared-by-both-instances-0123456789"
	getenv := envOf("DASHSYNC_JWT_SECRET", secret, "DASHSYNC_REDIS_URL", testredis.URL(), "DASHSYNC_REDIS_PREFIX", prefix)
	// 0.01 a second, burst 1: one request, whichever instance answers it.
	args := []string{"--addr", "127.0.0.1:0", "--rate-rest", "0.01"}
	s1 := startServe(t, getenv, append(args, "--data-dir", t.TempDir())...)
	s2 := startServe(t, getenv, append(args, "--data-dir", t.TempDir())...)
	tok, err := api.MintToken([]byte(secret), "carol", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := request(t, "GET", s1.url+"/api/dashboard/layouts", tok, ""); status != http.StatusOK {
		t.Fatalf("first request, on instance 1: got %d %s, want 200", status, body)
	}
	if status, body := request(t, "GET", s2.url+"/api/dashboard/layouts", tok, ""); status != http.StatusTooManyRequests {
		t.Fatalf("second request, on instance 2: got %d %s, want 429: the budget is the user's across instances", status, body)
	}
}
