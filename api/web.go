package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	dsync "github.com/dashsync/dashsync/sync"
)

// DefaultDevTokenTTL is how long a token from GET /dev/token lives. The demo page asks
// for a new one shortly before it expires.
const DefaultDevTokenTTL = time.Hour

// pageCSP is the demo page's Content-Security-Policy: its own scripts, styles, images
// and sockets only (no CDN, no inline script).
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one static file, read once at start.
type asset struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

// assetType is the content type a file is served with, by extension; "" for a file
// of another kind, which is not served.
func assetType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	}
	return ""
}

// loadAssets reads the top-level files of fsys with a known type, keyed by name.
func loadAssets(fsys fs.FS) (map[string]asset, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read web files: %w", err)
	}
	out := map[string]asset{}
	for _, e := range entries {
		ctype := assetType(e.Name())
		if e.IsDir() || ctype == "" {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read web file %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = asset{name: e.Name(), body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	if _, ok := out["index.html"]; !ok {
		return nil, fmt.Errorf("web files: no index.html")
	}
	return out, nil
}

// routeWeb registers the demo page (/ and /web/*) when there are web files, and
// /dev/token when dev tokens are on. None of them is under /api: no token is needed.
func (s *Server) routeWeb(r *gin.Engine) {
	if s.assets != nil {
		r.GET("/", s.handleIndex)
		r.HEAD("/", s.handleIndex)
		r.GET("/web/*file", s.handleAsset)
		r.HEAD("/web/*file", s.handleAsset)
	}
	if s.devTokens {
		r.GET("/dev/token", s.handleDevToken)
	}
}

// handleIndex serves GET / : the demo dashboard. With dev tokens on, /?user=NAME
// signs the page in as NAME without a click, so it is served only to a loopback Host
// (see requireLoopbackHost).
func (s *Server) handleIndex(c *gin.Context) {
	if _, signIn := c.GetQuery("user"); signIn && s.devTokens && !s.requireLoopbackHost(c) {
		return
	}
	s.serveAsset(c, s.assets["index.html"])
}

// loopbackHosts are the names a request's Host may carry for dev sign-in (SPEC §12).
var loopbackHosts = []string{"127.0.0.1", "::1", "localhost"}

// requireLoopbackHost reports whether the request's Host names this machine's
// loopback (127.0.0.1, [::1] or localhost, any port); otherwise it answers 403
// forbidden. Dev tokens let anyone act as anyone, and a page of another site whose
// name is made to resolve to this machine (DNS rebinding) reaches it from loopback
// all the same: only the Host, its own name, gives it away.
func (s *Server) requireLoopbackHost(c *gin.Context) bool {
	host := c.Request.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	for _, l := range loopbackHosts {
		if strings.EqualFold(host, l) {
			return true
		}
	}
	s.writeError(c, dsync.Errorf(dsync.CodeForbidden,
		"development sign-in answers only requests to 127.0.0.1, [::1] or localhost, not %q", strings.ToValidUTF8(c.Request.Host, "\uFFFD")))
	return false
}

// handleAsset serves GET /web/<file>: the client module, the page's script, styles
// and icon. Only top-level files are served; anything else is 404.
func (s *Server) handleAsset(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("file"), "/")
	a, ok := s.assets[name]
	if !ok || strings.Contains(name, "/") {
		s.writeError(c, dsync.Errorf(dsync.CodeNotFound, "no file %s", c.Request.URL.Path))
		return
	}
	s.serveAsset(c, a)
}

// serveAsset writes a file with its type and validators. The names carry no content
// hash, so browsers must revalidate (no-cache): an unchanged file costs a 304.
func (s *Server) serveAsset(c *gin.Context, a asset) {
	h := c.Writer.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if a.name == "index.html" {
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(c.Writer, c.Request, a.name, time.Time{}, bytes.NewReader(a.body))
}

// devTokenResponse is the answer of GET /dev/token.
type devTokenResponse struct {
	Token     string     `json:"token"`
	User      string     `json:"user"`
	ExpiresAt dsync.Time `json:"expiresAt"`
}

// handleDevToken serves GET /dev/token?user=NAME (only with Config.DevTokens, that is
// serve --dev): a token for NAME signed with the server's secret, so the demo page can
// sign in as anyone named in its URL.
func (s *Server) handleDevToken(c *gin.Context) {
	if !s.requireLoopbackHost(c) {
		return
	}
	user := c.Query("user")
	if user == "" {
		s.writeError(c, dsync.Invalid("user", "required", "", "user is required"))
		return
	}
	if err := checkUser(user); err != nil {
		s.writeError(c, dsync.Invalid("user", "user", "", "%s", err.Error()))
		return
	}
	now := s.now()
	tok, err := MintTokenAt(s.secret, user, now, s.devTTL)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	// The token's exp is in whole seconds (JWT NumericDate).
	exp := now.Add(s.devTTL).Truncate(time.Second)
	c.JSON(http.StatusOK, devTokenResponse{Token: tok, User: user, ExpiresAt: dsync.NewTime(exp)})
}
