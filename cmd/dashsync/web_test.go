package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServe_DemoPage: serve answers the demo page at / in every mode, and hands out
// tokens for the page at /dev/token only with --dev.
func TestServe_DemoPage(t *testing.T) {
	t.Parallel()
	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		s := startServe(t, envOf(), "--dev", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
		status, body := request(t, "GET", s.url+"/", "", "")
		if status != http.StatusOK || !strings.Contains(body, "/web/app.js") {
			t.Fatalf("GET /: got %d %.200s, want the demo page", status, body)
		}
		if status, _ := request(t, "GET", s.url+"/web/dashsync.js", "", ""); status != http.StatusOK {
			t.Errorf("GET /web/dashsync.js: got %d, want 200", status)
		}
		status, body = request(t, "GET", s.url+"/dev/token?user=alice", "", "")
		var got struct{ Token string }
		if status != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.Token == "" {
			t.Fatalf("GET /dev/token: got %d %s, want a token", status, body)
		}
		if status, body := request(t, "GET", s.url+"/api/dashboard", got.Token, ""); status != http.StatusOK {
			t.Errorf("the dev token on the API: got %d %s", status, body)
		}
		// A page of another site whose name resolves here (DNS rebinding) gets
		// neither a token nor the sign-in (SPEC §12).
		for _, path := range []string{"/dev/token?user=alice", "/?user=alice"} {
			req, err := http.NewRequest("GET", s.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "rebound.example:8080"
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusForbidden || !strings.Contains(string(b), `"code":"forbidden"`) {
				t.Errorf("GET %s with Host rebound.example: got %d %s, want 403 forbidden", path, res.StatusCode, b)
			}
		}
	})
	t.Run("not dev", func(t *testing.T) {
		t.Parallel()
		getenv := envOf("DASHSYNC_JWT_SECRET", "a-secret-from-the-environment-0123456789")
		s := startServe(t, getenv, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
		if status, _ := request(t, "GET", s.url+"/", "", ""); status != http.StatusOK {
			t.Errorf("GET /: got %d, want 200 (the page asks for a token)", status)
		}
		if status, body := request(t, "GET", s.url+"/dev/token?user=alice", "", ""); status != http.StatusNotFound {
			t.Errorf("GET /dev/token without --dev: got %d %s, want 404", status, body)
		}
	})
}
