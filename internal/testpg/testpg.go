package testpg

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the admin URL of the test server.
const EnvURL = "DASHSYNC_TEST_POSTGRES_URL"

// DefaultURL is the admin URL used when EnvURL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// connectTimeout bounds every connection to the admin database, so an absent server
// costs a test run at most this long, once.
const connectTimeout = 2 * time.Second

// reachable caches, per process, whether the server answered.
var reachable = sync.OnceValues(func() (string, error) {
	admin := adminURL()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := connect(ctx, admin)
	if err != nil {
		return admin, err
	}
	defer conn.Close(ctx)
	return admin, conn.Ping(ctx)
})

// NewDatabase creates an empty database with a unique name on the test server,
// drops it (closing any connection left to it) when t and its subtests end, and
// returns its URL. When the server cannot be reached it skips t, or fails it when the
// environment has CI=true. A server that is not on this machine always fails t.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if err := checkLoopback(adminURL()); err != nil {
		t.Fatalf("testpg: %s=%s: %v", EnvURL, redact(adminURL()), err)
	}
	admin, err := reachable()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("POSTGRES NOT REACHABLE at %s: %v (CI=true makes this a failure; set %s to a reachable server)",
				redact(admin), err, EnvURL)
		}
		t.Skipf("POSTGRES NOT REACHABLE at %s: %v: skipping Postgres suite; set CI=true to make this a failure",
			redact(admin), err)
	}

	name := "dashsync_test_" + strings.ToLower(rand.Text()[:16])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testpg: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testpg: drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(admin)
	if err != nil { // checked by reachable
		t.Fatalf("testpg: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func adminURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

func connect(ctx context.Context, admin string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = connectTimeout
	return pgx.ConnectConfig(ctx, cfg)
}

func adminExec(ctx context.Context, admin, sql string) error {
	conn, err := connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// checkLoopback refuses an admin URL whose host is not this machine.
func checkLoopback(admin string) error {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("%s must be a postgres:// URL", EnvURL)
	}
	for _, host := range strings.Split(u.Host, ",") {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
			continue
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("host %q is not a loopback address; tests only use a local server", host)
		}
	}
	if h := u.Query().Get("host"); h != "" && !strings.HasPrefix(h, "/") {
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("host %q is not a loopback address; tests only use a local server", h)
		}
	}
	return nil
}

// redact hides a password in u for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
