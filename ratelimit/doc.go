// Package ratelimit is the seam of SPEC §9's rate limits: a Limiter keeps token
// budgets by key, and Limits names the three budgets of SPEC §9 dashsync spends (REST
// requests per user, WebSocket messages per connection, edits per user); the fourth,
// widget-source fetches per user (SPEC §12, FetchKey), is the widget data service's.
//
// Implementations live beside the other backends: store/memory (in-process, per
// instance) and store/redis (GCRA on Redis, so one user's budget holds across every
// instance); both pass the conformance suite in ratelimit/limittest. api, hub and
// widgetdata are the callers: they skip unlimited budgets, answer a refusal with rate_limited and
// retryAfterMs, and fail open when a Limiter errs (a limiter outage must not take the
// server down).
//
// ratelimit imports no other dashsync package. Its types are plain values.
package ratelimit
