// Package testdial is for tests: it opens a WebSocket to a dashsync server the way a
// browser would, and when the server refuses the upgrade (SPEC §12's bounds) hands the
// refusal back to check instead of an error.
package testdial

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/dashsync/dashsync/internal/wsclient"
)

// Refusal is an upgrade the server refused: its status, its Retry-After header and
// its error body.
type Refusal struct {
	// Status is the response's status code.
	Status int
	// RetryAfter is the Retry-After header ("" when absent).
	RetryAfter string
	// Code and RetryAfterMs are the error body's; zero when Body is not one.
	Code         string
	RetryAfterMs int64
	// Body is the response body as read, and BodyErr why it is not JSON (nil when it
	// is).
	Body    []byte
	BodyErr error
}

// Try dials url (ws://host/api/ws) with token, waiting at most wait. It returns the
// client, closed at cleanup, when the upgrade is admitted; the refusal when the server
// answered the upgrade with an error response; and err when the dial failed without
// a response.
func Try(t testing.TB, url, token string, wait time.Duration) (*wsclient.Client, *Refusal, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := wsclient.Dial(ctx, url, wsclient.Options{Token: token})
	if err == nil {
		t.Cleanup(c.CloseNow)
		return c, nil, nil
	}
	if resp == nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	r := &Refusal{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	var body struct {
		Error struct {
			Code         string `json:"code"`
			RetryAfterMs int64  `json:"retryAfterMs"`
		} `json:"error"`
	}
	r.Body, _ = io.ReadAll(resp.Body)
	r.BodyErr = json.Unmarshal(r.Body, &body)
	r.Code, r.RetryAfterMs = body.Error.Code, body.Error.RetryAfterMs
	return nil, r, nil
}
