// Package jwks keeps an identity provider's signing keys (a JSON Web Key Set, RFC 7517)
// for verifying the tokens it issues (SPEC §13): fetched from the provider's JWKS URL
// in the background, fetched again on a timer and when a token names a key id (kid)
// the set does not hold, at most once per Options.UnknownKIDInterval, and held in
// memory between fetches. A fetch that fails keeps the keys already held.
//
// New never waits for the provider: a Set that has not fetched a key set yet answers
// ErrNotReady, its Ready check fails, and it keeps retrying (1 s, doubling up to
// Options.MaxRetry) until the provider answers. Parsing and checking the keys is
// github.com/MicahParks/jwkset's and choosing a token's key
// github.com/MicahParks/keyfunc/v3's; this package owns when to fetch.
//
// Only public signature keys are kept: RSA (2048 bits or more, for RS256), EC P-256
// (ES256) and Ed25519 (EdDSA); a key of another kind, or marked for encryption
// (use "enc"), is skipped. Key returns a key only for the algorithm of its kind, so a
// token cannot pick how a key is used (no algorithm confusion).
//
// It imports no other dashsync package. A Set is safe for concurrent use; Close stops
// its goroutine and waits for it.
package jwks
