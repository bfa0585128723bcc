// Package testenv starts real dashsync servers for tests: a store (SQLite in a temp dir
// or a fresh Postgres database) and the server app.New builds on it — the wiring
// cmd/dashsync runs — on an httptest server on loopback. Several servers can share one
// store and one broker bus to play instances.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/app"
	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/store/memory"
	"github.com/dashsync/dashsync/store/postgres"
	"github.com/dashsync/dashsync/store/sqlite"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// Secret signs the tokens of every test server.
var Secret = []byte("testenv-secret-0123456789abcdef")

// Backends are the store implementations every suite runs on.
var Backends = []string{"sqlite", "postgres"}

// ForEachBackend runs fn as a subtest per backend, in parallel.
func ForEachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// OpenStore opens a fresh store of the backend, closed at cleanup.
func OpenStore(t testing.TB, backend string) dsync.Store {
	t.Helper()
	ctx := context.Background()
	var (
		st  dsync.Store
		err error
	)
	switch backend {
	case "sqlite":
		st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "dashsync.db"))
	case "postgres":
		st, err = postgres.Open(ctx, testpg.NewDatabase(t))
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Options configure a Server. Zero values: a fresh SQLite store, an in-process broker.
type Options struct {
	Backend string
	// Store is shared with other servers when set (several instances).
	Store dsync.Store
	// Broker carries messages; default an in-process broker of its own.
	Broker hub.Broker
	// Presence keeps who is on each layout; default an in-process one of its own.
	Presence hub.Presence
	// Hub adjusts the hub's configuration before it starts.
	Hub func(*hub.Config)
	// API adjusts the API's configuration.
	API func(*api.Config)
	// Retention is the op log retention (0: default).
	Retention int
	// Sources checks widget sources (default: static and push only) and Fetchers
	// fetch them (default: none).
	Sources  dsync.SourceChecker
	Fetchers map[string]widgetdata.Fetcher
	// Cache keeps widget data; default an in-process cache of its own. Instances of
	// one cluster share a Redis cache.
	Cache widgetdata.Cache
	// Data adjusts the widget data service's options (a fetch budget, say).
	Data func(*widgetdata.Options)
	// Leases make one fetch and one live refresher per widget across instances;
	// nil: this instance alone decides.
	Leases widgetdata.Leases
	// Limiter keeps the rate-limit budgets; default an in-process one of its own.
	// Budgets are Hub's and API's Limits (none by default).
	Limiter ratelimit.Limiter
	// IdentityProvider verifies tokens an identity provider signs, beside Secret's;
	// nil: none. The test owns its Keys.
	IdentityProvider *api.IdentityProvider
}

// Server is a running dashsync server.
type Server struct {
	URL     string // http://127.0.0.1:port
	WSURL   string // ws://127.0.0.1:port/api/ws
	Store   dsync.Store
	Service *dsync.Service
	Hub     *hub.Hub
	HTTP    *httptest.Server
}

// New starts a server, shut down at cleanup.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Backend == "" {
		o.Backend = "sqlite"
	}
	st := o.Store
	if st == nil {
		st = OpenStore(t, o.Backend)
	}
	if o.Broker == nil {
		o.Broker = memory.NewBroker()
	}
	if o.Presence == nil {
		o.Presence = memory.NewPresence(0, nil)
	}
	var cache widgetdata.Cache = o.Cache
	if cache == nil {
		mc := memory.NewCache(0, nil)
		t.Cleanup(func() { _ = mc.Close() })
		cache = mc
	}
	if o.Limiter == nil {
		o.Limiter = memory.NewLimiter(memory.LimiterOptions{})
	}
	a, err := app.New(context.Background(), app.Config{
		Store: st,
		// A store this server opened for itself is its own, as serve's embedded one is.
		SoleWriter: o.Store == nil && o.Backend == "sqlite",
		Shared: app.Shared{Broker: o.Broker, Presence: o.Presence, Slots: memory.NewConnSlots(0, nil),
			Limiter: o.Limiter, Cache: cache, Leases: o.Leases},
		Secret: Secret, IdentityProvider: o.IdentityProvider, Sources: o.Sources, Fetchers: o.Fetchers, Retention: o.Retention,
		Data: o.Data, Hub: o.Hub, API: o.API,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
		srv.Close()
		_ = o.Broker.Close()
	})
	h, svc := a.Hub, a.Service
	return &Server{URL: srv.URL, WSURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/ws",
		Store: st, Service: svc, Hub: h, HTTP: srv}
}

// Token returns a token for user valid for an hour.
func Token(t testing.TB, user string) string {
	t.Helper()
	tok, err := api.MintToken(Secret, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Dial opens a WebSocket for user, closed at cleanup.
func (s *Server) Dial(t testing.TB, user string, onMsg func(wsclient.Msg)) *wsclient.Client {
	t.Helper()
	return s.DialToken(t, Token(t, user), onMsg)
}

// DialToken opens a WebSocket with a bearer token (a link's, say), closed at cleanup.
func (s *Server) DialToken(t testing.TB, token string, onMsg func(wsclient.Msg)) *wsclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := wsclient.Dial(ctx, s.WSURL, wsclient.Options{Token: token, OnMessage: onMsg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// Redis returns a Redis broker and presence store on url (the test server, or a proxy
// to it) with keys and channels under prefix, on a client of their own, as one
// instance has. The client is closed at cleanup; the broker by the server using it.
func Redis(t testing.TB, url, prefix string) (hub.Broker, hub.Presence) {
	t.Helper()
	b, p, _ := RedisWithCheck(t, url, prefix)
	return b, p
}

// RedisWithCheck is Redis plus the readiness check cmd/dashsync wires for the same
// client (named "redis": a PING), to append to api.Config.Checks through Options.API.
func RedisWithCheck(t testing.TB, url, prefix string) (hub.Broker, hub.Presence, api.Check) {
	t.Helper()
	opt, err := testredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	sh := app.OnRedis(rdb, prefix, "test", slog.New(slog.DiscardHandler))
	return sh.Broker, sh.Presence, sh.Checks[0]
}

// REST sends one request as user (body, when not nil, as JSON) and returns the status
// and the body.
func (s *Server) REST(t testing.TB, user, method, path string, body any) (int, []byte) {
	t.Helper()
	return s.RESTToken(t, Token(t, user), method, path, body)
}

// RESTToken is REST with a bearer token (a link's, say).
func (s *Server) RESTToken(t testing.TB, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rq, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("Authorization", "Bearer "+token)
	rq.Header.Set("Content-Type", "application/json")
	res, err := s.HTTP.Client().Do(rq)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}
