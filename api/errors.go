package api

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/gin-gonic/gin"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// errorResponse is the body of every error answer. A version_conflict also carries
// the current object and the conflicting ops beside the error.
type errorResponse struct {
	Error     wire.Error       `json:"error"`
	Current   any              `json:"current,omitempty"`
	Conflicts []dsync.Conflict `json:"conflicts,omitzero"`
}

// describe turns any error into its HTTP status and response body through the one
// table (wire.Describe), logging what the client must not see: internal errors in
// full, and the cause of unavailable ones.
func (s *Server) describe(ctx context.Context, err error) (int, errorResponse) {
	r := wire.Describe(err)
	switch {
	case r.Quiet:
	case r.Error.Code == dsync.CodeInternal:
		s.log.ErrorContext(ctx, "internal error", "request_id", requestIDFrom(ctx), "err", r.Cause)
	default:
		s.log.Log(ctx, r.Log, "backend unavailable", "request_id", requestIDFrom(ctx), "err", r.Cause)
	}
	body := errorResponse{Error: r.Error, Current: r.Current, Conflicts: r.Conflicts}
	if d, ok := r.Current.(dsync.Dashboard); ok {
		body.Current = dashboardOut(d)
	}
	return r.Status, body
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
