package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// The algorithms a Set verifies, one per kind of key it keeps.
const (
	AlgRS256 = "RS256" // RSA, at least MinRSABits
	AlgES256 = "ES256" // EC on P-256
	AlgEdDSA = "EdDSA" // Ed25519
)

// Algorithms are the token algorithms a Set's keys verify.
var Algorithms = []string{AlgRS256, AlgES256, AlgEdDSA}

// MinRSABits is the smallest RSA key kept.
const MinRSABits = 2048

// MaxSetBytes bounds a fetched key set's body.
const MaxSetBytes = 1 << 20

// Defaults of Options.
const (
	DefaultFetchTimeout       = 10 * time.Second
	DefaultRefreshInterval    = 15 * time.Minute
	DefaultMaxRetry           = time.Minute
	DefaultUnknownKIDInterval = time.Minute
	firstRetry                = time.Second
)

var (
	// ErrNotReady is Key's error while the Set holds no key set: none has been fetched
	// yet, or the last one fetched held no usable key.
	ErrNotReady = errors.New("the identity provider's key set is not available yet")
	// ErrUnknownKey is Key's error when no key held has the token's kid (after a fetch
	// for it, when the rate limit allowed one).
	ErrUnknownKey = errors.New("no key of the identity provider's key set has the token's kid")
	// ErrAlgorithm is Key's error for a token whose algorithm is not one of
	// Algorithms, or that no key held of the right kind verifies.
	ErrAlgorithm = errors.New("the token's algorithm does not fit the identity provider's keys")
)

// Options configure a Set. Zero values are the defaults.
type Options struct {
	// Client fetches the key set; default a client of its own (http.DefaultTransport).
	Client *http.Client
	// FetchTimeout bounds each fetch; default DefaultFetchTimeout (10 s).
	FetchTimeout time.Duration
	// RefreshInterval is how long a fetched key set is used before it is fetched
	// again; default DefaultRefreshInterval (15 min).
	RefreshInterval time.Duration
	// MaxRetry bounds the wait before retrying a failed fetch (1 s, doubling each
	// time); default DefaultMaxRetry (1 min), and never more than RefreshInterval.
	MaxRetry time.Duration
	// UnknownKIDInterval is the least time between two fetches made for tokens naming
	// a kid the set does not hold, so that made-up kids cannot make the server hammer
	// the provider; default DefaultUnknownKIDInterval (1 min). A token arriving while
	// such a fetch is under way waits for it.
	UnknownKIDInterval time.Duration
	// Logger receives fetch failures and key set changes; nil discards.
	Logger *slog.Logger
}

// Set is an identity provider's key set, kept fresh in the background. Build it with
// New; it is safe for concurrent use.
type Set struct {
	url     string
	client  *http.Client
	opts    Options
	log     *slog.Logger
	unknown *rate.Limiter

	ctx    context.Context // cancelled by Close; bounds every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup

	held atomic.Pointer[keys]

	mu       sync.Mutex
	inflight chan struct{} // closed when the fetch under way ends; nil: none
	lastErr  error         // of the last fetch; nil after a success
}

// keys is one fetched key set.
type keys struct {
	kf  keyfunc.Keyfunc
	n   int      // usable keys
	sum [32]byte // of the usable keys, to tell a changed set
	gen uint64
}

// CheckURL reports whether raw is a JWKS URL a Set can fetch: absolute http or https
// with a host.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want an http or https URL", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q: the URL has no host", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q: the URL carries credentials; the key set is public", raw)
	}
	return nil
}

// New returns a Set fetching the key set at rawURL, and starts fetching it in the
// background; it never waits for the provider. Its error is for a URL CheckURL
// refuses. Close stops it.
func New(rawURL string, o Options) (*Set, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, err
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = DefaultMaxRetry
	}
	o.MaxRetry = min(o.MaxRetry, o.RefreshInterval)
	if o.UnknownKIDInterval <= 0 {
		o.UnknownKIDInterval = DefaultUnknownKIDInterval
	}
	client := o.Client
	if client == nil {
		client = &http.Client{}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Set{
		url: rawURL, client: client, opts: o, log: log.With("jwks_url", rawURL),
		unknown: rate.NewLimiter(rate.Every(o.UnknownKIDInterval), 1),
		ctx:     ctx, cancel: cancel,
	}
	s.wg.Go(s.refresher)
	return s, nil
}

// Close stops the background fetches and waits for them. Calling it twice is safe;
// a closed Set keeps answering with the keys it holds.
func (s *Set) Close() {
	// Under mu: startFetch starts no fetch goroutine after this (wg.Add never races
	// with Wait).
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// URL is the key set's URL.
func (s *Set) URL() string { return s.url }

// Ready is the readiness check: nil once the Set holds a key set with a usable key,
// else an error saying what is missing and why the last fetch failed.
func (s *Set) Ready(context.Context) error {
	if k := s.held.Load(); k != nil && k.n > 0 {
		return nil
	}
	s.mu.Lock()
	last := s.lastErr
	s.mu.Unlock()
	if k := s.held.Load(); k != nil {
		return fmt.Errorf("the key set at %s holds no usable key (RS256, ES256 or EdDSA)", s.url)
	}
	if last == nil {
		return fmt.Errorf("the key set at %s has not been fetched yet", s.url)
	}
	return fmt.Errorf("no key set fetched from %s yet: %w", s.url, last)
}

// Generation counts the changes of the key set held: it grows when a fetch brings keys
// that differ from the ones held. A verified token cache drops what it verified with
// an older generation (a key may have been withdrawn).
func (s *Set) Generation() uint64 {
	if k := s.held.Load(); k != nil {
		return k.gen
	}
	return 0
}

// Key returns the key that verifies t: the one with t's kid (or, for a token without
// kid, every key held that fits its algorithm, as a jwt.VerificationKeySet), of the
// kind t's algorithm needs. A kid the set does not hold causes a fetch when the rate
// limit allows, and a wait for it; ctx bounds the wait. Errors: ErrNotReady,
// ErrUnknownKey, ErrAlgorithm, or ctx's.
func (s *Set) Key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if !slices.Contains(Algorithms, alg) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	k := s.held.Load()
	if k == nil || k.n == 0 {
		if err := s.refreshFor(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotReady, err)
		}
		if k = s.held.Load(); k == nil || k.n == 0 {
			return nil, ErrNotReady
		}
	}
	key, err := k.key(ctx, t)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		if err := s.refreshFor(ctx); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnknownKey, err)
		}
		key, err = s.held.Load().key(ctx, t)
	}
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return nil, ErrUnknownKey
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrAlgorithm, err)
	}
	return key, nil
}

// key picks t's key among k with keyfunc, keeping only keys of the kind t's algorithm
// needs.
func (k *keys) key(ctx context.Context, t *jwt.Token) (any, error) {
	key, err := k.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		return nil, err
	}
	alg := t.Method.Alg()
	if set, ok := key.(jwt.VerificationKeySet); ok {
		var fit jwt.VerificationKeySet
		for _, kk := range set.Keys {
			if fits(alg, kk) {
				fit.Keys = append(fit.Keys, kk)
			}
		}
		if len(fit.Keys) == 0 {
			return nil, errors.New("no key of the set fits the algorithm")
		}
		return fit, nil
	}
	if !fits(alg, key) {
		return nil, fmt.Errorf("the key with the token's kid is not a key for %s", alg)
	}
	return key, nil
}

// fits reports whether key verifies tokens of alg: an RSA key RS256 only, a P-256 key
// ES256 only, an Ed25519 key EdDSA only.
func fits(alg string, key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == AlgRS256 && k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		return alg == AlgES256 && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == AlgEdDSA && len(k) == ed25519.PublicKeySize
	}
	return false
}

// refreshFor fetches the key set for a token the keys held cannot verify: it joins
// the fetch under way, or starts one when the unknown-kid rate limit allows. nil
// means a fetch ended (not that it succeeded); without one allowed it returns nil at
// once, and the caller answers from the keys held.
func (s *Set) refreshFor(ctx context.Context) error {
	done := s.startFetch(true)
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFetch starts a fetch, or returns the one under way; limited: only when the
// unknown-kid rate limit allows (else nil).
func (s *Set) startFetch(limited bool) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight
	}
	if s.ctx.Err() != nil || limited && !s.unknown.Allow() {
		return nil
	}
	done := make(chan struct{})
	s.inflight = done
	s.wg.Go(func() {
		err := s.fetch()
		s.mu.Lock()
		s.inflight, s.lastErr = nil, err
		s.mu.Unlock()
		close(done)
	})
	return done
}

// refresher fetches the key set now, then again every RefreshInterval after a success
// and, after a failure, after 1 s doubling up to MaxRetry, until Close.
func (s *Set) refresher() {
	retry := firstRetry
	for {
		if done := s.startFetch(false); done != nil {
			select {
			case <-done:
			case <-s.ctx.Done():
				return
			}
		}
		s.mu.Lock()
		failed := s.lastErr != nil
		s.mu.Unlock()
		wait := s.opts.RefreshInterval
		if failed {
			wait, retry = retry, min(2*retry, s.opts.MaxRetry)
		} else {
			retry = firstRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

// fetch gets the key set once and, when it parses, holds its usable keys instead of
// the ones held; a failure keeps them.
func (s *Set) fetch() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.FetchTimeout)
	defer cancel()
	set, err := s.get(ctx)
	if err != nil {
		s.log.Warn("fetching the identity provider's key set failed", "err", err)
		return err
	}
	k, skipped, err := parse(set)
	if err != nil {
		s.log.Warn("the identity provider's key set does not parse", "err", err)
		return err
	}
	old := s.held.Load()
	switch {
	case old == nil:
		k.gen = 1
		s.log.Info("identity provider's key set fetched", "keys", k.n, "skipped", skipped)
	case old.sum != k.sum:
		k.gen = old.gen + 1
		s.log.Info("identity provider's key set changed", "keys", k.n, "skipped", skipped)
	default:
		k.gen = old.gen
	}
	if k.n == 0 {
		s.log.Warn("the identity provider's key set holds no usable key (RS256, ES256 or EdDSA)", "skipped", skipped)
	}
	s.held.Store(k)
	return nil
}

// get fetches the key set's body, at most MaxSetBytes.
func (s *Set) get(ctx context.Context) (jwkset.JWKSMarshal, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return jwkset.JWKSMarshal{}, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := s.client.Do(req)
	if err != nil {
		return jwkset.JWKSMarshal{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return jwkset.JWKSMarshal{}, fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSetBytes+1))
	if err != nil {
		return jwkset.JWKSMarshal{}, fmt.Errorf("GET %s: %w", s.url, err)
	}
	if len(body) > MaxSetBytes {
		return jwkset.JWKSMarshal{}, fmt.Errorf("GET %s: the key set is over %d bytes", s.url, MaxSetBytes)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return jwkset.JWKSMarshal{}, fmt.Errorf("GET %s: not a JSON Web Key Set: %w", s.url, err)
	}
	return set, nil
}

// parse keeps the usable keys of set: public signature keys of a kind in Algorithms.
// It reports how many it skipped; its error is for a set that cannot be used at all.
func parse(set jwkset.JWKSMarshal) (*keys, int, error) {
	store := jwkset.NewMemoryStorage()
	h := sha256.New()
	n, skipped := 0, 0
	for _, m := range set.Keys {
		if m.USE == jwkset.UseEnc {
			skipped++
			continue
		}
		// Private: false reads the public part only (and no symmetric key).
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil || !usable(jwk.Key()) {
			skipped++
			continue
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			return nil, 0, err
		}
		b, _ := json.Marshal(jwk.Marshal())
		h.Write(b)
		h.Write([]byte{0})
		n++
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: store, UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
	if err != nil {
		return nil, 0, err
	}
	k := &keys{kf: kf, n: n}
	h.Sum(k.sum[:0])
	return k, skipped, nil
}

// usable reports whether key fits one of Algorithms.
func usable(key any) bool {
	for _, alg := range Algorithms {
		if fits(alg, key) {
			return true
		}
	}
	return false
}
