// Package api is dashsync's HTTP API: the gin router with the REST routes of SPEC §4,
// the authentication middleware (JWT: HS256 with the server's secret, and an identity
// provider's RS256, ES256 and EdDSA tokens through a KeySource such as a *jwks.Set;
// Verifier, tokens.go), request decoding and validation, the
// REST and edit rate limits, request logging and metrics, the health, readiness and
// metrics endpoints, the WebSocket upgrade, and the demo page's static files
// (Config.Web) with, in dev mode only, the page's token endpoint. Every error is
// answered through the one table of package wire (wire.Describe).
//
// It turns requests into calls of the domain and of widget data, and domain errors
// into responses, and nothing else: no business rule lives here. It depends on what it
// calls only through the small interfaces it declares in domain.go: Domain (a
// *sync.Service), Data (a *widgetdata.Service) and Sockets (a *hub.Hub, which serves
// the upgraded connection). It imports sync, widgetdata, ratelimit, wire and jwks, and hub
// for hub.Identity and the compile-time check that a *hub.Hub is a Sockets; never a
// store implementation, internal/app or cmd. internal/app wires the concrete types
// into Config. Of the server's packages only api imports the validator, and only api
// and cmd/dashsync (which sets gin's release mode) import gin.
//
// Concurrency: a Server holds no per-request state and is safe for concurrent use;
// every handler works under its request's context.
package api
