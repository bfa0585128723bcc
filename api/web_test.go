package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/web"
)

func TestWeb_PageAndAssetsAreServed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, backends[0].open(t), func(c *api.Config) { c.Web = web.FS() })
	cases := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/web/app.js">`},
		{"/web/dashsync.js", "text/javascript; charset=utf-8", "export class DashSync"},
		{"/web/app.js", "text/javascript; charset=utf-8", "window.dashsync"},
		{"/web/style.css", "text/css; charset=utf-8", ".tile"},
		{"/web/icon.svg", "image/svg+xml", "<svg"},
		{"/web/index.html", "text/html; charset=utf-8", "data-presence-users"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			r := h.do(t, "GET", tc.path, nil, nil)
			if r.status != http.StatusOK {
				t.Fatalf("got status %d, want 200; body: %.200s", r.status, r.body)
			}
			if got := r.header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("got Content-Type %q, want %q", got, tc.ctype)
			}
			if got := r.header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("got Cache-Control %q, want no-cache (revalidate: the names carry no hash)", got)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no X-Content-Type-Options: nosniff")
			}
			if !strings.Contains(string(r.body), tc.contains) {
				t.Errorf("the body does not contain %q", tc.contains)
			}
			etag := r.header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			again := h.do(t, "GET", tc.path, nil, map[string]string{"If-None-Match": etag})
			if again.status != http.StatusNotModified || len(again.body) != 0 {
				t.Errorf("revalidation: got %d with %d bytes, want 304 and no body", again.status, len(again.body))
			}
		})
	}

	page := h.do(t, "GET", "/", nil, nil)
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("got Content-Security-Policy %q, want scripts from the server only", csp)
	}
	if head := h.do(t, "HEAD", "/web/dashsync.js", nil, nil); head.status != http.StatusOK || len(head.body) != 0 {
		t.Errorf("HEAD: got %d with %d bytes", head.status, len(head.body))
	}

	for _, path := range []string{"/web/nope.js", "/web/test/frames.test.mjs", "/web/web.go", "/web/", "/web/../api/ws"} {
		r := h.do(t, "GET", path, nil, nil)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", path, r.status)
		}
	}
}

func TestWeb_NotServedWithoutFiles(t *testing.T) {
	t.Parallel()
	h := newHarness(t, backends[0].open(t))
	for _, path := range []string{"/", "/web/dashsync.js"} {
		if r := h.do(t, "GET", path, nil, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", path, r.status)
		}
	}
}

func TestDevToken_OnlyInDevMode(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, backends[0].open(t), func(c *api.Config) { c.Web = web.FS() })
		r := h.do(t, "GET", "/dev/token?user=alice", nil, nil)
		var body struct{ Error struct{ Code string } }
		r.want(t, http.StatusNotFound, &body)
		if body.Error.Code != "not_found" {
			t.Errorf("got code %q, want not_found", body.Error.Code)
		}
	})
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, backends[0].open(t), func(c *api.Config) { c.DevTokens = true })
		var got struct {
			Token, User string
			ExpiresAt   time.Time
		}
		r := h.do(t, "GET", "/dev/token?user=alice", nil, nil)
		r.want(t, http.StatusOK, &got)
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("got Cache-Control %q, want no-store", r.header.Get("Cache-Control"))
		}
		user, exp, err := api.VerifyToken(h.secret, got.Token, time.Now())
		if err != nil || user != "alice" || got.User != "alice" {
			t.Fatalf("got user %q (%q), err %v; want a valid token for alice", user, got.User, err)
		}
		if d := time.Until(exp); d < 50*time.Minute || d > time.Hour+time.Minute {
			t.Errorf("the token lives %v, want about %v", d, api.DefaultDevTokenTTL)
		}
		if !got.ExpiresAt.Equal(exp) {
			t.Errorf("got expiresAt %v, want the token's exp %v", got.ExpiresAt, exp)
		}
		// The token works on the API.
		dash := h.do(t, "GET", "/api/dashboard", nil, map[string]string{"Authorization": "Bearer " + got.Token})
		dash.want(t, http.StatusOK, nil)

		for _, q := range []string{"", "?user=", "?user=" + strings.Repeat("x", api.MaxUserLen+1), "?user=a%00b"} {
			r := h.do(t, "GET", "/dev/token"+q, nil, nil)
			var e struct{ Error struct{ Code string } }
			if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusBadRequest || e.Error.Code != "validation_failed" {
				t.Errorf("GET /dev/token%s: got %d %s, want 400 validation_failed", q, r.status, r.body)
			}
		}
	})
}

func TestTemplates_DemoHasEveryLiveKind(t *testing.T) {
	t.Parallel()
	h := newHarness(t, backends[0].open(t))
	c := h.newUser(t)
	var l layout
	c.do(t, "POST", "/api/dashboard/layouts", `{"template":"demo"}`).want(t, http.StatusCreated, &l)
	var ws struct {
		Widgets []struct {
			ID, Type string
			Source   struct{ Kind string }
		}
	}
	c.do(t, "GET", "/api/dashboard/widgets", nil).want(t, http.StatusOK, &ws)
	kinds := map[string]string{}
	for _, w := range ws.Widgets {
		if _, ok := l.Items[w.ID]; !ok {
			t.Errorf("widget %s is not on the layout", w.ID)
		}
		kinds[w.Type] = w.Source.Kind
	}
	want := map[string]string{"stat": "demo.counter", "timeseries": "demo.series", "clock": "demo.clock", "table": "static", "text": "static"}
	for typ, kind := range want {
		if kinds[typ] != kind {
			t.Errorf("got %s tile with source %q, want %q (all: %v)", typ, kinds[typ], kind, kinds)
		}
	}
}
