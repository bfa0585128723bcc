package api_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testidp"
	"github.com/dashsync/dashsync/jwks"
	dsync "github.com/dashsync/dashsync/sync"
)

// idpSecret is the HS256 secret beside the provider in these tests.
var idpSecret = []byte("idp-test-secret-0123456789abcdef")

// newProviderVerifier returns a verifier of idpSecret's tokens and of p's (issuer and
// audience checked), its key set ready.
func newProviderVerifier(t testing.TB, p *testidp.Provider, o jwks.Options) *api.Verifier {
	t.Helper()
	v, err := api.NewVerifier(idpSecret, &api.IdentityProvider{
		Keys: p.ReadySet(t, o), Issuer: testidp.Issuer, Audience: testidp.Audience})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantCode fails unless err is a *dsync.Error of code.
func wantCode(t testing.TB, err error, code dsync.Code) {
	t.Helper()
	var de *dsync.Error
	if !errors.As(err, &de) || de.Code != code {
		t.Fatalf("got %v, want a %s error", err, code)
	}
}

// with returns the provider's usual claims for user, changed by kv (a nil value
// deletes the claim).
func with(user string, kv ...any) jwt.MapClaims {
	c := testidp.Claims(user)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// providerBadTokens are tokens that look like the provider's and must each be 401:
// name → token.
func providerBadTokens(t testing.TB, p *testidp.Provider, user string) map[string]string {
	t.Helper()
	past := time.Now().Add(-time.Hour).Unix()
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, testidp.Claims(user)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	// Algorithm confusion: HS256 with the provider's public key (which anyone can read
	// from its key set) as the HMAC secret, under the RSA key's kid.
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, testidp.Claims(user))
	confused.Header["kid"] = p.KID(testidp.RS256)
	confusedTok, err := confused.SignedString(p.PublicKeyPEM(t, testidp.RS256))
	if err != nil {
		t.Fatal(err)
	}
	rs384 := jwt.NewWithClaims(jwt.SigningMethodRS384, testidp.Claims(user))
	rs384.Header["kid"] = p.KID(testidp.RS256)
	rs384Tok, err := rs384.SignedString(testidp.NewPrivateKey(t, testidp.RS256))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"wrong issuer":      p.Sign(t, testidp.RS256, with(user, "iss", "https://other.test/")),
		"no issuer":         p.Sign(t, testidp.ES256, with(user, "iss", nil)),
		"wrong audience":    p.Sign(t, testidp.ES256, with(user, "aud", "another-api")),
		"no audience":       p.Sign(t, testidp.EdDSA, with(user, "aud", nil)),
		"expired":           p.Sign(t, testidp.EdDSA, with(user, "exp", past)),
		"no exp":            p.Sign(t, testidp.RS256, with(user, "exp", nil)),
		"not yet valid":     p.Sign(t, testidp.RS256, with(user, "nbf", time.Now().Add(time.Hour).Unix())),
		"unknown kid":       testidp.SignWith(t, testidp.RS256, "no-such-kid", testidp.NewPrivateKey(t, testidp.RS256), testidp.Claims(user)),
		"signed by neither": testidp.SignWith(t, testidp.ES256, p.KID(testidp.ES256), testidp.NewPrivateKey(t, testidp.ES256), testidp.Claims(user)),
		"alg none":          none,
		"HS256 with the public key (algorithm confusion)": confusedTok,
		"RS384":              rs384Tok,
		"sub a link's actor": p.Sign(t, testidp.RS256, with(user, "sub", dsync.LinkUserPrefix+"x")),
		"sub not a string":   p.Sign(t, testidp.RS256, with(user, "sub", 42)),
		"no sub":             p.Sign(t, testidp.RS256, with(user, "sub", nil)),
	}
}

func TestVerifier_ProviderTokens(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	v := newProviderVerifier(t, p, jwks.Options{UnknownKIDInterval: time.Hour})
	ctx, now := context.Background(), time.Now()
	for _, kind := range testidp.Kinds {
		t.Run("accepts "+kind, func(t *testing.T) {
			user, exp, err := v.Verify(ctx, p.Token(t, kind, "alice"), now)
			if err != nil || user != "alice" || !exp.After(now) {
				t.Fatalf("got %q, %v, %v; want alice until the token's exp", user, exp, err)
			}
		})
	}
	t.Run("accepts the secret's HS256 tokens beside them", func(t *testing.T) {
		tok, err := api.MintToken(idpSecret, "bob", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if user, _, err := v.Verify(ctx, tok, now); err != nil || user != "bob" {
			t.Fatalf("got %q, %v; want bob", user, err)
		}
	})
	for name, tok := range providerBadTokens(t, p, "alice") {
		t.Run("refuses "+name, func(t *testing.T) {
			_, _, err := v.Verify(ctx, tok, now)
			wantCode(t, err, dsync.CodeUnauthorized)
		})
	}
}

// TestVerifier_AlgorithmConfusionWithoutSecret: with the provider alone configured,
// an HS256 token is refused whatever key it was made with.
func TestVerifier_AlgorithmConfusionWithoutSecret(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	v, err := api.NewVerifier(nil, &api.IdentityProvider{Keys: p.ReadySet(t, jwks.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, testidp.Claims("alice"))
	confused.Header["kid"] = p.KID(testidp.RS256)
	pemKey := p.PublicKeyPEM(t, testidp.RS256)
	block, _ := pem.Decode(pemKey)
	for name, key := range map[string][]byte{"PEM": pemKey, "DER": block.Bytes} {
		tok, err := confused.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = v.Verify(context.Background(), tok, time.Now())
		if de := (*dsync.Error)(nil); !errors.As(err, &de) || de.Code != dsync.CodeUnauthorized {
			t.Errorf("HS256 signed with the public key's %s: got %v, want unauthorized", name, err)
		}
	}
	if user, _, err := v.Verify(context.Background(), p.Token(t, testidp.RS256, "alice"), time.Now()); err != nil || user != "alice" {
		t.Fatalf("the provider's own token: got %q, %v; want alice", user, err)
	}
}

// TestVerifier_UserClaim: the configured claim holds the user id, under the same rule
// as sub.
func TestVerifier_UserClaim(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	v, err := api.NewVerifier(nil, &api.IdentityProvider{Keys: p.ReadySet(t, jwks.Options{}), UserClaim: "preferred_username"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, now := context.Background(), time.Now()
	user, _, err := v.Verify(ctx, p.Sign(t, testidp.ES256, with("sub-123", "preferred_username", "carol")), now)
	if err != nil || user != "carol" {
		t.Fatalf("got %q, %v; want carol (the preferred_username claim, not sub)", user, err)
	}
	for name, claims := range map[string]jwt.MapClaims{
		"claim missing":     with("sub-123"),
		"a link's actor":    with("sub-123", "preferred_username", dsync.LinkUserPrefix+"abc"),
		"too long":          with("sub-123", "preferred_username", strings.Repeat("c", dsync.MaxUserLen+1)),
		"empty":             with("sub-123", "preferred_username", ""),
		"not a string":      with("sub-123", "preferred_username", []string{"carol"}),
		"NUL in the middle": with("sub-123", "preferred_username", "ca\u0000rol"),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := v.Verify(ctx, p.Sign(t, testidp.ES256, claims), now)
			wantCode(t, err, dsync.CodeUnauthorized)
		})
	}
}

// TestVerifier_CacheChecksExpiryAndWithdrawnKeys: a remembered token is still refused
// once it expires, and once its key is withdrawn from the provider's key set.
func TestVerifier_CacheChecksExpiryAndWithdrawnKeys(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	v := newProviderVerifier(t, p, jwks.Options{UnknownKIDInterval: time.Nanosecond})
	ctx, now := context.Background(), time.Now()
	tok := p.Token(t, testidp.RS256, "alice")
	_, exp, err := v.Verify(ctx, tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(ctx, tok, exp.Add(time.Second)); err == nil {
		t.Fatal("the remembered token after its exp: got no error")
	}
	if _, _, err := v.Verify(ctx, tok, now); err != nil {
		t.Fatalf("the token before its exp again: %v", err)
	}
	// The provider withdraws the key; a token of the new one makes the set fetch.
	p.Rotate(t, testidp.RS256)
	if _, _, err := v.Verify(ctx, p.Token(t, testidp.RS256, "alice"), now); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	_, _, err = v.Verify(ctx, tok, now)
	wantCode(t, err, dsync.CodeUnauthorized)
}

// TestVerifier_ProviderNotReadyIsUnavailable: before the key set is fetched, a
// provider's token is unavailable (not refused as bad), and HS256 tokens verify.
func TestVerifier_ProviderNotReadyIsUnavailable(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, true)
	keys := p.Set(t, jwks.Options{})
	v, err := api.NewVerifier(idpSecret, &api.IdentityProvider{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	ctx, now := context.Background(), time.Now()
	_, _, err = v.Verify(ctx, p.Token(t, testidp.EdDSA, "alice"), now)
	wantCode(t, err, dsync.CodeUnavailable)
	hs, err := api.MintToken(idpSecret, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(ctx, hs, now); err != nil {
		t.Fatalf("an HS256 token while the provider is down: %v", err)
	}
	p.Up()
	testidp.WaitReady(t, keys)
	if user, _, err := v.Verify(ctx, p.Token(t, testidp.EdDSA, "alice"), now); err != nil || user != "alice" {
		t.Fatalf("once the provider answers: got %q, %v; want alice", user, err)
	}
}

func TestNewVerifier_NeedsASecretOrAProvider(t *testing.T) {
	t.Parallel()
	if _, err := api.NewVerifier(nil, nil); err == nil {
		t.Fatal("NewVerifier(nil, nil): got no error")
	}
	if _, err := api.NewVerifier(nil, &api.IdentityProvider{}); err == nil {
		t.Fatal("NewVerifier with a provider without Keys: got no error")
	}
}

// readyz returns /readyz's status and its checks.
func readyz(t testing.TB, s *testenv.Server) (int, map[string]string) {
	t.Helper()
	res, err := s.HTTP.Client().Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body.Checks
}

// errorCode is the code of an error body.
func errorCode(b []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// TestREST_ProviderTokens goes through the real wiring: the provider's tokens of every
// kind and the secret's are accepted over REST, the bad ones are 401 unauthorized,
// readiness reports the key set, and a key rotated at the provider is picked up
// without a restart.
func TestREST_ProviderTokens(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	// No rate limit on fetches for unknown kids: the bad tokens include one, and the
	// rotation after them needs a fetch too.
	s := testenv.New(t, testenv.Options{IdentityProvider: &api.IdentityProvider{
		Keys: p.ReadySet(t, jwks.Options{UnknownKIDInterval: time.Nanosecond}), Issuer: testidp.Issuer, Audience: testidp.Audience}})
	if status, checks := readyz(t, s); status != http.StatusOK || checks["jwks"] != "ok" {
		t.Fatalf("/readyz: got %d %v, want 200 with jwks ok", status, checks)
	}
	for _, kind := range testidp.Kinds {
		if status, b := s.RESTToken(t, p.Token(t, kind, "alice"), "GET", "/api/dashboard", nil); status != http.StatusOK {
			t.Fatalf("a %s token: got %d %s, want 200", kind, status, b)
		}
	}
	if status, b := s.REST(t, "alice", "GET", "/api/dashboard", nil); status != http.StatusOK {
		t.Fatalf("an HS256 token beside the provider: got %d %s, want 200", status, b)
	}
	for name, tok := range providerBadTokens(t, p, "alice") {
		if status, b := s.RESTToken(t, tok, "GET", "/api/dashboard", nil); status != http.StatusUnauthorized || errorCode(b) != "unauthorized" {
			t.Errorf("%s: got %d %s, want 401 unauthorized", name, status, b)
		}
	}
	kid := p.Rotate(t, testidp.EdDSA)
	if status, b := s.RESTToken(t, p.Token(t, testidp.EdDSA, "alice"), "GET", "/api/dashboard", nil); status != http.StatusOK {
		t.Fatalf("a token of the rotated key %s: got %d %s, want 200", kid, status, b)
	}
}

// TestREST_ProviderUnreachableAtStart: the server starts while the provider answers
// 503; /readyz reports the key set failed, a provider's token is 503 unavailable (and
// an HS256 token works); once the provider answers, readiness recovers and the token
// is accepted, with no restart.
func TestREST_ProviderUnreachableAtStart(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, true)
	s := testenv.New(t, testenv.Options{IdentityProvider: &api.IdentityProvider{
		Keys: p.Set(t, jwks.Options{}), Issuer: testidp.Issuer, Audience: testidp.Audience}})
	status, checks := readyz(t, s)
	if status != http.StatusServiceUnavailable || checks["jwks"] != "failed" || checks["store"] != "ok" {
		t.Fatalf("/readyz while the provider is down: got %d %v, want 503 with jwks failed, store ok", status, checks)
	}
	tok := p.Token(t, testidp.RS256, "alice")
	if status, b := s.RESTToken(t, tok, "GET", "/api/dashboard", nil); status != http.StatusServiceUnavailable || errorCode(b) != "unavailable" {
		t.Fatalf("a provider's token while it is down: got %d %s, want 503 unavailable", status, b)
	}
	if status, b := s.REST(t, "alice", "GET", "/api/dashboard", nil); status != http.StatusOK {
		t.Fatalf("an HS256 token while the provider is down: got %d %s, want 200", status, b)
	}
	p.Up()
	deadline := time.Now().Add(testidp.Patience)
	for {
		status, checks := readyz(t, s)
		if status == http.StatusOK && checks["jwks"] == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %v after the provider came back: got %d %v, want 200", testidp.Patience, status, checks)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
	if status, b := s.RESTToken(t, tok, "GET", "/api/dashboard", nil); status != http.StatusOK {
		t.Fatalf("the provider's token once it answers: got %d %s, want 200", status, b)
	}
}
