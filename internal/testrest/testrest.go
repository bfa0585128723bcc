// Package testrest is for tests: it reads the answers of dashsync's REST API that
// several test suites check alike.
package testrest

import (
	"encoding/json"
	"net/http"
	"testing"
)

// SplitRateLimited reads the body of a widget batch (POST /api/dashboard/widgets/batch)
// and splits ids into those answered 200 and those refused with SPEC §12's 429
// rate_limited and a retryAfterMs. It fails t on a body that is not JSON and on a
// result that is neither.
func SplitRateLimited(t testing.TB, body []byte, ids []string) (answered, limited []string) {
	t.Helper()
	var got struct {
		Results map[string]struct {
			Status int `json:"status"`
			Error  *struct {
				Code         string `json:"code"`
				RetryAfterMs int64  `json:"retryAfterMs"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		switch r := got.Results[id]; {
		case r.Status == http.StatusOK:
			answered = append(answered, id)
		case r.Status == http.StatusTooManyRequests && r.Error != nil && r.Error.Code == "rate_limited" && r.Error.RetryAfterMs > 0:
			limited = append(limited, id)
		default:
			t.Fatalf("widget %s: got %+v, want 200 or 429 rate_limited with retryAfterMs", id, r)
		}
	}
	return answered, limited
}
