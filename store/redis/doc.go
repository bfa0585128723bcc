// Package redis holds the Redis implementations used when dashsync runs as several
// instances, each a seam of the package that consumes it:
//
//   - Broker, the hub.Broker: pub/sub between instances, with loss reported after a
//     reconnect;
//   - Presence, the hub.Presence: one hash per layout of who is on it;
//   - ConnSlots, the hub.ConnSlots: one sorted set per user of its connections, so a
//     user's connection limit holds across instances;
//   - Limiter, the ratelimit.Limiter: GCRA, one budget per key across every instance;
//   - Cache, the widgetdata.Cache: TTL keys shared by every instance;
//   - Leases, the widgetdata.Leases: SET NX PX try-locks, so one instance fetches a
//     widget and one refreshes it live.
//
// Each passes its seam's conformance suite (hub/brokertest, hub/presencetest,
// hub/slotstest, ratelimit/limittest, widgetdata/cachetest, widgetdata/leasetest).
// Every key and channel carries a configurable prefix; the caller owns the Redis
// client and closes it. It imports the seams it implements (hub, ratelimit,
// widgetdata) and no other dashsync package; its types are safe for concurrent use.
package redis
