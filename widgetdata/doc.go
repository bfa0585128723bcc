// Package widgetdata produces widget data: it fetches from a widget's source through the
// registry of source kinds, keeps results in a Cache (cache-first reads; each result is
// kept once, past its TTL, to be served stale if a fetch fails), collapses concurrent
// misses into one fetch per process (singleflight) and, with Leases, into one fetch
// per cluster, and answers batches in parallel with a bound on concurrency.
//
// Follow keeps a widget refreshed while an instance has subscribers to it (live.go):
// each Follow starts a loop that fetches every refresh period (the hub follows each
// subscribed widget once per instance), and with Leases one instance fetches per
// period. Every new data, fetched or pushed, is told to the Announcer as a
// DataChanged; the hub turns it into the `data` frame subscribers receive.
//
// It keeps SPEC §12's bounds on fetches: refreshSeconds and ttlSeconds are used only
// within their bounds (RefreshPeriod, TTL); a forced refresh within MinFetchInterval of
// the widget's last fetch is answered with it; each owner has a fetch budget; and a
// source that panics or ignores its deadline fails that fetch, never the process.
//
// It declares the seams it consumes: Cache, Leases, Fetcher, Announcer and Widgets
// (the widget definitions the live refresh reads). Every Cache passes the suite in
// widgetdata/cachetest and every Leases the one in widgetdata/leasetest. It imports
// sync (the domain types) and ratelimit (the fetch budget's seam), and nothing else of
// dashsync. Service is safe for concurrent use; Close ends the live refresh loops.
package widgetdata
