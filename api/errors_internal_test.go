package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// TestWriteError_MapsEveryCodeThroughOneTable checks the status, body and headers the
// error mapper gives each kind of error.
func TestWriteError_MapsEveryCodeThroughOneTable(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.TestMode)
	conflict := &dsync.Error{Code: dsync.CodeVersionConflict, Message: "overlap",
		Current: map[string]int{"version": 3}, Conflicts: []dsync.Conflict{{Op: 0, Path: "/name", Version: 3, Reason: "overlap"}}}
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		message    string // "" skips the check
		retryAfter string
		logged     string // "" means nothing is logged at warn or above
	}{
		{"bad request", dsync.Errorf(dsync.CodeBadRequest, "no"), 400, "bad_request", "no", "", ""},
		{"validation", dsync.Invalid("items.a.w", "max", "12", "items.a.w must be at most 12"), 400, "validation_failed", "items.a.w must be at most 12", "", ""},
		{"unauthorized", dsync.Errorf(dsync.CodeUnauthorized, "who"), 401, "unauthorized", "who", "", ""},
		{"forbidden", dsync.Errorf(dsync.CodeForbidden, "no"), 403, "forbidden", "no", "", ""},
		{"not found", fmt.Errorf("load: %w", dsync.Errorf(dsync.CodeNotFound, "gone")), 404, "not_found", "gone", "", ""},
		{"version conflict", conflict, 409, "version_conflict", "overlap", "", ""},
		{"conflict", dsync.Errorf(dsync.CodeConflict, "last one"), 409, "conflict", "last one", "", ""},
		{"too large", dsync.Errorf(dsync.CodeTooLarge, "big"), 413, "too_large", "big", "", ""},
		{"source failed", dsync.Errorf(dsync.CodeSourceFailed, "upstream"), 502, "source_failed", "upstream", "", ""},
		{"rate limited", &dsync.Error{Code: dsync.CodeRateLimited, Message: "slow down", RetryAfterMs: 1500}, 429, "rate_limited", "slow down", "2", ""},
		{"rate limited briefly", &dsync.Error{Code: dsync.CodeRateLimited, Message: "slow down", RetryAfterMs: 10}, 429, "rate_limited", "", "1", ""},
		{"unavailable", dsync.Unavailable(errors.New("dial tcp: refused")), 503, "unavailable", "", "", "dial tcp: refused"},
		{"plain error is internal", errors.New("pq: secret table broke"), 500, "internal", wire.InternalMessage, "", "pq: secret table broke"},
		{"internal *Error hides its message", &dsync.Error{Code: dsync.CodeInternal, Message: "stack: x", Err: errors.New("boom")}, 500, "internal", wire.InternalMessage, "", "boom"},
		{"unknown code is internal", &dsync.Error{Code: "weird", Message: "odd"}, 500, "internal", wire.InternalMessage, "", "odd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest("GET", "/", nil).WithContext(
				t.Context())
			s.requestID(c)
			s.writeError(c, tc.err)

			if w.Code != tc.status {
				t.Errorf("got status %d, want %d", w.Code, tc.status)
			}
			var body struct {
				Error struct {
					Code         string `json:"code"`
					Message      string `json:"message"`
					RetryAfterMs int64  `json:"retryAfterMs"`
				} `json:"error"`
				Current   json.RawMessage `json:"current"`
				Conflicts []dsync.Conflict
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			if body.Error.Code != tc.code {
				t.Errorf("got code %q, want %q", body.Error.Code, tc.code)
			}
			if tc.message != "" && body.Error.Message != tc.message {
				t.Errorf("got message %q, want %q", body.Error.Message, tc.message)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("got Retry-After %q, want %q", got, tc.retryAfter)
			}
			if tc.code == "rate_limited" && body.Error.RetryAfterMs == 0 {
				t.Errorf("rate_limited without retryAfterMs inside error")
			}
			if tc.code == "version_conflict" && (string(body.Current) != `{"version":3}` || len(body.Conflicts) != 1) {
				t.Errorf("got current %s conflicts %v, want both beside the error", body.Current, body.Conflicts)
			}
			if tc.code != "version_conflict" && (body.Current != nil || body.Conflicts != nil) {
				t.Errorf("current/conflicts on a %s error: %s", tc.code, w.Body)
			}
			if tc.code == "internal" && strings.Contains(w.Body.String(), tc.logged) {
				t.Errorf("the answer leaks the internal error: %s", w.Body)
			}
			switch {
			case tc.logged == "" && logs.Len() > 0:
				t.Errorf("logged %s, want nothing", logs.String())
			case tc.logged != "" && !strings.Contains(logs.String(), tc.logged):
				t.Errorf("the log lacks %q: %s", tc.logged, logs.String())
			case tc.logged != "" && !strings.Contains(logs.String(), `"request_id":"`+w.Header().Get(RequestIDHeader)+`"`):
				t.Errorf("the log lacks the request id: %s", logs.String())
			}
		})
	}
}
