package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	dsync "github.com/dashsync/dashsync/sync"
)

// statusOf is the one table that turns an error code into an HTTP status (SPEC §4).
// A code missing from it is answered as internal.
var statusOf = map[dsync.Code]int{
	dsync.CodeBadRequest:      http.StatusBadRequest,
	dsync.CodeValidation:      http.StatusBadRequest,
	dsync.CodeUnauthorized:    http.StatusUnauthorized,
	dsync.CodeForbidden:       http.StatusForbidden,
	dsync.CodeNotFound:        http.StatusNotFound,
	dsync.CodeVersionConflict: http.StatusConflict,
	dsync.CodeConflict:        http.StatusConflict,
	dsync.CodeTooLarge:        http.StatusRequestEntityTooLarge,
	dsync.CodeTimeout:         http.StatusRequestTimeout,
	dsync.CodePrecondition:    http.StatusPreconditionFailed,
	dsync.CodeSourceFailed:    http.StatusBadGateway,
	dsync.CodeRateLimited:     http.StatusTooManyRequests,
	dsync.CodeUnavailable:     http.StatusServiceUnavailable,
	dsync.CodeInternal:        http.StatusInternalServerError,
}

// internalMessage is all a client learns of an internal error.
const internalMessage = "internal error; the request id identifies it in the server's logs"

// errorObject is the contract's error object: {"code","message","details"?}.
type errorObject struct {
	Code         dsync.Code         `json:"code"`
	Message      string             `json:"message"`
	Details      []dsync.FieldError `json:"details,omitempty"`
	RetryAfterMs int64              `json:"retryAfterMs,omitempty"`
	Outcome      string             `json:"outcome,omitempty"`
}

// errorResponse is the body of every error answer. A version_conflict also carries
// the current object and the conflicting ops beside the error.
type errorResponse struct {
	Error     errorObject      `json:"error"`
	Current   any              `json:"current,omitempty"`
	Conflicts []dsync.Conflict `json:"conflicts,omitzero"`
}

// describe turns any error into its HTTP status and response body, logging what the
// client must not see: internal errors in full, and the cause of unavailable ones.
func (s *Server) describe(ctx context.Context, err error) (int, errorResponse) {
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
	status, ok := statusOf[de.Code]
	if !ok {
		de = &dsync.Error{Code: dsync.CodeInternal, Err: err}
		status = http.StatusInternalServerError
	}
	body := errorResponse{Error: errorObject{Code: de.Code, Message: de.Message, Details: de.Details}}
	switch de.Code {
	case dsync.CodeInternal:
		s.log.ErrorContext(ctx, "internal error", "request_id", requestIDFrom(ctx), "err", err)
		body.Error = errorObject{Code: dsync.CodeInternal, Message: internalMessage}
	case dsync.CodeUnavailable:
		s.log.WarnContext(ctx, "backend unavailable", "request_id", requestIDFrom(ctx), "err", err)
		body.Error.Outcome = de.Outcome
	case dsync.CodeVersionConflict:
		body.Current = de.Current
		if d, ok := de.Current.(dsync.Dashboard); ok {
			body.Current = dashboardOut(d)
		}
		body.Conflicts = de.Conflicts
		if body.Conflicts == nil {
			body.Conflicts = []dsync.Conflict{}
		}
	case dsync.CodeRateLimited:
		body.Error.RetryAfterMs = de.RetryAfterMs
	}
	if body.Error.Message == "" {
		body.Error.Message = http.StatusText(status)
	}
	return status, body
}

// writeError answers the request with err, the only way handlers answer an error.
func (s *Server) writeError(c *gin.Context, err error) {
	status, body := s.describe(c.Request.Context(), err)
	if body.Error.Code == dsync.CodeRateLimited {
		secs := (body.Error.RetryAfterMs + 999) / 1000
		c.Header("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	if body.Error.Code == dsync.CodeUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="dashsync"`)
	}
	c.Set(ctxErrorCode, string(body.Error.Code))
	c.AbortWithStatusJSON(status, body)
}

// errorAttr names the error code of a failed request for its log line.
func errorAttr(c *gin.Context) slog.Attr {
	if code, ok := c.Get(ctxErrorCode); ok {
		return slog.String("error_code", code.(string))
	}
	return slog.Attr{}
}
