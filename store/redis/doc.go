// Package redis holds the Redis implementations used when dashsync runs as several
// instances: the hub's Broker (pub/sub between instances, with loss reported after a
// reconnect), the rate Limiter (GCRA, one budget per key across every instance) and the
// widget-data Cache (TTL keys shared by every instance). Every key and channel carries a
// configurable prefix. It imports the seams it implements (hub, ratelimit, widgetdata)
// and no other dashsync package; its types are safe for concurrent use.
package redis
