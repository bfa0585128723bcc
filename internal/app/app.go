// Package app builds a dashsync server from its parts: the domain service, the widget
// data service, the hub and the API, wired to each other and to the store and the
// shared backends the caller opened (Embedded, OpenRedis and OnRedis in shared.go
// make them). It is the one wiring: cmd/dashsync builds the server users run with it,
// and internal/testenv builds the servers tests run.
//
// app reads no flags and no environment (cmd/dashsync does) and opens no store (the
// caller owns it and closes it after Shutdown). It imports every dashsync package it
// wires; nothing but cmd/dashsync and test support imports app.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/store/memory"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// Shared are the backends the instances of one cluster share: in-process in embedded
// mode (OpenShared without a Redis URL), on one Redis client with Redis.
type Shared struct {
	Broker   hub.Broker
	Presence hub.Presence
	// Slots count each user's WebSocket connections, across instances with Redis.
	Slots hub.ConnSlots
	// Limiter keeps the per-user rate-limit budgets (REST requests, edits, fetches).
	Limiter ratelimit.Limiter
	// Cache keeps widget data: in-process, or Redis keys every instance sees.
	Cache widgetdata.Cache
	// Leases make one fetch per widget per cluster and one live refresher per widget;
	// nil where there is one instance.
	Leases widgetdata.Leases
	// Checks are their readiness checks (Redis answers PING).
	Checks []api.Check
	// Close releases them; nil: nothing to release. App.Shutdown does not call it.
	Close func()
}

// Config is what a server is built from. Store, Shared, and Secret or
// IdentityProvider are required.
type Config struct {
	// Store is the store the service commits to; the caller closes it.
	Store dsync.Store
	// SoleWriter says this process alone writes Store (it opened the embedded
	// database): widget definitions are then kept in memory. Never with a shared store.
	SoleWriter bool
	Shared     Shared
	// Secret signs and verifies HS256 tokens (dashsync token, --dev); DevTokens needs
	// it. nil: HS256 tokens are refused.
	Secret []byte
	// IdentityProvider verifies the tokens an identity provider signs (SPEC §13);
	// nil: none. When its Keys have Ready(ctx) error (a *jwks.Set does), that is the
	// readiness check "jwks". The caller owns the Keys and closes them after Shutdown.
	IdentityProvider *api.IdentityProvider

	// Sources checks widget sources; default static and push only. Fetchers fetch
	// them (a source.Registry's); default none.
	Sources  dsync.SourceChecker
	Fetchers map[string]widgetdata.Fetcher
	// DataMetrics count widget data reads and refreshes; nil: none.
	DataMetrics *widgetdata.Metrics
	// Retention is how many versions each op log keeps; default dsync.DefaultRetention.
	Retention int
	// CommitLanes and CommitWindow shape the group commit of layout edits; defaults
	// as dsync.Options says.
	CommitLanes  int
	CommitWindow time.Duration

	// Limits are the per-user budgets (SPEC §9); a zero Limit is unlimited.
	Limits ratelimit.Limits
	// FetchRate is the per-user fetch budget (SPEC §12); zero: unlimited.
	FetchRate ratelimit.Limit
	// MaxConnsPerUser bounds each user's WebSocket connections; 0: unlimited.
	MaxConnsPerUser int
	// AllowedOrigins, ReadTimeout, Web and DevTokens are api.Config's.
	AllowedOrigins []string
	ReadTimeout    time.Duration
	Web            fs.FS
	DevTokens      bool

	// Logger; default one that discards. Registry receives every metric and is what
	// /metrics serves; default a registry of the server's own.
	Logger   *slog.Logger
	Registry *prometheus.Registry

	// Data, Hub and API adjust the options of the data service, the hub and the API
	// after they are set from the fields above: for tests (a short sweep interval, a
	// failing limiter) and embedders. nil: no change.
	Data func(*widgetdata.Options)
	Hub  func(*hub.Config)
	API  func(*api.Config)
}

// App is a built server: its parts, and the handler that serves HTTP and WebSocket.
type App struct {
	Service *dsync.Service
	Data    *widgetdata.Service
	Hub     *hub.Hub
	Handler http.Handler
}

// New builds a server from cfg and starts its hub (broker and sweeper) and nothing
// else: the caller serves Handler and calls Shutdown.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Store == nil || cfg.Shared.Broker == nil || cfg.Shared.Presence == nil {
		return nil, errors.New("app: Store, Shared.Broker and Shared.Presence are required")
	}
	if cfg.DevTokens && len(cfg.Secret) == 0 {
		return nil, errors.New("app: DevTokens needs a Secret")
	}
	// One verifier for REST and for the hub's `auth` refreshes, sharing its cache.
	tokens, err := api.NewVerifier(cfg.Secret, cfg.IdentityProvider)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	checks := slices.Clone(cfg.Shared.Checks)
	if idp := cfg.IdentityProvider; idp != nil {
		if r, ok := idp.Keys.(interface{ Ready(context.Context) error }); ok {
			checks = append(checks, api.Check{Name: "jwks", Check: r.Ready})
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	// The domain and the data service announce to the hub, which is built from them:
	// the announcer is made first and bound to the hub when it starts.
	announcer := hub.NewAnnouncer()
	groupEdits := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dashsync_commit_group_edits",
		Help: "Layout edits per group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 9)})
	groupSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dashsync_commit_group_seconds",
		Help: "Time of one group commit's transaction.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12)})
	for _, c := range []prometheus.Collector{groupEdits, groupSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	svc := dsync.NewService(cfg.Store, dsync.Options{Logger: log, Sources: cfg.Sources, Retention: cfg.Retention,
		SoleWriter: cfg.SoleWriter, Announcer: announcer, CommitLanes: cfg.CommitLanes, GroupWindow: cfg.CommitWindow,
		OnGroup: func(n int, took time.Duration) {
			groupEdits.Observe(float64(n))
			groupSeconds.Observe(took.Seconds())
		}})
	dopts := widgetdata.Options{Logger: log, Announcer: announcer, Widgets: svc, Fetchers: cfg.Fetchers,
		Metrics: cfg.DataMetrics, Leases: cfg.Shared.Leases, FetchLimiter: cfg.Shared.Limiter, FetchRate: cfg.FetchRate}
	if cfg.Data != nil {
		cfg.Data(&dopts)
	}
	data := widgetdata.New(cfg.Shared.Cache, dopts)
	hcfg := hub.Config{
		Domain: svc, Announcer: announcer, Data: data, Broker: cfg.Shared.Broker, Presence: cfg.Shared.Presence,
		Logger: log, Registry: reg, MaxConnsPerUser: cfg.MaxConnsPerUser, Slots: cfg.Shared.Slots,
		Verify: func(ctx context.Context, tok string) (hub.Identity, error) {
			user, exp, err := tokens.Verify(ctx, tok, time.Now())
			return hub.Identity{User: user, Exp: exp}, err
		},
		// A connection lives on this instance: its message budget needs no Redis.
		Limiter: cfg.Shared.Limiter, MessageLimiter: memory.NewLimiter(memory.LimiterOptions{}), Limits: cfg.Limits,
	}
	if cfg.Hub != nil {
		cfg.Hub(&hcfg)
	}
	h, err := hub.New(ctx, hcfg)
	if err != nil {
		data.Close()
		return nil, err
	}
	acfg := api.Config{
		Domain:         svc,
		Data:           data,
		Sockets:        h,
		JWTSecret:      cfg.Secret,
		Tokens:         tokens,
		Logger:         log,
		Registry:       reg,
		Checks:         checks,
		AllowedOrigins: cfg.AllowedOrigins,
		ReadTimeout:    cfg.ReadTimeout,
		Limiter:        cfg.Shared.Limiter,
		Limits:         cfg.Limits,
		Web:            cfg.Web,
		DevTokens:      cfg.DevTokens,
	}
	if cfg.API != nil {
		cfg.API(&acfg)
	}
	return &App{Service: svc, Data: data, Hub: h, Handler: api.New(acfg)}, nil
}

// Shutdown stops the hub (no new upgrades, in-flight edits commit, every connection
// closed with 1001) and then the live refreshers. It returns ctx's error when the
// connections did not close in time. Calling it twice is safe.
func (a *App) Shutdown(ctx context.Context) error {
	err := a.Hub.Shutdown(ctx)
	a.Data.Close()
	return err
}
