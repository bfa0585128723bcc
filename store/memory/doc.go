// Package memory holds the in-process implementations of the seams, each passing the
// same conformance suite as its Redis counterpart:
//
//   - Broker, the hub.Broker (hub/brokertest): synchronous, lossless delivery among
//     the brokers of one Bus; the embedded default has one broker on a bus of its own,
//     and tests put several hubs on one Bus to play instances;
//   - Presence, the hub.Presence (hub/presencetest);
//   - ConnSlots, the hub.ConnSlots (hub/slotstest): one process's connection count;
//   - Limiter, the ratelimit.Limiter (ratelimit/limittest): a token bucket per key,
//     bounded by an LRU; also every instance's per-connection message budget;
//   - Cache, the widgetdata.Cache (widgetdata/cachetest): bounded in bytes, LRU
//     eviction, per-entry TTL;
//   - Leases, the widgetdata.Leases (widgetdata/leasetest): one process's try-locks.
//
// The embedded default (internal/app's Embedded) uses all but Leases: one instance
// decides alone, so only tests use them. It imports no other dashsync package but the
// seams it implements (hub, ratelimit, widgetdata), and its types are safe for
// concurrent use.
package memory
