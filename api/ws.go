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
// before any upgrade); here the origin is (403), then the hub admits the connection
// (429 over the per-user connection limit, SPEC §12) and takes it over.
func (s *Server) handleWebSocket(c *gin.Context) {
	if s.sockets == nil {
		s.writeError(c, dsync.Errorf(dsync.CodeUnavailable, "WebSockets are not served here"))
		return
	}
	if !s.originAllowed(c.Request) {
		s.writeError(c, dsync.Errorf(dsync.CodeForbidden, "origin %q is not allowed", c.GetHeader("Origin")))
		return
	}
	if !isUpgrade(c.Request) {
		// Refused before the WebSocket library answers in plain text: every refusal
		// has the §4 body.
		s.writeError(c, dsync.Errorf(dsync.CodeBadRequest, "GET /api/ws is a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)"))
		return
	}
	exp, _ := c.Get(ctxExp)
	expAt, _ := exp.(time.Time)
	// The connection lives long: no body deadline may outlast the upgrade.
	clearReadDeadline(c)
	if err := s.sockets.ServeWS(c.Writer, c.Request, hub.Identity{User: userOf(c), Exp: expAt, Layout: c.GetString(ctxLinkLayout)}); err != nil {
		s.writeError(c, err)
	}
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

// isUpgrade reports whether r asks for a WebSocket upgrade (RFC 6455 §4.2.1).
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
