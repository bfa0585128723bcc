package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/dashsync/dashsync/internal/testidp"
	"github.com/dashsync/dashsync/jwks"
)

// patience bounds every wait for a condition: generous, since the machine may be slow;
// nothing asserts how fast it comes.
const patience = 30 * time.Second

// newSet returns a Set on url, closed at cleanup.
func newSet(t testing.TB, url string, o jwks.Options) *jwks.Set {
	t.Helper()
	s, err := jwks.New(url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// waitReady waits until s holds a key set.
func waitReady(t testing.TB, s *jwks.Set) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		err := s.Ready(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key set is not ready after %v: %v", patience, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting for one
	}
}

// verify checks tok's signature with the key s gives for it, as api's verifier does.
func verify(s *jwks.Set, tok string) error {
	_, err := jwt.NewParser(jwt.WithValidMethods(jwks.Algorithms)).Parse(tok, func(t *jwt.Token) (any, error) {
		return s.Key(context.Background(), t)
	})
	return err
}

func TestSet_VerifiesEachKindOfKey(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	s := newSet(t, p.URL(), jwks.Options{})
	waitReady(t, s)
	for _, kind := range testidp.Kinds {
		t.Run(kind, func(t *testing.T) {
			if err := verify(s, p.Token(t, kind, "alice")); err != nil {
				t.Fatalf("a %s token of the provider: got %v, want it verified", kind, err)
			}
			// The same claims signed by a key the provider does not have, under its kid.
			forged := testidp.SignWith(t, kind, p.KID(kind), testidp.NewPrivateKey(t, kind), testidp.Claims("alice"))
			if err := verify(s, forged); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
				t.Fatalf("a %s token signed by another key under the provider's kid: got %v, want an invalid signature", kind, err)
			}
		})
	}
}

// TestSet_KeyOnlyForItsAlgorithm: a token cannot choose how a key is used: one that
// names the RSA key's kid but says ES256 or EdDSA (or HS256, with the key's public
// bytes as its HMAC secret) gets no key.
func TestSet_KeyOnlyForItsAlgorithm(t *testing.T) {
	t.Parallel()
	for _, noAlg := range []bool{false, true} {
		t.Run(map[bool]string{false: "keys with alg", true: "keys without alg"}[noAlg], func(t *testing.T) {
			t.Parallel()
			p := testidp.New(t, false)
			p.NoAlg.Store(noAlg)
			s := newSet(t, p.URL(), jwks.Options{})
			waitReady(t, s)
			if err := verify(s, p.Token(t, testidp.EdDSA, "alice")); err != nil {
				t.Fatalf("the provider's own EdDSA token: %v", err)
			}
			cases := []struct {
				name, alg, keyOf string
			}{
				{"ES256 under the RSA kid", "ES256", testidp.RS256},
				{"EdDSA under the EC kid", "EdDSA", testidp.ES256},
				{"RS256 under the Ed25519 kid", "RS256", testidp.EdDSA},
				{"ES256 under the Ed25519 kid", "ES256", testidp.EdDSA},
			}
			for _, tc := range cases {
				tok := testidp.SignWith(t, tc.alg, p.KID(tc.keyOf), testidp.NewPrivateKey(t, tc.alg), testidp.Claims("alice"))
				if err := verify(s, tok); !errors.Is(err, jwks.ErrAlgorithm) {
					t.Errorf("%s: got %v, want jwks.ErrAlgorithm", tc.name, err)
				}
			}
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, testidp.Claims("alice"))
			tok.Header["kid"] = p.KID(testidp.RS256)
			signed, err := tok.SignedString(p.PublicKeyPEM(t, testidp.RS256))
			if err != nil {
				t.Fatal(err)
			}
			// Asked directly, not through a parser that allows only jwks.Algorithms.
			parsed, _, err := jwt.NewParser().ParseUnverified(signed, jwt.MapClaims{})
			if err != nil {
				t.Fatal(err)
			}
			if key, err := s.Key(context.Background(), parsed); !errors.Is(err, jwks.ErrAlgorithm) {
				t.Fatalf("Key for an HS256 token made with the public key: got %v, %v; want no key and jwks.ErrAlgorithm", key, err)
			}
		})
	}
}

// TestSet_PicksUpARotatedKey: a token of a key the set does not hold yet (new kid)
// makes it fetch the key set once, and verifies; the old key, gone from the provider,
// no longer does; and a made-up kid right after causes no fetch (rate limit).
func TestSet_PicksUpARotatedKey(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	s := newSet(t, p.URL(), jwks.Options{UnknownKIDInterval: time.Hour})
	waitReady(t, s)
	old := p.Token(t, testidp.ES256, "alice")
	gen := s.Generation()
	before := p.Requests()

	p.Rotate(t, testidp.ES256)
	if err := verify(s, p.Token(t, testidp.ES256, "alice")); err != nil {
		t.Fatalf("a token of the rotated key: got %v, want it verified", err)
	}
	if got := p.Requests() - before; got != 1 {
		t.Fatalf("fetches for the new kid: got %d, want 1", got)
	}
	if s.Generation() == gen {
		t.Fatalf("Generation stayed %d after the key set changed", gen)
	}
	if err := verify(s, old); !errors.Is(err, jwks.ErrUnknownKey) {
		t.Fatalf("a token of the withdrawn key: got %v, want jwks.ErrUnknownKey", err)
	}
	made := testidp.SignWith(t, testidp.ES256, "made-up", testidp.NewPrivateKey(t, testidp.ES256), testidp.Claims("alice"))
	for range 3 {
		if err := verify(s, made); !errors.Is(err, jwks.ErrUnknownKey) {
			t.Fatalf("a made-up kid: got %v, want jwks.ErrUnknownKey", err)
		}
	}
	if got := p.Requests() - before; got != 1 {
		t.Fatalf("fetches after made-up kids within the rate limit: got %d, want still 1", got)
	}
}

// gate is a dialer that refuses every connection until opened: a provider that is
// unreachable, without sending a packet anywhere.
type gate struct {
	open atomic.Bool
	d    net.Dialer
}

func (g *gate) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if !g.open.Load() {
		return nil, errors.New("connection refused (test gate closed)")
	}
	return g.d.DialContext(ctx, network, addr)
}

// TestSet_UnreachableAtStart: New does not wait for the provider; the set is not
// ready and says why, a token gets ErrNotReady; once the provider is reachable the
// set fetches it by itself, and the token verifies.
func TestSet_UnreachableAtStart(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	g := &gate{}
	s := newSet(t, p.URL(), jwks.Options{Client: &http.Client{Transport: &http.Transport{DialContext: g.DialContext}}})
	tok := p.Token(t, testidp.RS256, "alice")

	deadline := time.Now().Add(patience)
	for {
		err := s.Ready(context.Background())
		if err == nil {
			t.Fatal("Ready: got nil while the provider is unreachable")
		}
		if strings.Contains(err.Error(), "test gate closed") {
			if !strings.Contains(err.Error(), p.URL()) {
				t.Fatalf("Ready: got %q, want it to name the URL %s", err, p.URL())
			}
			break // a fetch was tried and failed
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed fetch after %v: Ready says %v", patience, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := verify(s, tok); !errors.Is(err, jwks.ErrNotReady) {
		t.Fatalf("a token while the provider is unreachable: got %v, want jwks.ErrNotReady", err)
	}

	g.open.Store(true)
	waitReady(t, s)
	if err := verify(s, tok); err != nil {
		t.Fatalf("the token once the provider answers: got %v, want it verified", err)
	}
}

// TestSet_KeepsKeysWhileTheProviderIsDown: failed refreshes keep the keys held.
func TestSet_KeepsKeysWhileTheProviderIsDown(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	s := newSet(t, p.URL(), jwks.Options{RefreshInterval: 5 * time.Millisecond, MaxRetry: 5 * time.Millisecond})
	waitReady(t, s)
	p.Down()
	from := p.Requests()
	deadline := time.Now().Add(patience)
	for p.Requests() < from+3 {
		if time.Now().After(deadline) {
			t.Fatalf("the set did not refresh within %v", patience)
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after failed refreshes: got %v, want nil (the keys are kept)", err)
	}
	if err := verify(s, p.Token(t, testidp.EdDSA, "alice")); err != nil {
		t.Fatalf("a token after failed refreshes: got %v, want it verified", err)
	}
}

// TestSet_SkipsUnusableKeys: symmetric keys, encryption keys, RSA keys under 2048
// bits and curves other than P-256 are not kept; a set of only those is not ready,
// and says so.
func TestSet_SkipsUnusableKeys(t *testing.T) {
	t.Parallel()
	short, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{`{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`}
	for _, k := range []struct {
		kid string
		pub any
		use jwkset.USE
	}{{"short", short.Public(), jwkset.UseSig}, {"p384", p384.Public(), jwkset.UseSig}, {"enc", p256.Public(), jwkset.UseEnc}} {
		jwk, err := jwkset.NewJWKFromKey(k.pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, USE: k.use}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(jwk.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(b))
	}
	s := newSet(t, testidp.ServeSet(t, `{"keys":[`+strings.Join(keys, ",")+`]}`), jwks.Options{})
	deadline := time.Now().Add(patience)
	for {
		err := s.Ready(context.Background())
		if err != nil && strings.Contains(err.Error(), "no usable key") {
			break
		}
		if err == nil {
			t.Fatal("Ready: got nil for a set of unusable keys")
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready after %v: got %v, want it to say the set holds no usable key", patience, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	tok := testidp.SignWith(t, testidp.ES256, "enc", p256, testidp.Claims("alice"))
	if err := verify(s, tok); !errors.Is(err, jwks.ErrNotReady) {
		t.Fatalf("a token of the encryption key: got %v, want jwks.ErrNotReady", err)
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://idp.example/.well-known/jwks.json", true},
		{"http://127.0.0.1:8081/certs", true},
		{"ftp://idp.example/jwks.json", false},
		{"file:///etc/jwks.json", false},
		{"idp.example/jwks.json", false},
		{"https://", false},
		{"https://user:pw@idp.example/jwks.json", false},
		{"://nothing", false},
		{"", false},
	} {
		err := jwks.CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q): got %v, want ok=%v", tc.url, err, tc.ok)
		}
		if !tc.ok { // (a good URL would be fetched: tests reach loopback only)
			if s, nerr := jwks.New(tc.url, jwks.Options{}); nerr == nil {
				s.Close()
				t.Errorf("New(%q): got no error, want the URL refused", tc.url)
			}
		}
	}
}

func TestSet_CloseTwice(t *testing.T) {
	t.Parallel()
	p := testidp.New(t, false)
	s, err := jwks.New(p.URL(), jwks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
}
