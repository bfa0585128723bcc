package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testidp"
)

func TestParseServe_IdentityProviderFlags(t *testing.T) {
	t.Parallel()
	type idp struct{ url, issuer, audience, claim string }
	cases := []struct {
		name string
		args []string
		env  []string
		want idp
	}{
		{"defaults: none, user in sub", nil, nil, idp{"", "", "", "sub"}},
		{"flags", []string{"--jwks-url", "https://idp.example/certs", "--jwt-issuer", "https://idp.example/", "--jwt-audience", "dashsync", "--jwt-user-claim", "email"}, nil,
			idp{"https://idp.example/certs", "https://idp.example/", "dashsync", "email"}},
		{"environment", nil, []string{"DASHSYNC_JWKS_URL", "http://127.0.0.1:9/jwks", "DASHSYNC_JWT_ISSUER", "i", "DASHSYNC_JWT_AUDIENCE", "a", "DASHSYNC_JWT_USER_CLAIM", "oid"},
			idp{"http://127.0.0.1:9/jwks", "i", "a", "oid"}},
		{"flags win over the environment", []string{"--jwt-audience", "flag"}, []string{"DASHSYNC_JWKS_URL", "https://idp.example/k", "DASHSYNC_JWT_AUDIENCE", "env"},
			idp{"https://idp.example/k", "", "flag", "sub"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServe(tc.args, io.Discard, envOf(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			if got := (idp{c.JWKSURL, c.JWTIssuer, c.JWTAudience, c.JWTUserClaim}); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, bad := range []struct {
		name   string
		args   []string
		env    []string
		wantIn string
	}{
		{"not http", []string{"--jwks-url", "ftp://idp.example/certs"}, nil, "--jwks-url"},
		{"a file", []string{"--jwks-url", "/etc/jwks.json"}, nil, "http or https"},
		{"no host", []string{"--jwks-url", "https:///certs"}, nil, "no host"},
		{"bad URL in the environment", nil, []string{"DASHSYNC_JWKS_URL", "idp.example/certs"}, "--jwks-url"},
		{"issuer without a JWKS URL", []string{"--jwt-issuer", "https://idp.example/"}, nil, "--jwt-issuer"},
		{"audience without a JWKS URL", nil, []string{"DASHSYNC_JWT_AUDIENCE", "dashsync"}, "--jwt-audience"},
		{"user claim without a JWKS URL", []string{"--jwt-user-claim", "email"}, nil, "--jwt-user-claim"},
		{"empty user claim", []string{"--jwks-url", "https://idp.example/certs", "--jwt-user-claim", " "}, nil, "--jwt-user-claim"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := parseServe(bad.args, io.Discard, envOf(bad.env...))
			if err == nil || !strings.Contains(err.Error(), bad.wantIn) {
				t.Errorf("got %v, want an error about %q", err, bad.wantIn)
			}
		})
	}
}

// readyChecks returns /readyz's status and checks.
func readyChecks(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	status, body := request(t, "GET", base+"/readyz", "", "")
	var r struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	return status, r.Checks
}

// TestServe_IdentityProviderDownAtStart runs serve with --jwks-url (and no secret)
// while the provider answers 503: serve starts, /readyz reports jwks failed and a
// provider's token is 503 unavailable; once the provider answers, readiness recovers
// and its tokens verify (issuer, audience and the user claim checked), with no
// restart. HS256 tokens are refused: no secret is configured.
func TestServe_IdentityProviderDownAtStart(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, true)
	s := startServe(t, envOf("DASHSYNC_JWKS_URL", p.URL()), "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--jwt-issuer", testidp.Issuer, "--jwt-audience", testidp.Audience, "--jwt-user-claim", "preferred_username")

	status, checks := readyChecks(t, s.url)
	if status != http.StatusServiceUnavailable || checks["jwks"] != "failed" {
		t.Fatalf("/readyz while the provider is down: got %d %v, want 503 with jwks failed", status, checks)
	}
	claims := testidp.Claims("ignored-sub")
	claims["preferred_username"] = "alice"
	tok := p.Sign(t, testidp.RS256, claims)
	if status, body := request(t, "GET", s.url+"/api/dashboard", tok, ""); status != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
		t.Fatalf("a provider's token while it is down: got %d %s, want 503 unavailable", status, body)
	}

	p.Up()
	deadline := time.Now().Add(testidp.Patience)
	for {
		status, checks := readyChecks(t, s.url)
		if status == http.StatusOK && checks["jwks"] == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %v after the provider came back: got %d %v, want 200; stderr:\n%s", testidp.Patience, status, checks, s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
	status, body := request(t, "GET", s.url+"/api/dashboard", tok, "")
	if status != http.StatusOK {
		t.Fatalf("the provider's token once it answers: got %d %s, want 200", status, body)
	}
	for _, kind := range []string{testidp.ES256, testidp.EdDSA} {
		if status, body := request(t, "GET", s.url+"/api/dashboard", p.Sign(t, kind, claims), ""); status != http.StatusOK {
			t.Fatalf("a %s token: got %d %s, want 200", kind, status, body)
		}
	}
	wrongAud := testidp.Claims("x")
	wrongAud["preferred_username"], wrongAud["aud"] = "alice", "another-api"
	if status, body := request(t, "GET", s.url+"/api/dashboard", p.Sign(t, testidp.ES256, wrongAud), ""); status != http.StatusUnauthorized {
		t.Fatalf("a token for another audience: got %d %s, want 401", status, body)
	}
	hs, err := api.MintToken([]byte("a secret this server does not have, 32+ bytes"), "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := request(t, "GET", s.url+"/api/dashboard", hs, ""); status != http.StatusUnauthorized {
		t.Fatalf("an HS256 token without --jwt-secret: got %d %s, want 401", status, body)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
