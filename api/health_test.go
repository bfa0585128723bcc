package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dashsync/dashsync/api"
)

var healthCases = []testCase{
	{"Health_HealthzIsOK", testHealthz},
	{"Health_ReadyzChecksTheStore", testReadyzOK},
	{"Health_ReadyzIs503NamingTheFailedCheck", testReadyzFailed},
	{"Health_MetricsCountRequestsByRouteTemplate", testMetrics},
	{"Health_RequestIDIsEchoedOrGenerated", testRequestID},
	{"Health_UnknownRouteIs404JSON", testUnknownRoute},
}

func testHealthz(t *testing.T, h *harness) {
	var got map[string]string
	h.do(t, "GET", "/healthz", nil, nil).want(t, http.StatusOK, &got)
	if got["status"] != "ok" || len(got) != 1 {
		t.Errorf(`got %v, want {"status":"ok"}`, got)
	}
}

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func testReadyzOK(t *testing.T, h *harness) {
	var got readyBody
	h.do(t, "GET", "/readyz", nil, nil).want(t, http.StatusOK, &got)
	if got.Status != "ok" || got.Checks["store"] != "ok" {
		t.Errorf(`got %+v, want status ok and checks {"store":"ok"}`, got)
	}
}

func testReadyzFailed(t *testing.T, h *harness) {
	h2 := newHarness(t, h.store, func(c *api.Config) {
		c.Checks = []api.Check{
			{Name: "redis", Check: func(context.Context) error { return errors.New("dial tcp 10.0.0.7:6379: refused") }},
			{Name: "other", Check: func(context.Context) error { return nil }},
		}
	})
	r := h2.do(t, "GET", "/readyz", nil, nil)
	var got readyBody
	r.want(t, http.StatusServiceUnavailable, &got)
	want := map[string]string{"store": "ok", "redis": "failed", "other": "ok"}
	for k, v := range want {
		if got.Checks[k] != v {
			t.Errorf("got checks %v, want %v", got.Checks, want)
		}
	}
	if strings.Contains(string(r.body), "10.0.0.7") {
		t.Errorf("readyz leaks the check's error: %s", r.body)
	}
	if !strings.Contains(h2.logs.String(), "10.0.0.7") {
		t.Errorf("the failed check's error is not in the log")
	}
}

func testMetrics(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "m")
	c.getLayout(t, l.ID)
	h.do(t, "GET", "/no/such/route/"+l.ID, nil, nil)
	r := h.do(t, "GET", "/metrics", nil, nil)
	r.want(t, http.StatusOK, nil)
	body := string(r.body)
	for _, want := range []string{
		`dashsync_http_requests_total{method="GET",route="/api/dashboard/layouts/:id",status="200"}`,
		`dashsync_http_requests_total{method="POST",route="/api/dashboard/layouts",status="201"}`,
		`dashsync_http_request_duration_seconds_bucket{method="GET",route="/api/dashboard/layouts/:id",status="200"`,
		`route="unmatched"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, l.ID) {
		t.Errorf("metrics carry a raw path (an id): route labels must be templates")
	}
}

func testRequestID(t *testing.T, h *harness) {
	cases := []struct {
		name, sent string
		echoed     bool
	}{
		{"sane id is echoed", "req-123.abc_X:1", true},
		{"id with spaces is replaced", "a b", false},
		{"overlong id is replaced", strings.Repeat("a", 200), false},
		{"missing id is generated", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.sent != "" {
				hdr[api.RequestIDHeader] = tc.sent
			}
			got := h.do(t, "GET", "/healthz", nil, hdr).header.Get(api.RequestIDHeader)
			switch {
			case tc.echoed && got != tc.sent:
				t.Errorf("got request id %q, want %q echoed", got, tc.sent)
			case !tc.echoed && (got == "" || got == tc.sent):
				t.Errorf("got request id %q, want a generated one", got)
			}
		})
	}
	// The request id is on the request's log line.
	h.do(t, "GET", "/healthz", nil, map[string]string{api.RequestIDHeader: "find-me-in-the-log"})
	found := false
	for line := range strings.SplitSeq(h.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["request_id"] == "find-me-in-the-log" && rec["route"] == "/healthz" {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line with the request id")
	}
}

func testUnknownRoute(t *testing.T, h *harness) {
	h.do(t, "GET", "/nope", nil, nil).wantError(t, http.StatusNotFound, "not_found")
}
