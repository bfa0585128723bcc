package api

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	dsync "github.com/dashsync/dashsync/sync"
)

// MaxUserLen bounds the user id (the token's sub) in characters.
const MaxUserLen = dsync.MaxUserLen

// MintToken returns a token for user signed with secret (HS256), expiring ttl from now.
// A ttl ≤ 0 gives a token that is already expired (useful in tests only).
func MintToken(secret []byte, user string, ttl time.Duration) (string, error) {
	return MintTokenAt(secret, user, time.Now(), ttl)
}

// MintTokenAt is MintToken with the issuing time given.
func MintTokenAt(secret []byte, user string, now time.Time, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: no secret")
	}
	if err := checkUser(user); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	claims := jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

// VerifyToken checks a token against secret at time now: HS256 only, a valid
// signature, an exp that has not passed and a usable sub. It returns the user id (sub)
// and the expiry, or an unauthorized *dsync.Error saying what is wrong.
func VerifyToken(secret []byte, token string, now time.Time) (user string, exp time.Time, err error) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var claims jwt.RegisteredClaims
	if _, err := p.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return secret, nil }); err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return "", time.Time{}, dsync.Errorf(dsync.CodeUnauthorized, "the token has expired")
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return "", time.Time{}, dsync.Errorf(dsync.CodeUnauthorized, "the token has no expiry (exp)")
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return "", time.Time{}, dsync.Errorf(dsync.CodeUnauthorized, "the token's signature is not valid")
		}
		return "", time.Time{}, dsync.Errorf(dsync.CodeUnauthorized, "the token is not valid")
	}
	if err := checkUser(claims.Subject); err != nil {
		return "", time.Time{}, dsync.Errorf(dsync.CodeUnauthorized, "the token's subject (sub) is not a usable user id")
	}
	return claims.Subject, claims.ExpiresAt.Time, nil
}

// checkUser is the domain's rule for user ids: a token's sub that starts with
// "link:" (a link's actor) is refused, so that no user token can act as a link.
func checkUser(user string) error { return dsync.CheckUserID(user) }

// tokenFrom returns the bearer token of a request: from the Authorization header, or
// else from the access_token query parameter (browsers cannot set headers on a
// WebSocket upgrade).
func tokenFrom(c *gin.Context) (string, error) {
	if h := c.GetHeader("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", dsync.Errorf(dsync.CodeUnauthorized, "the Authorization header must be \"Bearer <token>\"")
		}
		return strings.TrimSpace(tok), nil
	}
	if tok := c.Query("access_token"); tok != "" {
		return tok, nil
	}
	return "", dsync.Errorf(dsync.CodeUnauthorized, "a bearer token is required")
}

// authenticate is the middleware of every /api route: it verifies the token and
// records its user for the handlers (userOf).
func (s *Server) authenticate(c *gin.Context) {
	tok, err := tokenFrom(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	var (
		user string
		exp  time.Time
	)
	if dsync.IsLinkToken(tok) {
		// A link is checked against the store on every use (SPEC §10): a revoked
		// or expired one fails at once on every instance.
		var a dsync.LinkActor
		a, err = s.svc.LinkUser(c.Request.Context(), tok)
		user, exp = a.Who, a.Expires
		c.Set(ctxLinkLayout, a.LayoutID)
	} else {
		user, exp, err = s.tokens.Verify(c.Request.Context(), tok, s.now())
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Set(ctxUser, user)
	c.Set(ctxExp, exp)
	c.Next()
}

// userOf returns the authenticated user of a request under /api.
func userOf(c *gin.Context) string { return c.GetString(ctxUser) }
