// Package widgetdata produces widget data: it fetches from a widget's source through the
// registry of source kinds, keeps results in a Cache (cache-first reads; each result is
// kept once, past its TTL, to be served stale if a fetch fails), collapses concurrent
// misses into one fetch, and answers batches in parallel with a bound on concurrency.
//
// It keeps SPEC §12's bounds on fetches: refreshSeconds and ttlSeconds are used only
// within their bounds (RefreshPeriod, TTL); a forced refresh within MinFetchInterval of
// the widget's last fetch is answered with it; each owner has a fetch budget; and a
// source that panics or ignores its deadline fails that fetch, never the process.
//
// It imports sync (the domain types) and ratelimit (the fetch budget's seam), and
// nothing else of dashsync. Service is safe for concurrent use.
package widgetdata
