// Package api is dashsync's HTTP API: the gin router with the REST routes of SPEC §4,
// the authentication middleware (JWT, HS256), request decoding and validation, the one
// table that turns error codes into HTTP answers, request logging and metrics, and the
// health, readiness and metrics endpoints, the WebSocket upgrade, and the demo page's
// static files (Config.Web) with, in dev mode only, the page's token endpoint.
//
// It turns requests into calls of the domain (sync) and of widgetdata, and domain
// errors into responses, and nothing else: no business rule lives here. It is the only
// package that imports gin and the validator. It must not import the store
// implementations, the hub or cmd; main wires concrete types into Config.
//
// Concurrency: a Server holds no per-request state and is safe for concurrent use;
// every handler works under its request's context.
package api
