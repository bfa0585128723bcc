package hub_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testdial"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testidp"
	"github.com/dashsync/dashsync/jwks"
)

// newProviderServer starts a server that accepts testenv.Secret's tokens and p's
// (issuer and audience checked).
func newProviderServer(t *testing.T, p *testidp.Provider) *testenv.Server {
	t.Helper()
	return testenv.New(t, testenv.Options{IdentityProvider: &api.IdentityProvider{
		Keys: p.ReadySet(t, jwks.Options{}), Issuer: testidp.Issuer, Audience: testidp.Audience}})
}

// TestWebSocket_ProviderTokens: a connection opens with a provider's token of every
// kind (hello names its user), and one with a provider's token that is not good is
// refused with 401.
func TestWebSocket_ProviderTokens(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	s := newProviderServer(t, p)
	for _, kind := range testidp.Kinds {
		c := dialToken(t, s, p.Token(t, kind, "alice"))
		if c.Hello.User != "alice" {
			t.Fatalf("hello on a %s token: got %s, want user alice", kind, c.Hello.Raw)
		}
		if r := req(t, c, map[string]any{"type": "ping"}); r.Type != "pong" {
			t.Fatalf("ping on a %s token's connection: got %s", kind, r.Raw)
		}
	}
	bad := map[string]string{
		"wrong audience": p.Sign(t, testidp.ES256, jwt.MapClaims{"iss": testidp.Issuer, "aud": "other", "sub": "alice",
			"exp": time.Now().Add(time.Hour).Unix()}),
		"expired": p.Sign(t, testidp.RS256, jwt.MapClaims{"iss": testidp.Issuer, "aud": testidp.Audience, "sub": "alice",
			"exp": time.Now().Add(-time.Hour).Unix()}),
	}
	for name, tok := range bad {
		_, refusal, err := testdial.Try(t, s.WSURL, tok, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if refusal == nil || refusal.Status != http.StatusUnauthorized || refusal.Code != "unauthorized" {
			t.Fatalf("%s: got %+v, want the upgrade refused with 401 unauthorized", name, refusal)
		}
	}
}

// expOf reads a token's exp (without verifying it).
func expOf(t testing.TB, tok string) time.Time {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		t.Fatalf("the token has no exp: %v", err)
	}
	return exp.Time
}

// TestWebSocket_AuthRefreshAcrossKinds: an `auth` refresh accepts either kind of
// token whatever the connection opened with: a provider's token on a connection
// opened with HS256, and an HS256 token on one opened with a provider's; authed
// carries the new token's exp. A provider's token that is not good (wrong issuer) is
// an unauthorized error, and one for another user closes the connection.
func TestWebSocket_AuthRefreshAcrossKinds(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	s := newProviderServer(t, p)
	hsTok, _ := mintAt(t, "alice", time.Now(), time.Hour)

	cases := []struct {
		name, open, refresh string
	}{
		{"HS256 then RS256", hsTok, p.Token(t, testidp.RS256, "alice")},
		{"HS256 then EdDSA", hsTok, p.Token(t, testidp.EdDSA, "alice")},
		{"ES256 then HS256", p.Token(t, testidp.ES256, "alice"), hsTok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialToken(t, s, tc.open)
			r := req(t, c, map[string]any{"type": "auth", "token": tc.refresh})
			if r.Type != "authed" {
				t.Fatalf("auth: got %s, want authed", r.Raw)
			}
			wantExp := expOf(t, tc.refresh)
			gotExp, err := time.Parse(time.RFC3339, r.Exp)
			if err != nil || !gotExp.Equal(wantExp) {
				t.Fatalf("authed.exp: got %q (%v), want the new token's exp %v", r.Exp, err, wantExp)
			}
		})
	}

	t.Run("a bad provider token", func(t *testing.T) {
		c := dialToken(t, s, hsTok)
		bad := p.Sign(t, testidp.RS256, jwt.MapClaims{"iss": "https://other.test/", "aud": testidp.Audience, "sub": "alice",
			"exp": time.Now().Add(time.Hour).Unix()})
		r := req(t, c, map[string]any{"type": "auth", "token": bad})
		if r.Type != "error" || r.Error == nil || r.Error.Code != "unauthorized" {
			t.Fatalf("auth with a wrong issuer: got %s, want an unauthorized error", r.Raw)
		}
	})
	t.Run("a provider token for another user", func(t *testing.T) {
		c := dialToken(t, s, hsTok)
		r := req(t, c, map[string]any{"type": "auth", "token": p.Token(t, testidp.ES256, "mallory")})
		if r.Type != "error" || r.Error == nil || r.Error.Code != "forbidden" {
			t.Fatalf("auth for another user: got %s, want a forbidden error", r.Raw)
		}
		select {
		case <-c.Done():
		case <-time.After(testidp.Patience):
			t.Fatal("the connection stayed open after an auth for another user")
		}
	})
}
