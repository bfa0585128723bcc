package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testlog"
	"github.com/dashsync/dashsync/internal/testpg"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// envOf returns a getenv over a fixed environment.
func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// server is a `dashsync serve` running through run() in the background.
type server struct {
	url, token string
	stderr     *testlog.Buffer
	cancel     context.CancelFunc
	done       chan error
}

var (
	listeningLine = regexp.MustCompile(`dashsync listening on (http://\S+)`)
	tokenLine     = regexp.MustCompile(`dev token \(user dev, valid [^)]*\): (\S+)`)
)

// startServe runs serve with args and waits for it to print its URL (and, with
// --dev, its token).
func startServe(t *testing.T, getenv func(string) string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{stderr: &testlog.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), pw, s.stderr, getenv)
		pw.Close()
		s.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not stop")
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	wantToken := strings.Contains(strings.Join(args, " "), "--dev")
	deadline := time.After(60 * time.Second)
	for s.url == "" || (wantToken && s.token == "") {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended before printing its URL; stderr:\n%s", s.stderr.String())
			}
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				s.url = m[1]
			}
			if m := tokenLine.FindStringSubmatch(line); m != nil {
				s.token = m[1]
			}
		case <-deadline:
			t.Fatalf("serve printed no URL in time; stderr:\n%s", s.stderr.String())
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	return s
}

// stop cancels the server's context and waits for run to return.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop within 20s")
	}
	return nil
}

func request(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestServe_DevEndToEndAndCleanShutdown(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet: serve creates it
	s := startServe(t, envOf(), "--dev", "--addr", "127.0.0.1:0", "--data-dir", dir)
	if !strings.HasPrefix(s.url, "http://127.0.0.1:") {
		t.Fatalf("got URL %q, want http://127.0.0.1:<port>", s.url)
	}

	if status, body := request(t, "GET", s.url+"/api/dashboard/layouts", "", ""); status != http.StatusUnauthorized {
		t.Errorf("without a token: got %d %s, want 401", status, body)
	}
	status, body := request(t, "POST", s.url+"/api/dashboard/layouts", s.token, `{"template":"starter"}`)
	if status != http.StatusCreated || !strings.Contains(body, `"name":"Starter"`) {
		t.Fatalf("create from a template with the printed token: got %d %s, want 201", status, body)
	}
	status, body = request(t, "GET", s.url+"/api/dashboard", s.token, "")
	if status != http.StatusOK || !strings.Contains(body, `"name":"Starter"`) {
		t.Errorf("GET /api/dashboard: got %d %s", status, body)
	}
	if status, _ := request(t, "GET", s.url+"/readyz", "", ""); status != http.StatusOK {
		t.Errorf("readyz: got %d, want 200", status)
	}

	fi, err := os.Stat(filepath.Join(dir, "jwt-secret"))
	if err != nil {
		t.Fatalf("the dev secret is not kept: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the dev secret has mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "dashsync.db")); err != nil {
		t.Errorf("no SQLite file in the data dir: %v", err)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("serve returned %v on shutdown, want nil; stderr:\n%s", err, s.stderr.String())
	}
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Errorf("the server still answers after shutdown")
	}
	logs := s.stderr.String()
	for _, want := range []string{"shutting down", "stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}

	// A second start reuses the kept secret and the data: the old token still works.
	s2 := startServe(t, envOf(), "--dev", "--addr", "127.0.0.1:0", "--data-dir", dir)
	status, body = request(t, "GET", s2.url+"/api/dashboard/layouts", s.token, "")
	if status != http.StatusOK || !strings.Contains(body, `"name":"Starter"`) {
		t.Errorf("after a restart, the first token and its layout: got %d %s", status, body)
	}
	if err := s2.stop(t); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}

func TestServe_EnvironmentConfiguresAndFlagsWin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := "a-secret-from-the-environment-0123456789"
	getenv := envOf("DASHSYNC_JWT_SECRET", secret, "DASHSYNC_DATA_DIR", dir, "DASHSYNC_ADDR", "127.0.0.1:1")
	s := startServe(t, getenv, "--addr", "127.0.0.1:0") // the flag wins over DASHSYNC_ADDR
	tok, err := api.MintToken([]byte(secret), "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := request(t, "GET", s.url+"/api/dashboard", tok, ""); status != http.StatusOK {
		t.Errorf("a token signed with DASHSYNC_JWT_SECRET: got %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "dashsync.db")); err != nil {
		t.Errorf("DASHSYNC_DATA_DIR was not used: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "jwt-secret")); err == nil {
		t.Errorf("a secret was generated although one was configured")
	}
	if err := s.stop(t); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestServe_RefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		args   []string
		env    []string
		wantIn string
	}{
		{"no secret without --dev", []string{"serve"}, nil, "no JWT secret"},
		{"JWKS URL not http or https", []string{"serve", "--jwks-url", "ftp://idp.example/certs"}, nil, "--jwks-url"},
		{"bad boolean in the environment", []string{"serve"}, []string{"DASHSYNC_DEV", "sure"}, "DASHSYNC_DEV"},
		{"negative rate", []string{"serve", "--rate-rest", "-1"}, nil, "rate-rest"},
		{"negative fetch rate", []string{"serve", "--rate-fetch", "-0.5"}, nil, "rate-fetch"},
		{"negative fetch rate in the environment", []string{"serve"}, []string{"DASHSYNC_RATE_FETCH", "-2"}, "DASHSYNC_RATE_FETCH"},
		{"negative read timeout", []string{"serve", "--read-timeout", "-1s"}, nil, "--read-timeout"},
		{"zero read timeout", []string{"serve", "--read-timeout", "0s"}, nil, "--read-timeout"},
		{"read timeout not a duration", []string{"serve"}, []string{"DASHSYNC_READ_TIMEOUT", "10"}, "DASHSYNC_READ_TIMEOUT"},
		{"negative connections per user", []string{"serve", "--max-conns-per-user", "-1"}, nil, "--max-conns-per-user"},
		{"negative cache size", []string{"serve", "--cache-bytes", "-1MiB"}, nil, "--cache-bytes"},
		{"zero cache size", []string{"serve", "--cache-bytes", "0"}, nil, "--cache-bytes"},
		{"cache size in an unknown unit", []string{"serve", "--cache-bytes", "256MX"}, nil, "cache-bytes"},
		{"cache size not a number", []string{"serve"}, []string{"DASHSYNC_CACHE_BYTES", "lots"}, "DASHSYNC_CACHE_BYTES"},
		{"cache size too large", []string{"serve", "--cache-bytes", "9000000TiB"}, nil, "cache-bytes"},
		{"unknown flag", []string{"serve", "--colour"}, nil, "colour"},
		{"unknown command", []string{"launch"}, nil, "unknown command"},
		{"no command", nil, nil, "no command"},
		{"migrate what", []string{"migrate", "sideways"}, nil, "up or status"},
		{"token without user", []string{"token", "--jwt-secret", "s"}, nil, "--user"},
		{"token without secret", []string{"token", "--user", "a"}, nil, "no JWT secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if len(args) > 0 && args[0] == "serve" {
				args = append(args, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0")
			}
			var out, errOut bytes.Buffer
			err := run(context.Background(), args, &out, &errOut, envOf(tc.env...))
			if err == nil || !strings.Contains(err.Error()+errOut.String(), tc.wantIn) {
				t.Errorf("got %v (stderr %q), want an error about %q", err, errOut.String(), tc.wantIn)
			}
		})
	}
}

func TestToken_PrintsOnlyATokenSignedWithTheSecret(t *testing.T) {
	t.Parallel()
	envSecret := "the-environment-secret-0123456789abcdef"
	flagSecret := "the-flag-secret-0123456789abcdef-wins"
	cases := []struct {
		name   string
		args   []string
		env    []string
		secret string
		ttl    time.Duration
	}{
		{"secret from the environment", []string{"token", "--user", "alice"}, []string{"DASHSYNC_JWT_SECRET", envSecret}, envSecret, 24 * time.Hour},
		{"flag wins over the environment", []string{"token", "--user", "alice", "--ttl", "1h", "--jwt-secret", flagSecret}, []string{"DASHSYNC_JWT_SECRET", envSecret}, flagSecret, time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			before := time.Now()
			if err := run(context.Background(), tc.args, &out, &errOut, envOf(tc.env...)); err != nil {
				t.Fatalf("token: %v (stderr %s)", err, errOut.String())
			}
			tok, ok := strings.CutSuffix(out.String(), "\n")
			if !ok || strings.ContainsAny(tok, " \n") {
				t.Fatalf("got stdout %q, want one token and a newline", out.String())
			}
			user, exp, err := api.VerifyToken([]byte(tc.secret), tok, time.Now())
			if err != nil {
				t.Fatalf("the token does not verify with the secret: %v", err)
			}
			if user != "alice" {
				t.Errorf("got sub %q, want alice", user)
			}
			if want := before.Add(tc.ttl); exp.Before(want.Add(-2*time.Second)) || exp.After(want.Add(2*time.Second)) {
				t.Errorf("got exp %v, want about %v", exp, want)
			}
		})
	}
}

func TestToken_DevSignsWithTheKeptSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"token", "--dev", "--user", "bob", "--data-dir", dir}, &out, &errOut, envOf()); err != nil {
		t.Fatalf("token --dev: %v", err)
	}
	secret, err := os.ReadFile(filepath.Join(dir, "jwt-secret"))
	if err != nil {
		t.Fatalf("no kept secret: %v", err)
	}
	if _, _, err := api.VerifyToken(bytes.TrimSpace(secret), strings.TrimSpace(out.String()), time.Now()); err != nil {
		t.Errorf("the token does not verify with the kept secret: %v", err)
	}
	// The server started on that data dir accepts it.
	s := startServe(t, envOf(), "--dev", "--addr", "127.0.0.1:0", "--data-dir", dir)
	if status, body := request(t, "GET", s.url+"/api/dashboard", strings.TrimSpace(out.String()), ""); status != http.StatusOK {
		t.Errorf("serve --dev refuses the token of token --dev: %d %s", status, body)
	}
}

func TestMigrate_StatusOnSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	migrate := func(action string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"migrate", action, "--data-dir", dir}, &out, &errOut, envOf()); err != nil {
			t.Fatalf("migrate %s: %v (stderr %s)", action, err, errOut.String())
		}
		return out.String()
	}
	before := migrate("status")
	if !strings.Contains(before, "00001_init.sql") || !strings.Contains(before, "pending") {
		t.Errorf("status of a new database: got\n%s\nwant 00001_init.sql pending", before)
	}
	if up := migrate("up"); !strings.Contains(up, "applied migration 1") {
		t.Errorf("up: got %q", up)
	}
	if again := migrate("up"); !strings.Contains(again, "up to date") {
		t.Errorf("second up: got %q", again)
	}
	after := migrate("status")
	if !strings.Contains(after, "applied") || strings.Contains(after, "pending") {
		t.Errorf("status after up: got\n%s\nwant every migration applied", after)
	}
	// The environment names the data dir too.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "status"}, &out, io.Discard, envOf("DASHSYNC_DATA_DIR", dir)); err != nil {
		t.Fatal(err)
	}
	if out.String() != after {
		t.Errorf("status via DASHSYNC_DATA_DIR: got\n%s\nwant\n%s", out.String(), after)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, io.Discard, envOf()); err != nil || !strings.Contains(out.String(), "serve") {
		t.Errorf("help: %v %q", err, out.String())
	}
	err := run(context.Background(), []string{"serve", "-h"}, io.Discard, &out, envOf())
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "DASHSYNC_ADDR") {
		t.Errorf("serve -h: got %v, want the flags with their variables", err)
	}
}

func TestServe_PostgresFromDatabaseURL(t *testing.T) {
	t.Parallel()
	url := testpg.NewDatabase(t)
	secret := "postgres-test-secret-0123456789abcdef"
	getenv := envOf("DASHSYNC_DATABASE_URL", url, "DASHSYNC_JWT_SECRET", secret)
	dir := t.TempDir()

	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "up", "--data-dir", dir}, &out, io.Discard, getenv); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "status", "--data-dir", dir}, &out, io.Discard, getenv); err != nil {
		t.Fatalf("migrate status: %v", err)
	}
	if !strings.Contains(out.String(), "postgres") || !strings.Contains(out.String(), "applied") || strings.Contains(out.String(), "pending") {
		t.Errorf("migrate status on postgres: got\n%s", out.String())
	}

	s := startServe(t, getenv, "--addr", "127.0.0.1:0", "--data-dir", dir)
	tok, err := api.MintToken([]byte(secret), "carol", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := request(t, "POST", s.url+"/api/dashboard/layouts", tok, `{"name":"On Postgres"}`); status != http.StatusCreated {
		t.Fatalf("create on postgres: got %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "dashsync.db")); err == nil {
		t.Errorf("a SQLite file was created although a database URL was given")
	}
	if err := s.stop(t); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
