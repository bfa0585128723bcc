package sync

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// Role is what a user may do with one layout (SPEC §10): RoleOwner > RoleEditor >
// RoleViewer. The zero Role is no access at all.
type Role string

// The roles.
const (
	RoleViewer Role = "viewer"
	RoleEditor Role = "editor"
	RoleOwner  Role = "owner"
)

// rank orders the roles; 0 is no access.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleEditor:
		return 2
	case RoleOwner:
		return 3
	}
	return 0
}

// Access is who a layout is shared with, besides its owner.
type Access struct {
	LayoutID string
	Owner    string
	// Users maps each member's user id to RoleViewer or RoleEditor; the owner is
	// never listed.
	Users map[string]Role
	// Version counts the changes of the access list: 0 until the first one.
	Version int64
}

// Link is a read-only live link to one layout (SPEC §10). Its token is shown once,
// when it is made; the store keeps only the token secret's SHA-256.
type Link struct {
	ID        string `json:"id"`
	LayoutID  string `json:"-"`
	Role      Role   `json:"role"`
	Hash      []byte `json:"-"`
	CreatedAt Time   `json:"createdAt"`
	ExpiresAt Time   `json:"expiresAt"`
	Revoked   bool   `json:"-"`
}

// SharedLayout is a layout shared with a user, with the user's role on it.
type SharedLayout struct {
	Layout Layout
	Role   Role
}

// linkTokenPrefix starts every link token: "dsl_<layout id>_<link id>_<secret>". The
// layout's id is in the token so that a page holding only the token (the link page,
// `/?link=<token>`) knows what to read; the server checks it is the link's.
const linkTokenPrefix = "dsl_"

// LinkUserPrefix starts the user id a link acts as ("link:<link id>"): in presence,
// in rate limits, as an author. No user token may carry a subject that starts with it.
const LinkUserPrefix = "link:"

// IsLinkToken reports whether a bearer token has the form of a link token (it may
// still be unknown, revoked or expired).
func IsLinkToken(tok string) bool { return strings.HasPrefix(tok, linkTokenPrefix) }

// linkToken makes the token of link id of layout with secret.
func linkToken(layout, id string, secret []byte) string {
	return linkTokenPrefix + layout + "_" + id + "_" + base64.RawURLEncoding.EncodeToString(secret)
}

// parseLinkToken splits a link token into its layout's id, its link id (made by the
// server, it has no '_') and the hash of its secret.
func parseLinkToken(tok string) (layout, id string, hash []byte, ok bool) {
	rest, ok := strings.CutPrefix(tok, linkTokenPrefix)
	if !ok {
		return "", "", nil, false
	}
	// The secret is of fixed length and its alphabet has '_': the separator is the
	// byte before it, not the last '_' of the token.
	i := len(rest) - base64.RawURLEncoding.EncodedLen(linkSecretLen) - 1
	if i <= 0 || rest[i] != '_' {
		return "", "", nil, false
	}
	secret, err := base64.RawURLEncoding.DecodeString(rest[i+1:])
	if err != nil || len(secret) != linkSecretLen {
		return "", "", nil, false
	}
	layout, id, ok = cutLast(rest[:i], '_')
	if !ok || layout == "" || id == "" {
		return "", "", nil, false
	}
	h := sha256.Sum256(secret)
	return layout, id, h[:], true
}

// cutLast slices s around the last sep.
func cutLast(s string, sep byte) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// linkSecretLen is the length of a link token's random secret, in bytes.
const linkSecretLen = 32

func sameHash(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
