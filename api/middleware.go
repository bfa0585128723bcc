package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	dsync "github.com/dashsync/dashsync/sync"
)

// Keys of values a request carries in its gin context.
const (
	ctxUser       = "dashsync.user"
	ctxExp        = "dashsync.exp"
	ctxLinkLayout = "dashsync.linklayout" // a link's layout
	ctxErrorCode  = "dashsync.error_code"
)

// RequestIDHeader carries the request id, in and out.
const RequestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// requestIDFrom returns the request id carried by ctx, or "".
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// saneRequestID reports whether a client's X-Request-ID may be reused as ours: 1 to
// 128 characters of letters, digits and -_.:
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// requestID gives every request an id (the client's X-Request-ID when sane),
// carried in the request context and echoed in the response header.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader(RequestIDHeader)
	if !saneRequestID(id) {
		id = newRequestID()
	}
	c.Header(RequestIDHeader, id)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), requestIDKey{}, id))
	c.Next()
}

// metrics are the HTTP metrics, labelled by route template (c.FullPath()), method
// and status.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// limited counts requests refused by a rate limit, by budget; limiterErrors the
	// limiter failures that let a request through (fail open).
	limited       *prometheus.CounterVec
	limiterErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dashsync", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "dashsync", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency, by route template, method and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
	}
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dashsync", Subsystem: "http", Name: "rate_limited_total",
		Help: "Requests refused by a rate limit (429), by budget (rest, edit).",
	}, []string{"budget"})
	m.limiterErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "dashsync", Subsystem: "http", Name: "rate_limiter_errors_total",
		Help: "Rate limiter failures (Redis unreachable, say); the request was allowed.",
	})
	reg.MustRegister(m.requests, m.latency, m.limited, m.limiterErrors)
	return m
}

// routeOf is the route template of a request; requests that match no route share one
// label so that unknown paths cannot blow up the metrics.
func routeOf(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

// observe logs every request in one structured line and counts it in the metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	status := c.Writer.Status()
	route := routeOf(c)
	labels := prometheus.Labels{"route": route, "method": c.Request.Method, "status": strconv.Itoa(status)}
	s.metrics.requests.With(labels).Inc()
	s.metrics.latency.With(labels).Observe(elapsed.Seconds())

	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(c.Request.Context(), level, "request",
		slog.String("request_id", requestIDFrom(c.Request.Context())),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.Int("bytes", c.Writer.Size()),
		slog.String("user", userOf(c)),
		errorAttr(c),
	)
}

// recoverPanic turns a handler panic into a logged internal error; the client gets
// the generic 500 answer and the server keeps running.
func (s *Server) recoverPanic(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			err := fmt.Errorf("panic in %s %s: %v\n%s", c.Request.Method, routeOf(c), r, debug.Stack())
			if c.Writer.Written() {
				s.log.ErrorContext(c.Request.Context(), "internal error after the answer began",
					"request_id", requestIDFrom(c.Request.Context()), "err", err)
				c.Abort()
				return
			}
			s.writeError(c, err)
		}
	}()
	c.Next()
}

// saneParams answers not_found for a path whose parameters (ids, versions) no object
// can have: invalid UTF-8 or a NUL character, which some stores cannot even compare.
func (s *Server) saneParams(c *gin.Context) {
	for _, p := range c.Params {
		if !utf8.ValidString(p.Value) || strings.ContainsRune(p.Value, 0) {
			s.writeError(c, dsync.Errorf(dsync.CodeNotFound, "no object has the %s %q", p.Key, strings.ToValidUTF8(p.Value, "\uFFFD")))
			return
		}
	}
	c.Next()
}

// DefaultReadTimeout is how long a request body may take to arrive (SPEC §12).
const DefaultReadTimeout = 10 * time.Second

// bodyDeadline bounds how long a request's body may take to arrive (SPEC §12,
// Config.ReadTimeout), whoever sent it, before authentication runs: the connection's
// read deadline is set, and lifted once the whole body is in, so that it never cuts a
// handler that runs long after reading (net/http's background read, which watches
// for the client going away, would cancel the request's context at the deadline).
// A body read that hits the deadline is answered 408 timeout (see decode).
//
// Until the body is in, the answer carries "Connection: close": a handler that answers
// without reading it (401, 404, 429) is not held up while net/http drains the rest,
// and the connection ends once the answer is out, at the latest at the deadline.
// Requests without a body get no deadline: their background read is running
// already, there is nothing to wait for, and the WebSocket upgrade (a GET) must not
// inherit one.
func (s *Server) bodyDeadline(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		c.Next()
		return
	}
	rc := http.NewResponseController(c.Writer)
	if err := rc.SetReadDeadline(time.Now().Add(s.bodyWait)); err != nil {
		c.Next() // a writer without deadlines (not a network connection): nothing to bound
		return
	}
	h := c.Writer.Header()
	h.Set("Connection", "close")
	r.Body = &deadlineBody{ReadCloser: r.Body, done: func() {
		_ = rc.SetReadDeadline(time.Time{})
		h.Del("Connection")
	}}
	c.Next()
}

// deadlineBody is a request body that calls done once, when it has been read to its
// end.
type deadlineBody struct {
	io.ReadCloser
	done func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && b.done != nil {
		b.done()
		b.done = nil
	}
	return n, err
}

// clearReadDeadline lifts the body deadline from a connection that is to live long
// (the WebSocket the hub takes over).
func clearReadDeadline(c *gin.Context) {
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
}
