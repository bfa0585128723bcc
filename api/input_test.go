package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var inputCases = []testCase{
	{"Input_OddValuesAreRefusedWithTheirCodeNever500", testOddInput},
}

// testOddInput sends values that some store cannot keep (NUL in text, invalid
// UTF-8 in a path) or that sit at the edges of the number types: each gets a client
// error (or a plain answer), never a 500, and changes nothing.
func testOddInput(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "x")
	w := c.createWidget(t, "push")
	lp, wp := "/api/dashboard/layouts/"+l.ID, "/api/dashboard/widgets/"+w.ID
	paths := []string{lp, wp, "/api/dashboard", "/api/dashboard/layouts", "/api/dashboard/widgets"}
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		field                    string
	}{
		{"NUL in a name", "POST", "/api/dashboard/layouts", `{"name":"a\u0000b"}`, 400, "validation_failed", "name"},
		{"NUL in a setting", "POST", "/api/dashboard/layouts", `{"name":"a","settings":{"k":"\u0000"}}`, 400, "validation_failed", "settings.k"},
		{"NUL in a title", "POST", "/api/dashboard/widgets", `{"type":"stat","title":"\u0000","source":{"kind":"push"}}`, 400, "validation_failed", "title"},
		{"NUL in pushed data", "PUT", wp + "/data", `{"data":"\u0000"}`, 400, "validation_failed", "data"},
		{"NUL in the current layout id", "PUT", "/api/dashboard", `{"currentLayoutId":"\u0000"}`, 400, "validation_failed", "currentLayoutId"},
		{"NUL in an op path", "PATCH", lp, `{"version":1,"ops":[{"op":"add","path":"/settings/\u0000","value":1}]}`, 400, "validation_failed", "ops[0].path"},
		{"escaped backslash before u0000 is text", "PATCH", lp, `{"version":1,"ops":[{"op":"add","path":"/settings/a","value":"\\u0000"}]}`, 200, "", ""},
		{"NUL in a path id", "GET", "/api/dashboard/layouts/a%00b", "", 404, "not_found", ""},
		{"invalid UTF-8 in a path id", "DELETE", "/api/dashboard/widgets/%ff%fe", "", 404, "not_found", ""},
		{"NUL in a batch id", "GET", "/api/dashboard/widgets/batch?ids=a%00", "", 207, "", ""},
		{"largest before", "GET", lp + "/versions?before=9223372036854775807", "", 200, "", ""},
		{"largest limit", "GET", lp + "/versions?limit=9223372036854775807", "", 200, "", ""},
		{"limit beyond int64", "GET", lp + "/versions?limit=9223372036854775808", "", 400, "validation_failed", "limit"},
		{"largest version to restore", "POST", lp + "/versions/9223372036854775807/restore", "", 404, "not_found", ""},
		{"largest base version", "PUT", lp, `{"version":9223372036854775807}`, 400, "validation_failed", "version"},
		{"base version beyond int64", "PUT", lp, `{"version":9223372036854775808}`, 400, "validation_failed", "version"},
		{"huge exponent", "PUT", lp, `{"version":1,"columns":1e400}`, 400, "validation_failed", "columns"},
		{"fraction", "PUT", lp, `{"version":1,"columns":1.5}`, 400, "validation_failed", "columns"},
		{"deep nesting in settings", "PATCH", lp, `{"version":1,"ops":[{"op":"add","path":"/settings/d","value":` + deep(10000) + `}]}`, 400, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before []string
			if tc.status >= 400 {
				before = c.snapshot(t, paths...)
			}
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := c.do(t, tc.method, tc.path, body)
			if tc.code == "" {
				r.want(t, tc.status, nil)
				return
			}
			e := r.wantError(t, tc.status, tc.code)
			if tc.field != "" {
				e.wantDetail(t, tc.field, "")
			}
			c.wantUnchanged(t, before, paths...)
		})
	}
	// A token whose subject no store can keep.
	tok := signed(t, jwt.SigningMethodHS256, h.secret, jwt.MapClaims{"sub": "a\u0000b", "exp": time.Now().Add(time.Hour).Unix()})
	h.do(t, "GET", "/api/dashboard", nil, map[string]string{"Authorization": "Bearer " + tok}).
		wantError(t, http.StatusUnauthorized, "unauthorized")
}

// deep returns JSON arrays nested n deep.
func deep(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, '[')
	}
	for range n {
		b = append(b, ']')
	}
	return string(b)
}
