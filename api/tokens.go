package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/dashsync/dashsync/jwks"
	dsync "github.com/dashsync/dashsync/sync"
)

// DefaultUserClaim is the claim of a provider's token that holds the user id.
const DefaultUserClaim = "sub"

// KeySource gives the public key that verifies a token an identity provider signed:
// a *jwks.Set. Key is called only for a token whose algorithm is one of
// jwks.Algorithms, and must return only a key of the kind that algorithm needs. An
// error wrapping jwks.ErrNotReady (no key set at hand yet) makes the answer
// unavailable; any other refuses the token. ctx bounds a fetch of the key set.
//
// A KeySource may also have Generation() uint64, which grows whenever its keys change:
// tokens verified with an older generation are verified again (a withdrawn key stops
// verifying at once, not when the tokens it signed expire).
type KeySource interface {
	Key(ctx context.Context, t *jwt.Token) (any, error)
}

// generationer is the optional ability of a KeySource to tell that its keys changed.
type generationer interface{ Generation() uint64 }

// IdentityProvider is how tokens an identity provider signs are verified (SPEC §13).
// Issuer, Audience and UserClaim apply to those tokens only: the HS256 tokens of the
// server's secret are its own (dashsync token, the backend's), with the user in sub.
type IdentityProvider struct {
	// Keys are the provider's public keys (RS256, ES256, EdDSA). Required.
	Keys KeySource
	// Issuer, when set, must be the token's iss; empty: iss is not checked.
	Issuer string
	// Audience, when set, must be the token's aud or one of them; empty: aud is not
	// checked.
	Audience string
	// UserClaim names the claim holding the user id, a string that must pass
	// dsync.CheckUserID; default DefaultUserClaim (sub).
	UserClaim string
}

// Verifier checks bearer tokens: HS256 tokens against the server's secret, and tokens
// an identity provider signed against its keys; either or both may be configured. It
// remembers the tokens that verified (a client sends the same token with every
// request, and checking its signature and claims again each time costs more than the
// rest of a cached read); expiry is checked on every use. It is safe for concurrent
// use.
type Verifier struct {
	secret  []byte
	idp     *IdentityProvider
	gen     generationer // the provider's keys' generation; nil: none
	methods []string     // of the provider's tokens
	cache   *lru.Cache[string, verifiedToken]
}

// verifiedToken is a token whose signature and claims were checked.
type verifiedToken struct {
	user string
	exp  time.Time
	// byProvider: verified with the provider's keys of generation gen.
	byProvider bool
	gen        uint64
}

// tokenCacheSize bounds how many verified tokens a Verifier remembers.
const tokenCacheSize = 10_000

// NewVerifier returns a Verifier of HS256 tokens signed with secret (none when empty)
// and of tokens idp signed (none when nil). One of them is required.
func NewVerifier(secret []byte, idp *IdentityProvider) (*Verifier, error) {
	if len(secret) == 0 && idp == nil {
		return nil, errors.New("token verifier: a secret or an identity provider is required")
	}
	v := &Verifier{secret: secret}
	if idp != nil {
		if idp.Keys == nil {
			return nil, errors.New("token verifier: the identity provider has no Keys")
		}
		p := *idp
		if p.UserClaim == "" {
			p.UserClaim = DefaultUserClaim
		}
		v.idp = &p
		v.gen, _ = p.Keys.(generationer)
		v.methods = slices.Clone(jwks.Algorithms)
	}
	v.cache, _ = lru.New[string, verifiedToken](tokenCacheSize) // fails only for a size ≤ 0
	return v, nil
}

// Verify checks a token at time now and returns its user and expiry, or an
// unauthorized *dsync.Error saying what is wrong: a token whose algorithm is not one
// its kind of key verifies (HS256 for the secret; RS256, ES256 or EdDSA for the
// provider's keys) is refused before its signature is looked at. It is unavailable
// while the provider's key set has not been fetched yet. ctx bounds a fetch of the
// provider's keys for a kid they do not hold.
func (v *Verifier) Verify(ctx context.Context, token string, now time.Time) (user string, exp time.Time, err error) {
	gen := v.generation()
	if c, ok := v.cache.Get(token); ok {
		if now.Before(c.exp) && (!c.byProvider || c.gen == gen) {
			return c.user, c.exp, nil
		}
		v.cache.Remove(token)
	}
	alg := algOf(token)
	var byProvider bool
	switch {
	case alg == jwt.SigningMethodHS256.Alg() && len(v.secret) > 0:
		user, exp, err = VerifyToken(v.secret, token, now)
	case v.idp != nil && slices.Contains(v.methods, alg):
		byProvider = true
		user, exp, err = v.verifyProvider(ctx, token, now)
	case alg == "":
		err = dsync.Errorf(dsync.CodeUnauthorized, "the token is not valid")
	default:
		err = dsync.Errorf(dsync.CodeUnauthorized, "the token's algorithm (alg %q) is not accepted", alg)
	}
	if err == nil {
		v.cache.Add(token, verifiedToken{user: user, exp: exp, byProvider: byProvider, gen: gen})
	}
	return user, exp, err
}

func (v *Verifier) generation() uint64 {
	if v.gen == nil {
		return 0
	}
	return v.gen.Generation()
}

// algOf returns the alg of a token's header, "" when it has none or is no JWT. It
// only chooses how the token is checked: the parser checks it again.
func algOf(token string) string {
	head, _, ok := strings.Cut(token, ".")
	if !ok || len(head) > 4096 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}

// verifyProvider checks a token against the identity provider's keys: a valid
// signature by one of them, an exp that has not passed, iss and aud when configured,
// and a usable user id in the user claim.
func (v *Verifier) verifyProvider(ctx context.Context, token string, now time.Time) (string, time.Time, error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	}
	if v.idp.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.idp.Issuer))
	}
	if v.idp.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.idp.Audience))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.idp.Keys.Key(ctx, t)
	})
	if err != nil {
		return "", time.Time{}, providerError(err, claims)
	}
	user, _ := claims[v.idp.UserClaim].(string)
	if checkUser(user) != nil {
		return "", time.Time{}, dsync.Errorf(dsync.CodeUnauthorized, "the token's %s claim is not a usable user id", v.idp.UserClaim)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return "", time.Time{}, dsync.Errorf(dsync.CodeUnauthorized, "the token has no expiry (exp)")
	}
	return user, exp.Time, nil
}

// providerError says what is wrong with a provider's token that did not verify.
func providerError(err error, claims jwt.MapClaims) error {
	unauthorized := func(msg string) error { return dsync.Errorf(dsync.CodeUnauthorized, "%s", msg) }
	switch {
	case errors.Is(err, jwks.ErrNotReady):
		return &dsync.Error{Code: dsync.CodeUnavailable, Message: "the identity provider's keys are not available yet; try again shortly", Err: err}
	case errors.Is(err, jwks.ErrUnknownKey):
		return unauthorized("the token's key (kid) is not one of the identity provider's keys")
	case errors.Is(err, jwks.ErrAlgorithm):
		return unauthorized("the token's algorithm does not fit the identity provider's key")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthorized("the token's signature is not valid")
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized("the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthorized("the token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthorized("the token's issuer (iss) is not the one configured")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthorized("the token's audience (aud) does not name this server")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		for _, c := range []struct{ claim, name string }{{"exp", "expiry"}, {"iss", "issuer"}, {"aud", "audience"}} {
			if _, ok := claims[c.claim]; !ok {
				return unauthorized(fmt.Sprintf("the token has no %s (%s)", c.name, c.claim))
			}
		}
	}
	return unauthorized("the token is not valid")
}
