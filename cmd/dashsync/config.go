package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/jwks"
	"github.com/dashsync/dashsync/source"
	dsync "github.com/dashsync/dashsync/sync"
)

// storeConfig says where the data lives: Postgres at DatabaseURL, else a SQLite file
// in DataDir.
type storeConfig struct {
	DatabaseURL string
	DataDir     string
	// PoolSize bounds the Postgres connections.
	PoolSize int
	poolSize *int // the flag's value, read after parsing
}

// parsed takes the values of the flags read after parsing.
func (c *storeConfig) parsed() error {
	c.PoolSize = *c.poolSize
	if c.PoolSize < 1 {
		return fmt.Errorf("--db-pool-size %d: want an integer ≥ 1", c.PoolSize)
	}
	return nil
}

// serveConfig is everything `dashsync serve` reads from its flags and environment.
type serveConfig struct {
	storeConfig
	Addr        string
	RedisURL    string
	RedisPrefix string
	JWTSecret   string
	// JWKSURL is an identity provider's key set (SPEC §13); empty: none. JWTIssuer
	// and JWTAudience (checked when set) and JWTUserClaim apply to its tokens.
	JWKSURL        string
	JWTIssuer      string
	JWTAudience    string
	JWTUserClaim   string
	AllowedOrigins []string
	Dev            bool
	// Rates are per second (burst twice that); 0 is unlimited.
	RateREST, RateWS, RateEdits float64
	MaxConnsPerUser             int
	LogFormat                   string // "json" or "text"
	LogLevel                    slog.Level
	ShutdownTimeout             time.Duration
	// ReadTimeout is how long a request's headers, and then its body, may take to
	// arrive (SPEC §12).
	ReadTimeout time.Duration
	// CacheBytes bounds the in-process widget-data cache (without Redis).
	CacheBytes int64
	// RateFetch is widget source fetches per second per user (burst: the rate,
	// rounded up); 0 is unlimited.
	RateFetch float64

	// SourceAllow is the SSRF policy of http sources, with the --source-allow list.
	SourceAllow *source.Policy

	// CommitLanes and CommitWindow shape the group commit of layout edits
	// (dsync.Options).
	CommitLanes  int
	CommitWindow time.Duration
}

// addStoreFlags registers the flags every command that opens the store shares.
func addStoreFlags(fs *flagSet) *storeConfig {
	c := &storeConfig{}
	fs.StringVar(&c.DatabaseURL, "database-url", env(fs, "DASHSYNC_DATABASE_URL", ""),
		usage("Postgres URL; empty: an embedded SQLite file in --data-dir", "DASHSYNC_DATABASE_URL"))
	fs.StringVar(&c.DataDir, "data-dir", env(fs, "DASHSYNC_DATA_DIR", "./data"),
		usage("directory of the embedded database and the --dev secret", "DASHSYNC_DATA_DIR"))
	poolSize := fs.int("db-pool-size", "DASHSYNC_DB_POOL_SIZE", 10, "most connections to Postgres at once")
	c.poolSize = poolSize
	return c
}

func env(fs *flagSet, name, def string) string {
	if v := fs.getenv(name); v != "" {
		return v
	}
	return def
}

func parseServe(args []string, stderr io.Writer, getenv func(string) string) (serveConfig, error) {
	fs := newFlagSet("serve", stderr, getenv)
	sc := addStoreFlags(fs)
	addr := fs.string("addr", "DASHSYNC_ADDR", "127.0.0.1:8080", "address to listen on")
	redisURL := fs.string("redis-url", "DASHSYNC_REDIS_URL", "", "Redis URL; empty: in-process cache and broker")
	redisPrefix := fs.string("redis-prefix", "DASHSYNC_REDIS_PREFIX", "dashsync:", "prefix of every Redis key and channel (instances of one cluster share it)")
	secret := fs.string("jwt-secret", "DASHSYNC_JWT_SECRET", "", "HS256 secret tokens are signed with; required unless --jwks-url or --dev")
	jwksURL := fs.string("jwks-url", "DASHSYNC_JWKS_URL", "", "an identity provider's JWKS URL (http or https): RS256, ES256 and EdDSA tokens it signs are accepted; empty: none")
	issuer := fs.string("jwt-issuer", "DASHSYNC_JWT_ISSUER", "", "the iss that tokens of --jwks-url must carry; empty: not checked")
	audience := fs.string("jwt-audience", "DASHSYNC_JWT_AUDIENCE", "", "the aud that tokens of --jwks-url must carry; empty: not checked")
	userClaim := fs.string("jwt-user-claim", "DASHSYNC_JWT_USER_CLAIM", "sub", "the claim of tokens of --jwks-url that holds the user id")
	origins := fs.string("allowed-origins", "DASHSYNC_ALLOWED_ORIGINS", "", "comma-separated origins allowed to open a WebSocket; empty: same host only")
	dev := fs.bool("dev", "DASHSYNC_DEV", false, "development mode: generate and keep a secret in --data-dir, print a token")
	rateREST := fs.float("rate-rest", "DASHSYNC_RATE_REST", 100, "REST requests per second per user (burst twice that; 0 unlimited)")
	rateWS := fs.float("rate-ws", "DASHSYNC_RATE_WS", 100, "WebSocket messages per second per connection (0 unlimited)")
	rateEdits := fs.float("rate-edits", "DASHSYNC_RATE_EDITS", 100, "edits per second per user (0 unlimited)")
	maxConns := fs.int("max-conns-per-user", "DASHSYNC_MAX_CONNS_PER_USER", 50, "WebSocket connections per user, across instances with Redis (0 unlimited)")
	cacheBytes := fs.bytes("cache-bytes", "DASHSYNC_CACHE_BYTES", 256<<20, "the `size` of widget data the in-process cache holds, least recently used evicted first (268435456, 256MiB, 1GiB; unused with --redis-url)")
	rateFetch := fs.float("rate-fetch", "DASHSYNC_RATE_FETCH", 20, "widget source fetches per second per user (0 unlimited)")
	readTimeout := fs.duration("read-timeout", "DASHSYNC_READ_TIMEOUT", 10*time.Second, "how long a request's headers, then its body, may take to arrive (past it: 408 timeout)")
	sourceAllow := fs.string("source-allow", "DASHSYNC_SOURCE_ALLOW", "", "comma-separated CIDRs, addresses or host:port that http sources may reach although private, loopback, link-local or metadata; empty: none")
	logFormat := fs.string("log-format", "DASHSYNC_LOG_FORMAT", "", "log format, json or text; default text with --dev, else json")
	logLevel := fs.string("log-level", "DASHSYNC_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	shutdown := fs.duration("shutdown-timeout", "DASHSYNC_SHUTDOWN_TIMEOUT", 15*time.Second, "how long shutdown waits for requests in flight")
	lanes := fs.int("commit-lanes", "DASHSYNC_COMMIT_LANES", dsync.DefaultCommitLanes, "how many groups of layout edits commit at once")
	window := fs.duration("commit-window", "DASHSYNC_COMMIT_WINDOW", 0, "how long a group of layout edits waits for more before it commits; 0: it takes the edits that queued meanwhile")
	if err := fs.parse(args); err != nil {
		return serveConfig{}, err
	}
	if err := sc.parsed(); err != nil {
		return serveConfig{}, err
	}
	c := serveConfig{
		storeConfig: *sc, Addr: *addr, RedisURL: *redisURL, RedisPrefix: *redisPrefix, JWTSecret: *secret, Dev: *dev,
		JWKSURL: strings.TrimSpace(*jwksURL), JWTIssuer: *issuer, JWTAudience: *audience, JWTUserClaim: strings.TrimSpace(*userClaim),
		RateREST: *rateREST, RateWS: *rateWS, RateEdits: *rateEdits, MaxConnsPerUser: *maxConns, ReadTimeout: *readTimeout,
		CacheBytes: int64(*cacheBytes), RateFetch: *rateFetch,
		LogFormat: *logFormat, ShutdownTimeout: *shutdown, CommitLanes: *lanes, CommitWindow: *window,
	}
	for o := range strings.SplitSeq(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
		if c.Dev {
			c.LogFormat = "text"
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return serveConfig{}, fmt.Errorf("--log-format %q: want json or text", c.LogFormat)
	}
	if err := c.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return serveConfig{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	for name, r := range map[string]float64{"rate-rest": c.RateREST, "rate-ws": c.RateWS, "rate-edits": c.RateEdits, "rate-fetch": c.RateFetch} {
		if r < 0 {
			return serveConfig{}, fmt.Errorf("--%s %v: want a number ≥ 0", name, r)
		}
	}
	if err := c.checkIdentityProvider(); err != nil {
		return serveConfig{}, err
	}
	allow, err := source.ParseAllowList(*sourceAllow)
	if err != nil {
		return serveConfig{}, fmt.Errorf("--source-allow: %w", err)
	}
	c.SourceAllow = allow
	if c.MaxConnsPerUser < 0 {
		return serveConfig{}, fmt.Errorf("--max-conns-per-user %d: want an integer ≥ 0", c.MaxConnsPerUser)
	}
	if c.CacheBytes <= 0 {
		return serveConfig{}, fmt.Errorf("--cache-bytes %d: want a size above 0, such as 256MiB", c.CacheBytes)
	}
	if c.ReadTimeout <= 0 {
		return serveConfig{}, fmt.Errorf("--read-timeout %v: want a positive duration", c.ReadTimeout)
	}
	if c.CommitLanes < 1 || c.CommitLanes > 64 {
		return serveConfig{}, fmt.Errorf("--commit-lanes %d: want an integer from 1 to 64", c.CommitLanes)
	}
	if c.CommitWindow < 0 || c.CommitWindow > time.Second {
		return serveConfig{}, fmt.Errorf("--commit-window %v: want a duration from 0 to 1s", c.CommitWindow)
	}
	if c.ShutdownTimeout <= 0 {
		return serveConfig{}, fmt.Errorf("--shutdown-timeout %v: want a positive duration", c.ShutdownTimeout)
	}
	return c, nil
}

// checkIdentityProvider checks the --jwks-url settings: a URL a key set can be
// fetched from, and the settings of its tokens only beside it (they would silently
// apply to nothing).
func (c serveConfig) checkIdentityProvider() error {
	if c.JWTUserClaim == "" {
		return errors.New("--jwt-user-claim is empty: want the name of the claim holding the user id, such as sub")
	}
	if c.JWKSURL == "" {
		for _, f := range []struct{ name, value string }{{"jwt-issuer", c.JWTIssuer}, {"jwt-audience", c.JWTAudience}} {
			if f.value != "" {
				return fmt.Errorf("--%s applies to the tokens of --jwks-url, which is not set", f.name)
			}
		}
		if c.JWTUserClaim != api.DefaultUserClaim {
			return errors.New("--jwt-user-claim applies to the tokens of --jwks-url, which is not set")
		}
		return nil
	}
	if err := jwks.CheckURL(c.JWKSURL); err != nil {
		return fmt.Errorf("--jwks-url %w", err)
	}
	return nil
}

// migrateConfig is `dashsync migrate [up|status]`.
type migrateConfig struct {
	storeConfig
	Action string // "up" or "status"
}

func parseMigrate(args []string, stderr io.Writer, getenv func(string) string) (migrateConfig, error) {
	action := "up"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		action, args = args[0], args[1:]
	}
	if action != "up" && action != "status" {
		return migrateConfig{}, fmt.Errorf("migrate %q: want up or status", action)
	}
	fs := newFlagSet("migrate "+action, stderr, getenv)
	sc := addStoreFlags(fs)
	if err := fs.parse(args); err != nil {
		return migrateConfig{}, err
	}
	if err := sc.parsed(); err != nil {
		return migrateConfig{}, err
	}
	return migrateConfig{storeConfig: *sc, Action: action}, nil
}

// tokenConfig is `dashsync token`.
type tokenConfig struct {
	User      string
	TTL       time.Duration
	JWTSecret string
	Dev       bool
	DataDir   string
}

func parseToken(args []string, stderr io.Writer, getenv func(string) string) (tokenConfig, error) {
	fs := newFlagSet("token", stderr, getenv)
	user := fs.String("user", "", "the user id (the token's sub); required")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	secret := fs.string("jwt-secret", "DASHSYNC_JWT_SECRET", "", "HS256 secret to sign with")
	dev := fs.bool("dev", "DASHSYNC_DEV", false, "sign with the secret `serve --dev` keeps in --data-dir")
	dataDir := fs.string("data-dir", "DASHSYNC_DATA_DIR", "./data", "directory of the --dev secret")
	if err := fs.parse(args); err != nil {
		return tokenConfig{}, err
	}
	if *user == "" {
		return tokenConfig{}, fmt.Errorf("token: --user is required")
	}
	if *ttl <= 0 {
		return tokenConfig{}, fmt.Errorf("token: --ttl %v: want a positive duration", *ttl)
	}
	return tokenConfig{User: *user, TTL: *ttl, JWTSecret: *secret, Dev: *dev, DataDir: *dataDir}, nil
}
