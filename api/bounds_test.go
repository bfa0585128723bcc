package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

var boundsCases = []testCase{
	{"Bounds_RefusedWithTheirCodeAndNothingChanged", testBounds},
	{"Bounds_HistoryPageHoldsAtMostOneMiBOfOps", testBoundsHistoryPage},
}

// bigEdit is a PATCH body whose ops (add/remove pairs of one large setting, then a
// rename) come to about pairs × 6 KB, though they change only the name.
func bigEdit(version int64, pairs int, name string) map[string]any {
	pad := strings.Repeat("x", 6000)
	var ops []map[string]any
	for range pairs {
		ops = append(ops, map[string]any{"op": "add", "path": "/settings/pad", "value": pad}, map[string]any{"op": "remove", "path": "/settings/pad"})
	}
	ops = append(ops, map[string]any{"op": "replace", "path": "/name", "value": name})
	return map[string]any{"version": version, "ops": ops}
}

// testBounds sends a value past each bound of SPEC §12 that REST takes: each gets its
// code and changes nothing, on every store (int4 columns included).
func testBounds(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "x")
	w := c.createWidget(t, "push")
	lp, wp := "/api/dashboard/layouts/"+l.ID, "/api/dashboard/widgets/"+w.ID
	paths := []string{lp, wp, lp + "/versions", "/api/dashboard/widgets"}
	ops := func(n int) map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"op": "add", "path": fmt.Sprintf("/settings/k%d", i), "value": i}
		}
		return map[string]any{"version": 1, "ops": out}
	}
	src := func(field string, v any) map[string]any {
		return map[string]any{"type": "stat", "source": map[string]any{"kind": "push", field: v}}
	}
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"refreshSeconds over a day", "POST", "/api/dashboard/widgets", src("refreshSeconds", 86_401), 400, "validation_failed", "source.refreshSeconds"},
		{"refreshSeconds that overflows milliseconds", "POST", "/api/dashboard/widgets", src("refreshSeconds", 2305843009213693952), 400, "validation_failed", "source.refreshSeconds"},
		{"ttlSeconds over 30 days", "POST", "/api/dashboard/widgets", src("ttlSeconds", 2_592_001), 400, "validation_failed", "source.ttlSeconds"},
		{"ttlSeconds over int4", "POST", "/api/dashboard/widgets", src("ttlSeconds", 2147483648), 400, "validation_failed", "source.ttlSeconds"},
		{"refreshSeconds over a day on update", "POST", wp, map[string]any{"version": 1, "source": map[string]any{"kind": "push", "refreshSeconds": 86_401}}, 400, "validation_failed", "source.refreshSeconds"},
		{"501 ops", "PATCH", lp, ops(501), 400, "validation_failed", "ops"},
		{"ops over 64 KiB", "PATCH", lp, bigEdit(1, 11, "big"), 413, "too_large", "ops"},
		{"a fraction where an integer goes", "PATCH", lp, `{"version":1,"ops":[{"op":"replace","path":"/columns","value":1.5}]}`, 400, "validation_failed", "ops[0]"},
		{"an exponent where an integer goes", "PATCH", lp, `{"version":1,"ops":[{"op":"replace","path":"/columns","value":1e1}]}`, 400, "validation_failed", "ops[0]"},
		{"an integer past int64 in an op", "PATCH", lp, `{"version":1,"ops":[{"op":"replace","path":"/columns","value":99999999999999999999}]}`, 400, "validation_failed", "ops[0]"},
		{"invalid UTF-8 in a body", "PATCH", lp, []byte("{\"version\":1,\"ops\":[{\"op\":\"replace\",\"path\":\"/name\",\"value\":\"a\xffb\"}]}"), 400, "validation_failed", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.snapshot(t, paths...)
			e := c.do(t, tc.method, tc.path, tc.body).wantError(t, tc.status, tc.code)
			if tc.field != "" {
				e.wantDetail(t, tc.field, "")
			}
			c.wantUnchanged(t, before, paths...)
		})
	}
	// At the bounds, everything is accepted.
	var got widget
	c.do(t, "POST", "/api/dashboard/widgets", map[string]any{"type": "stat",
		"source": map[string]any{"kind": "push", "refreshSeconds": 86_400, "ttlSeconds": 2_592_000}}).want(t, http.StatusCreated, &got)
	if got.Source.RefreshSeconds != 86_400 || got.Source.TTLSeconds != 2_592_000 {
		t.Errorf("created %+v, want the largest periods kept", got.Source)
	}
	c.do(t, "PATCH", lp, ops(500)).want(t, http.StatusOK, nil)
	c.do(t, "GET", "/healthz", nil).want(t, http.StatusOK, nil)
}

// testBoundsHistoryPage: 24 edits of about 60 KB of ops each; no page of their history
// is much over 1 MiB, each says where the next starts, and together they hold all.
func testBoundsHistoryPage(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "x")
	for i := range 24 {
		c.do(t, "PATCH", "/api/dashboard/layouts/"+l.ID, bigEdit(int64(i+1), 10, fmt.Sprint("n", i))).want(t, http.StatusOK, nil)
	}
	seen, pages := 0, 0
	path := "/api/dashboard/layouts/" + l.ID + "/versions?limit=100"
	for {
		r := c.do(t, "GET", path, nil)
		var page struct {
			Versions []json.RawMessage `json:"versions"`
			Next     *int64            `json:"next"`
		}
		r.want(t, http.StatusOK, &page)
		if len(r.body) > 1<<20+64<<10 {
			t.Fatalf("a history page of %d entries is %d bytes", len(page.Versions), len(r.body))
		}
		seen += len(page.Versions)
		pages++
		if page.Next == nil {
			break
		}
		path = fmt.Sprintf("/api/dashboard/layouts/%s/versions?limit=100&before=%d", l.ID, *page.Next)
	}
	if seen != 25 || pages < 2 {
		t.Fatalf("%d pages hold %d versions, want 25 versions on at least 2 pages", pages, seen)
	}
}
