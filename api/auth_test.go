package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dashsync/dashsync/api"
	dsync "github.com/dashsync/dashsync/sync"
)

var authCases = []testCase{
	{"Auth_BadTokensAre401Unauthorized", testAuthRejects},
	{"Auth_TokenInAccessTokenQueryIsAccepted", testAuthQueryToken},
	{"Auth_HealthAndMetricsNeedNoToken", testAuthNotNeeded},
}

// signed returns a token with the claims, signed by method with key.
func signed(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

func testAuthRejects(t *testing.T, h *harness) {
	exp := time.Now().Add(time.Hour).Unix()
	valid := jwt.MapClaims{"sub": "alice", "exp": exp}
	expired, err := api.MintToken(h.secret, "alice", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		header string
	}{
		{"no token", ""},
		{"not bearer", "Basic YWxpY2U6cHc="},
		{"bearer without token", "Bearer "},
		{"garbage", "Bearer not.a.jwt"},
		{"expired", "Bearer " + expired},
		{"wrongly signed", "Bearer " + signed(t, jwt.SigningMethodHS256, []byte("another secret of the same length!!"), valid)},
		{"HS384", "Bearer " + signed(t, jwt.SigningMethodHS384, h.secret, valid)},
		{"HS512", "Bearer " + signed(t, jwt.SigningMethodHS512, h.secret, valid)},
		{"alg none", "Bearer " + signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)},
		{"no exp", "Bearer " + signed(t, jwt.SigningMethodHS256, h.secret, jwt.MapClaims{"sub": "alice"})},
		{"no sub", "Bearer " + signed(t, jwt.SigningMethodHS256, h.secret, jwt.MapClaims{"exp": exp})},
		{"sub too long", "Bearer " + signed(t, jwt.SigningMethodHS256, h.secret, jwt.MapClaims{"sub": strings.Repeat("a", 200), "exp": exp})},
		{"not yet valid", "Bearer " + signed(t, jwt.SigningMethodHS256, h.secret, jwt.MapClaims{"sub": "alice", "exp": exp, "nbf": exp - 60})},
	}
	for _, tc := range cases {
		for _, path := range []string{"/api/dashboard/layouts", "/api/dashboard"} {
			t.Run(tc.name+path, func(t *testing.T) {
				hdr := map[string]string{}
				if tc.header != "" {
					hdr["Authorization"] = tc.header
				}
				r := h.do(t, "GET", path, nil, hdr)
				r.wantError(t, http.StatusUnauthorized, "unauthorized")
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", r.header.Get("WWW-Authenticate"))
				}
			})
		}
	}
}

func testAuthQueryToken(t *testing.T, h *harness) {
	c := h.newUser(t)
	h.do(t, "GET", "/api/dashboard/layouts?access_token="+c.token, nil, nil).want(t, http.StatusOK, nil)
	// A bad header is not rescued by a good query token.
	h.do(t, "GET", "/api/dashboard/layouts?access_token="+c.token, nil, map[string]string{"Authorization": "Bearer x"}).
		wantError(t, http.StatusUnauthorized, "unauthorized")
}

func testAuthNotNeeded(t *testing.T, h *harness) {
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		h.do(t, "GET", p, nil, nil).want(t, http.StatusOK, nil)
	}
}

func TestMintToken_VerifiesWithTheSecret(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tok, err := api.MintTokenAt(secret, "alice", now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	user, exp, err := api.VerifyToken(secret, tok, now.Add(time.Hour))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if user != "alice" || !exp.Equal(now.Add(24*time.Hour)) {
		t.Errorf("got user %q exp %v, want alice %v", user, exp, now.Add(24*time.Hour))
	}
	cases := []struct {
		name   string
		secret []byte
		at     time.Time
	}{
		{"after exp", secret, now.Add(25 * time.Hour)},
		{"other secret", []byte("fedcba9876543210fedcba9876543210"), now},
	}
	for _, tc := range cases {
		_, _, err := api.VerifyToken(tc.secret, tok, tc.at)
		var de *dsync.Error
		if !errors.As(err, &de) || de.Code != dsync.CodeUnauthorized {
			t.Errorf("%s: got %v, want unauthorized", tc.name, err)
		}
	}
	if _, err := api.MintToken(secret, "", time.Hour); err == nil {
		t.Error("minting a token without a user: got no error")
	}
	if _, err := api.MintToken(nil, "alice", time.Hour); err == nil {
		t.Error("minting a token without a secret: got no error")
	}
}
