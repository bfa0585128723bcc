// Package testidp is for tests: an identity provider on loopback (an httptest server
// on 127.0.0.1) serving a JSON Web Key Set of keys made for the test, RSA 2048
// (RS256), ECDSA P-256 (ES256) and Ed25519 (EdDSA), that signs tokens with them. Keys
// can be rotated (a new kid replaces the old one) and the provider made to answer 503
// until it is brought back, to play an outage.
package testidp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/dashsync/dashsync/jwks"
)

// The provider's issuer and the audience its tokens name by default.
const (
	Issuer   = "https://idp.test/"
	Audience = "dashsync"
)

// Kinds of key, by the algorithm they sign with.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Kinds are every kind of key the provider has.
var Kinds = []string{RS256, ES256, EdDSA}

// key is one signing key of the provider.
type key struct {
	kid  string
	priv crypto.Signer
}

// Provider is the test identity provider. Its methods are safe for concurrent use.
type Provider struct {
	srv      *httptest.Server
	mu       sync.Mutex
	keys     map[string]key // by kind
	gen      int
	down     bool
	requests atomic.Int64
	// NoAlg leaves alg out of the keys served (as some providers do): only the key's
	// type then says what it verifies.
	NoAlg atomic.Bool
}

// New starts a provider with one key of each kind, closed at cleanup. With down, it
// answers 503 until Up.
func New(t testing.TB, down bool) *Provider {
	t.Helper()
	p := &Provider{keys: map[string]key{}, down: down}
	for _, kind := range Kinds {
		p.keys[kind] = p.newKey(t, kind)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the key set's URL.
func (p *Provider) URL() string { return p.srv.URL + "/.well-known/jwks.json" }

// Requests counts the requests for the key set so far, answered or not.
func (p *Provider) Requests() int64 { return p.requests.Load() }

// Up makes the provider answer (after New with down, or Down).
func (p *Provider) Up() { p.setDown(false) }

// Down makes the provider answer 503 until Up.
func (p *Provider) Down() { p.setDown(true) }

func (p *Provider) setDown(d bool) {
	p.mu.Lock()
	p.down = d
	p.mu.Unlock()
}

// Rotate replaces the key of kind with a new one under a new kid, which it returns:
// the key set no longer holds the old key.
func (p *Provider) Rotate(t testing.TB, kind string) string {
	t.Helper()
	k := p.newKey(t, kind)
	p.mu.Lock()
	p.keys[kind] = k
	p.mu.Unlock()
	return k.kid
}

// KID is the current kid of kind's key.
func (p *Provider) KID(kind string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[kind].kid
}

// PublicKeyPEM is the PEM encoding of kind's public key: what an attacker who read the
// key set has, and would use as an HMAC secret to forge an HS256 token (algorithm
// confusion).
func (p *Provider) PublicKeyPEM(t testing.TB, kind string) []byte {
	t.Helper()
	p.mu.Lock()
	k := p.keys[kind]
	p.mu.Unlock()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Claims are the provider's usual claims for user: iss, aud, sub, and exp in an hour.
func Claims(user string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": Issuer, "aud": Audience, "sub": user, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// Sign returns claims signed with kind's current key, its kid in the header.
func (p *Provider) Sign(t testing.TB, kind string, claims jwt.MapClaims) string {
	t.Helper()
	p.mu.Lock()
	k := p.keys[kind]
	p.mu.Unlock()
	return SignWith(t, kind, k.kid, k.priv, claims)
}

// Token returns a token of kind's key for user with the usual claims.
func (p *Provider) Token(t testing.TB, kind, user string) string {
	t.Helper()
	return p.Sign(t, kind, Claims(user))
}

// SignWith signs claims with priv for the algorithm kind, with kid in the header
// (none when empty).
func SignWith(t testing.TB, kind, kid string, priv crypto.Signer, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(kind), claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// NewPrivateKey makes a private key of kind.
func NewPrivateKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch kind {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("testidp: unknown kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func (p *Provider) newKey(t testing.TB, kind string) key {
	t.Helper()
	p.mu.Lock()
	p.gen++
	kid := fmt.Sprintf("%s-%d", kind, p.gen)
	p.mu.Unlock()
	return key{kid: kid, priv: NewPrivateKey(t, kind)}
}

// serve answers GET of the key set: the public keys, each with kid, alg and use sig.
func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	down := p.down
	keys := make([]key, 0, len(p.keys))
	kinds := make([]string, 0, len(p.keys))
	for _, kind := range Kinds {
		keys = append(keys, p.keys[kind])
		kinds = append(kinds, kind)
	}
	p.mu.Unlock()
	if down {
		http.Error(w, "identity provider down", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path != "/.well-known/jwks.json" {
		http.NotFound(w, r)
		return
	}
	var set jwkset.JWKSMarshal
	for i, k := range keys {
		meta := jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(kinds[i]), USE: jwkset.UseSig}
		if p.NoAlg.Load() {
			meta.ALG = ""
		}
		jwk, err := jwkset.NewJWKFromKey(k.priv.Public(), jwkset.JWKOptions{Metadata: meta})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// ServeSet serves a key set as written (raw JSON) on a loopback httptest server of
// its own, closed at cleanup, and returns its URL: for key sets the Provider would
// not make (unusable keys, garbage).
func ServeSet(t testing.TB, raw string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(raw))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Patience bounds every wait for a condition here: generous, since the machine may be
// slow; nothing asserts how fast it comes.
const Patience = 30 * time.Second

// Set returns a key set of the provider's, closed at cleanup, without waiting for it.
func (p *Provider) Set(t testing.TB, o jwks.Options) *jwks.Set {
	t.Helper()
	s, err := jwks.New(p.URL(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// ReadySet is Set, once it holds the provider's keys.
func (p *Provider) ReadySet(t testing.TB, o jwks.Options) *jwks.Set {
	t.Helper()
	s := p.Set(t, o)
	WaitReady(t, s)
	return s
}

// WaitReady waits until s holds a key set, at most Patience.
func WaitReady(t testing.TB, s *jwks.Set) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for {
		err := s.Ready(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key set is not ready after %v: %v", Patience, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting a time
	}
}
