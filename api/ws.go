package api

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dashsync/dashsync/hub"
	dsync "github.com/dashsync/dashsync/sync"
)

// handleWebSocket serves GET /api/ws: the token was checked by authenticate (401
// before any upgrade); here the origin (403) and the per-user connection limit (429)
// are, then the hub takes the connection.
func (s *Server) handleWebSocket(c *gin.Context) {
	if s.hub == nil {
		s.writeError(c, dsync.Errorf(dsync.CodeUnavailable, "WebSockets are not served here"))
		return
	}
	if !s.originAllowed(c.Request) {
		s.writeError(c, dsync.Errorf(dsync.CodeForbidden, "origin %q is not allowed", c.GetHeader("Origin")))
		return
	}
	user := userOf(c)
	if s.maxConns > 0 && s.hub.Connections(user) >= s.maxConns {
		e := dsync.Errorf(dsync.CodeRateLimited, "at most %d connections per user", s.maxConns)
		e.RetryAfterMs = 1000
		s.writeError(c, e)
		return
	}
	exp, _ := c.Get(ctxExp)
	expAt, _ := exp.(time.Time)
	s.hub.ServeWS(c.Writer, c.Request, hub.Identity{User: user, Exp: expAt})
}

// originAllowed accepts requests without Origin (non-browser clients), from the
// server's own host, and from the configured origins.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.origins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}
