// Package widgetdata produces widget data: it fetches from a widget's source through the
// registry of source kinds, keeps results in a Cache (cache-first reads, a longer-lived
// last-good copy for stale-if-error), collapses concurrent misses into one fetch, and
// answers batches in parallel with a bound on concurrency.
//
// It imports sync (the domain types) and nothing else of dashsync. Service is safe for
// concurrent use.
package widgetdata
