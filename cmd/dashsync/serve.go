package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/app"
	"github.com/dashsync/dashsync/jwks"
	"github.com/dashsync/dashsync/ratelimit"
	"github.com/dashsync/dashsync/store/postgres"
	"github.com/dashsync/dashsync/store/sqlite"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/web"
)

// sqliteFile is the embedded database's file name in the data dir.
const sqliteFile = "dashsync.db"

// devTokenTTL is how long the token printed by serve --dev lives.
const devTokenTTL = 24 * time.Hour

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// ensureDataDir creates the data dir, or makes it private if it exists: it holds the
// embedded database and the --dev secret (SPEC §12: 0700).
func ensureDataDir(dataDir string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return fmt.Errorf("make the data dir private: %w", err)
	}
	return nil
}

// sqlitePath returns the embedded database's path, creating the data dir and the
// database file, private to their owner (0700, 0600) also when they exist. The file
// is created here, not by SQLite, because migrate opens it without sqlite.Open (which
// does the same) and SQLite gives its -wal and -shm files the database file's mode.
func sqlitePath(dataDir string) (string, error) {
	if err := ensureDataDir(dataDir); err != nil {
		return "", err
	}
	path := filepath.Join(dataDir, sqliteFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("create the database file: %w", err)
	}
	_ = f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("make the database files private: %w", err)
		}
	}
	return path, nil
}

// openStore opens the configured store, applying pending migrations.
func openStore(ctx context.Context, c storeConfig) (dsync.Store, string, error) {
	if c.DatabaseURL != "" {
		s, err := postgres.Open(ctx, c.DatabaseURL, postgres.WithMaxConns(c.PoolSize))
		if err != nil {
			return nil, "", fmt.Errorf("open postgres: %w", err)
		}
		return s, "postgres", nil
	}
	path, err := sqlitePath(c.DataDir)
	if err != nil {
		return nil, "", err
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, "", err
	}
	return s, "sqlite " + path, nil
}

// serve builds the server from c (the secret, the store, the shared backends, the
// widget sources, and the app on them), runs it until ctx is cancelled, and then
// closes what it opened, the store last.
func serve(ctx context.Context, c serveConfig, stdout, stderr io.Writer) (err error) {
	log := newLogger(stderr, c.LogFormat, c.LogLevel)
	secret, err := loadSecret(c, log)
	if err != nil {
		return err
	}

	store, where, err := openStore(ctx, c.storeConfig)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
		if err != nil {
			log.Error("stopped", "err", err)
			return
		}
		log.Info("stopped")
	}()
	log.Info("store open", "store", where)

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	shared, err := openShared(ctx, c, log)
	if err != nil {
		return err
	}
	defer shared.Close()
	sources, dataMetrics, err := openSources(c.SourceAllow, registry, log)
	if err != nil {
		return err
	}
	defer sources.Close()
	idp, err := openIdentityProvider(c, log)
	if err != nil {
		return err
	}
	if idp != nil {
		defer idp.Keys.(*jwks.Set).Close()
	}
	a, err := app.New(ctx, app.Config{
		Store: store,
		// The embedded store belongs to this process alone: nothing else writes to it.
		SoleWriter: c.DatabaseURL == "",
		Shared:     shared,
		Secret:     secret,
		// The provider's tokens are checked beside the secret's (SPEC §13).
		IdentityProvider: idp,
		Sources:          sources,
		Fetchers:         sources.Fetchers(),
		DataMetrics:      dataMetrics,
		Limits: ratelimit.Limits{
			REST: ratelimit.PerSecond(c.RateREST), Messages: ratelimit.PerSecond(c.RateWS), Edits: ratelimit.PerSecond(c.RateEdits),
		},
		FetchRate:       fetchLimit(c.RateFetch),
		CommitLanes:     c.CommitLanes,
		CommitWindow:    c.CommitWindow,
		MaxConnsPerUser: c.MaxConnsPerUser,
		AllowedOrigins:  c.AllowedOrigins,
		ReadTimeout:     c.ReadTimeout,
		Web:             web.FS(),
		DevTokens:       c.Dev, // the demo page signs in as /?user=NAME
		Logger:          log,
		Registry:        registry,
	})
	if err != nil {
		return err
	}
	return runApp(ctx, c, a, secret, log, stdout)
}

// loadSecret returns the token secret: --jwt-secret, or with --dev the one kept in the
// data dir (made on first use); with --jwks-url alone, none (HS256 tokens are then
// refused).
func loadSecret(c serveConfig, log *slog.Logger) ([]byte, error) {
	if c.JWTSecret == "" && !c.Dev && c.JWKSURL != "" {
		log.Info("no JWT secret: only the identity provider's tokens are accepted")
		return nil, nil
	}
	secret, generated, err := jwtSecret(c.JWTSecret, c.Dev, c.DataDir)
	if errors.Is(err, errNoSecret) {
		return nil, errors.New("no JWT secret and no identity provider: set --jwt-secret (DASHSYNC_JWT_SECRET) or --jwks-url (DASHSYNC_JWKS_URL), or run with --dev, which generates a secret")
	}
	if err != nil {
		return nil, err
	}
	if generated {
		log.Info("generated a JWT secret for --dev", "file", filepath.Join(c.DataDir, devSecretFile))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		log.Warn("the JWT secret is shorter than 32 bytes: tokens are easier to forge")
	}
	return secret, nil
}

// runApp serves a on c.Addr, prints where (and with --dev a token), and when ctx is
// cancelled shuts it down: WebSockets first, then HTTP, waiting up to the shutdown
// timeout for requests in flight.
func runApp(ctx context.Context, c serveConfig, a *app.App, secret []byte, log *slog.Logger, stdout io.Writer) error {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: c.ReadTimeout, // and the API bounds the body by it too
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	url := "http://" + displayAddr(ln.Addr())
	log.Info("listening", "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "dashsync listening on %s\n", url)
	if c.Dev {
		tok, err := api.MintToken(secret, "dev", devTokenTTL)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dev token (user dev, valid %s): %s\n", devTokenTTL, tok)
		fmt.Fprintf(stdout, "try: curl -H 'Authorization: Bearer %s' %s/api/dashboard\n", tok, url)
		fmt.Fprintf(stdout, "demo dashboard: %s/?user=alice\n", url)
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", c.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownTimeout)
	defer cancel()
	// WebSockets first: no new upgrades, in-flight edits commit, then every
	// connection is closed with 1001 (its clients reconnect and resume elsewhere).
	if err := a.Shutdown(sctx); err != nil {
		log.Warn("websocket shutdown did not finish in time", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		<-served
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// displayAddr is the address to print for clients: an unspecified IP (listening on
// every interface) is shown as the loopback address.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// fetchLimit is the per-user fetch budget of --rate-fetch: rate a second, a burst of
// the rate rounded up (a second's worth); 0 or less is unlimited.
func fetchLimit(rate float64) ratelimit.Limit {
	if !(rate > 0) || math.IsInf(rate, 1) {
		return ratelimit.Limit{}
	}
	return ratelimit.Limit{Rate: rate, Burst: int(min(math.Ceil(rate), math.MaxInt32))}
}

// openIdentityProvider returns the identity provider of --jwks-url, its key set
// fetched in the background, or nil without
// --jwks-url. The caller closes its Keys (a *jwks.Set). The provider not answering is
// not fatal: /readyz reports "jwks" failed, and its tokens verify once it answers.
func openIdentityProvider(c serveConfig, log *slog.Logger) (*api.IdentityProvider, error) {
	if c.JWKSURL == "" {
		return nil, nil
	}
	set, err := jwks.New(c.JWKSURL, jwks.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--jwks-url %w", err)
	}
	if u, _ := url.Parse(c.JWKSURL); u.Scheme == "http" && !isLoopback(u.Hostname()) {
		log.Warn("the JWKS URL is plain http: anyone on the path could substitute the keys that tokens are checked with; use https", "jwks_url", c.JWKSURL)
	}
	log.Info("identity provider configured", "jwks_url", c.JWKSURL, "issuer", c.JWTIssuer, "audience", c.JWTAudience, "user_claim", c.JWTUserClaim)
	return &api.IdentityProvider{Keys: set, Issuer: c.JWTIssuer, Audience: c.JWTAudience, UserClaim: c.JWTUserClaim}, nil
}

// isLoopback reports whether host names this machine (localhost, or a loopback IP).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openShared returns the in-process backends, or with --redis-url the Redis ones on
// one client.
func openShared(ctx context.Context, c serveConfig, log *slog.Logger) (app.Shared, error) {
	if c.RedisURL == "" {
		return app.Embedded(c.CacheBytes), nil
	}
	return app.OpenRedis(ctx, c.RedisURL, c.RedisPrefix, instanceID(), log)
}

// instanceID names this process in the leases it takes.
func instanceID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), rand.Text()[:6])
}
