package api

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/ratelimit"
	dsync "github.com/dashsync/dashsync/sync"
)

// Check is a named readiness check (GET /readyz): Redis reachable, say. It must
// return within ctx's deadline; a non-nil error makes the server not ready.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config holds what a Server needs. Service, Data and JWTSecret are required; the
// other fields have the documented defaults.
type Config struct {
	// Domain runs the domain operations. Required. Its Ping is the "store" readiness
	// check.
	Domain Domain
	// Data answers widget data reads, pushes and clears. Required.
	Data Data
	// JWTSecret verifies HS256 tokens when Tokens is nil, and signs the tokens of
	// DevTokens. JWTSecret or Tokens is required.
	JWTSecret []byte
	// Tokens verifies bearer tokens (HS256 with a secret, an identity provider's);
	// nil: a Verifier of JWTSecret's HS256 tokens only.
	Tokens *Verifier
	// Logger receives one line per request and every internal error in full; nil
	// discards.
	Logger *slog.Logger
	// Registry receives the HTTP metrics and is what /metrics serves; nil: a registry
	// of the server's own.
	Registry *prometheus.Registry
	// Checks are readiness checks besides the store (Redis, say), reported by name.
	Checks []Check
	// ReadyTimeout bounds each readiness check; default 2s.
	ReadyTimeout time.Duration
	// MaxBodyBytes bounds request bodies; default DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// ReadTimeout is how long a request body may take to arrive, from the end of its
	// headers; past it the answer is 408 timeout and the connection is closed.
	// Default DefaultReadTimeout (10 s).
	ReadTimeout time.Duration
	// Now is the clock tokens are checked against; default time.Now.
	Now func() time.Time
	// Sockets serves GET /api/ws; nil: the route answers 503.
	Sockets Sockets
	// AllowedOrigins are the origins (scheme://host[:port], or "*") allowed to open a
	// WebSocket besides the server's own host; requests without Origin are allowed.
	AllowedOrigins []string
	// Limiter keeps the rate limits' budgets (SPEC §9); nil: no rate limits. When it
	// fails, requests are allowed (fail open), and the failure logged and counted.
	Limiter ratelimit.Limiter
	// Limits are the budgets spent here: REST per user (every /api request, the
	// WebSocket upgrade included) and Edits per user (the layout writes listed in
	// docs/rest-api.md). Messages is the hub's. A zero Limit is unlimited.
	Limits ratelimit.Limits
	// Web holds the demo page's files (web.FS()): index.html is served at /, the other
	// top-level files at /web/<name>. nil: neither is served.
	Web fs.FS
	// DevTokens serves GET /dev/token?user=NAME: a token for any user, signed with
	// JWTSecret (then required), for the demo page. Only for serve --dev: it lets
	// anyone act as anyone.
	DevTokens bool
	// DevTokenTTL is how long those tokens live; default DefaultDevTokenTTL (1h).
	DevTokenTTL time.Duration
}

// Server is dashsync's HTTP API: the REST routes of SPEC §4, health, readiness and
// metrics. It implements http.Handler and is safe for concurrent use.
type Server struct {
	svc       Domain
	data      Data
	secret    []byte
	log       *slog.Logger
	registry  *prometheus.Registry
	checks    []Check
	readyWait time.Duration
	maxBody   int64
	bodyWait  time.Duration
	now       func() time.Time
	validator *validator.Validate
	tokens    *Verifier
	sockets   Sockets
	origins   []string
	limiter   ratelimit.Limiter
	limits    ratelimit.Limits
	assets    map[string]asset // the demo page's files by name; nil: not served
	devTokens bool
	devTTL    time.Duration
	metrics   *metrics
	engine    *gin.Engine
}

// New returns a Server with every route registered. It panics when a required
// dependency is missing: that is a wiring mistake, not a runtime condition.
func New(cfg Config) *Server {
	switch {
	case cfg.Domain == nil:
		panic("api.New: Config.Domain is required")
	case cfg.Data == nil:
		panic("api.New: Config.Data is required")
	case len(cfg.JWTSecret) == 0 && cfg.Tokens == nil:
		panic("api.New: Config.JWTSecret or Config.Tokens is required")
	case len(cfg.JWTSecret) == 0 && cfg.DevTokens:
		panic("api.New: Config.DevTokens needs Config.JWTSecret")
	}
	tokens := cfg.Tokens
	if tokens == nil {
		tokens, _ = NewVerifier(cfg.JWTSecret, nil) // fails only without a secret
	}
	s := &Server{
		svc:       cfg.Domain,
		data:      cfg.Data,
		secret:    cfg.JWTSecret,
		log:       cfg.Logger,
		registry:  cfg.Registry,
		checks:    cfg.Checks,
		readyWait: cfg.ReadyTimeout,
		maxBody:   cfg.MaxBodyBytes,
		bodyWait:  cfg.ReadTimeout,
		now:       cfg.Now,
		validator: newValidator(),
		tokens:    tokens,
		sockets:   cfg.Sockets,
		origins:   cfg.AllowedOrigins,
		limiter:   cfg.Limiter,
		limits:    cfg.Limits,
		devTokens: cfg.DevTokens,
		devTTL:    cfg.DevTokenTTL,
	}
	if cfg.Web != nil {
		assets, err := loadAssets(cfg.Web)
		if err != nil {
			panic("api.New: Config.Web: " + err.Error())
		}
		s.assets = assets
	}
	if s.devTTL <= 0 {
		s.devTTL = DefaultDevTokenTTL
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.readyWait <= 0 {
		s.readyWait = 2 * time.Second
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.bodyWait <= 0 {
		s.bodyWait = DefaultReadTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.metrics = newMetrics(s.registry)
	s.engine = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// routes registers every route, per resource. Static segments (/widgets/batch) are
// registered beside parameters (/widgets/:id); gin's tree prefers the static one.
func (s *Server) routes() *gin.Engine {
	r := gin.New()
	r.Use(s.requestID, s.observe, s.recoverPanic, s.bodyDeadline)
	r.NoRoute(func(c *gin.Context) {
		s.writeError(c, dsync.Errorf(dsync.CodeNotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})

	r.GET("/healthz", s.handleHealth)
	r.GET("/readyz", s.handleReady)
	r.GET("/metrics", s.handleMetrics())

	api := r.Group("/api", s.authenticate, s.limitREST, s.saneParams)
	s.routeDashboard(api)
	s.routeWidgets(api.Group("/dashboard/widgets"))
	s.routeLayouts(api.Group("/dashboard/layouts"))
	api.GET("/dashboard/templates", s.handleTemplateList)
	api.GET("/ws", s.handleWebSocket)
	s.routeWeb(r)
	return r
}

func (s *Server) routeDashboard(g *gin.RouterGroup) {
	g.GET("/dashboard", s.handleDashboardGet)
	g.POST("/dashboard", s.handleDashboardSave) // an edit when it carries a layout
	g.PUT("/dashboard", s.handleDashboardUpdate)
}

func (s *Server) routeWidgets(g *gin.RouterGroup) {
	g.GET("", s.handleWidgetList)
	g.POST("", s.handleWidgetCreate)
	g.GET("/batch", s.handleWidgetBatchGet)
	g.POST("/batch", s.handleWidgetBatchPost)
	g.GET("/:id", s.handleWidgetGet)
	g.POST("/:id", s.handleWidgetUpdate)
	g.DELETE("/:id", s.handleWidgetDelete)
	g.PUT("/:id/data", s.handleWidgetDataPut)
}

func (s *Server) routeLayouts(g *gin.RouterGroup) {
	g.GET("", s.handleLayoutList)
	g.POST("", s.handleLayoutCreate)
	g.PUT("", s.handleLayoutBulkUpdate) // an edit per entry
	g.GET("/:id", s.handleLayoutGet)
	g.PUT("/:id", s.limitEdit, s.handleLayoutUpdate)
	g.PATCH("/:id", s.limitEdit, s.handleLayoutPatch)
	g.DELETE("/:id", s.handleLayoutDelete)
	g.POST("/:id", s.handleLayoutClone)
	g.POST("/:id/default", s.handleLayoutSetDefault)
	g.GET("/:id/versions", s.handleLayoutHistory)
	g.POST("/:id/versions/:v/restore", s.limitEdit, s.handleLayoutRestore)
	s.routeSharing(g)
}
