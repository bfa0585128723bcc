// Package memory holds the in-process implementations used by the embedded default:
// the widget-data cache (bounded, per-entry TTL) and the rate limiter (a token bucket
// per key, bounded by an LRU). It imports no other dashsync package but the seams it
// implements, and is safe for concurrent use.
package memory
