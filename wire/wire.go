// Package wire is the contract's one table of errors: for every error code of the
// domain (dsync.Code), the HTTP status a REST answer carries (SPEC §4), the error object
// REST bodies and WebSocket `error` replies share, and the close code of a WebSocket
// ended by that error (SPEC §5, §9). api and hub both answer through Describe, so a code
// means the same on both.
//
// wire imports sync (the codes) and coder/websocket (the close code type), nothing else
// of dashsync. It holds no state.
package wire

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/coder/websocket"

	dsync "github.com/dashsync/dashsync/sync"
)

// Close codes (SPEC §5, §9). 1001, 1009 and 1013 mean "reconnect and resume"; 4001 and
// 4003 mean "get a new token first".
const (
	CloseGoingAway     = websocket.StatusGoingAway
	CloseTooBig        = websocket.StatusMessageTooBig
	CloseTryAgainLater = websocket.StatusTryAgainLater
	CloseTokenExpired  = websocket.StatusCode(4001)
	CloseForbidden     = websocket.StatusCode(4003)
)

// row is one code's line of the table: its HTTP status and, for the codes that can end
// a connection, the close code (0: none does).
type row struct {
	status int
	close  websocket.StatusCode
}

// table is the one table. A code missing from it is answered as internal.
var table = map[dsync.Code]row{
	dsync.CodeBadRequest:      {http.StatusBadRequest, 0},
	dsync.CodeValidation:      {http.StatusBadRequest, 0},
	dsync.CodeUnauthorized:    {http.StatusUnauthorized, CloseTokenExpired},
	dsync.CodeForbidden:       {http.StatusForbidden, CloseForbidden},
	dsync.CodeNotFound:        {http.StatusNotFound, 0},
	dsync.CodeVersionConflict: {http.StatusConflict, 0},
	dsync.CodeConflict:        {http.StatusConflict, 0},
	dsync.CodeTooLarge:        {http.StatusRequestEntityTooLarge, CloseTooBig},
	dsync.CodeTimeout:         {http.StatusRequestTimeout, 0},
	dsync.CodePrecondition:    {http.StatusPreconditionFailed, 0},
	dsync.CodeSourceFailed:    {http.StatusBadGateway, 0},
	dsync.CodeRateLimited:     {http.StatusTooManyRequests, CloseTryAgainLater},
	dsync.CodeUnavailable:     {http.StatusServiceUnavailable, CloseGoingAway},
	dsync.CodeInternal:        {http.StatusInternalServerError, 0},
}

// InternalMessage is all a client learns of an internal error.
const InternalMessage = "internal error; the request id identifies it in the server's logs"

// Error is the contract's error object, in REST bodies ({"error": …}) and in WebSocket
// `error` replies alike.
type Error struct {
	Code         dsync.Code         `json:"code"`
	Message      string             `json:"message"`
	Details      []dsync.FieldError `json:"details,omitempty"`
	RetryAfterMs int64              `json:"retryAfterMs,omitempty"`
	Outcome      string             `json:"outcome,omitempty"`
}

// Reply is what an error is answered with.
type Reply struct {
	// Status is the HTTP status.
	Status int
	// Error is the error object, safe to show.
	Error Error
	// Current and Conflicts go beside the error object of a version_conflict: the
	// object as it is now, and the ops that collided (never nil for one).
	Current   any
	Conflicts []dsync.Conflict
	// Log is the level the error is logged at: error for internal ones (in full),
	// warn for unavailable ones (their cause), 0 with Quiet for the rest.
	Log   slog.Level
	Quiet bool
	// Cause is what to log.
	Cause error
}

// Describe turns any error into its reply. An error that is not a *dsync.Error is
// internal, except a context's end, which is unavailable (the request timed out or was
// cancelled).
func Describe(err error) Reply {
	var de *dsync.Error
	if !errors.As(err, &de) {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			de = &dsync.Error{Code: dsync.CodeUnavailable, Message: "the request timed out", Err: err}
		case errors.Is(err, context.Canceled):
			de = &dsync.Error{Code: dsync.CodeUnavailable, Message: "the request was cancelled", Err: err}
		default:
			de = &dsync.Error{Code: dsync.CodeInternal, Err: err}
		}
	}
	r, ok := table[de.Code]
	if !ok {
		de = &dsync.Error{Code: dsync.CodeInternal, Err: err}
		r = table[dsync.CodeInternal]
	}
	out := Reply{Status: r.status, Error: Error{Code: de.Code, Message: de.Message, Details: de.Details},
		Quiet: true, Cause: err}
	switch de.Code {
	case dsync.CodeInternal:
		out.Error = Error{Code: dsync.CodeInternal, Message: InternalMessage}
		out.Log, out.Quiet = slog.LevelError, false
	case dsync.CodeUnavailable:
		out.Error.Outcome = de.Outcome
		out.Log, out.Quiet = slog.LevelWarn, false
	case dsync.CodeVersionConflict:
		out.Current, out.Conflicts = de.Current, de.Conflicts
		if out.Conflicts == nil {
			out.Conflicts = []dsync.Conflict{}
		}
	case dsync.CodeRateLimited:
		out.Error.RetryAfterMs = de.RetryAfterMs
	}
	if out.Error.Message == "" {
		out.Error.Message = http.StatusText(r.status)
	}
	return out
}

// CloseCode is the close code of a connection ended by an error with code, and false
// for a code that never ends one.
func CloseCode(code dsync.Code) (websocket.StatusCode, bool) {
	r, ok := table[code]
	return r.close, ok && r.close != 0
}

// Status is code's HTTP status (internal's for a code not in the table).
func Status(code dsync.Code) int {
	if r, ok := table[code]; ok {
		return r.status
	}
	return http.StatusInternalServerError
}
