package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/widgetdata"
)

var _ widgetdata.Leases = (*Leases)(nil)

// Leases are the widgetdata.Leases on Redis, cluster-wide try-locks with a time to
// live: the widget-data fetch lock (one fetch per cluster) and the live-refresh lease
// (one refresher per widget). A lease is one key under prefix holding the id of the
// instance that took it (SET NX PX), expiring by Redis's own TTL (millisecond
// precision; a ttl under 1ms lasts 1ms).
type Leases struct {
	rdb    *goredis.Client
	prefix string
	id     string
}

// NewLeases returns leases on rdb with keys under prefix, taken in the name of id (the
// instance: ids must differ between instances, and Leases sharing an id are one).
func NewLeases(rdb *goredis.Client, prefix, id string) *Leases {
	if prefix == "" {
		prefix = "dashsync:"
	}
	return &Leases{rdb: rdb, prefix: prefix, id: id}
}

// Acquire implements widgetdata.Leases: it takes key for ttl (SET NX PX) unless key is
// held, and reports whether it did.
func (l *Leases) Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		// SET NX without PX (ttl 0, or -1ns: KEEPTTL) would take a lease that never
		// expires.
		return false, fmt.Errorf("redis leases: acquire %q: ttl %v is not positive", key, ttl)
	}
	return l.rdb.SetNX(ctx, l.prefix+key, l.id, ttl).Result()
}

// release deletes a key only while it is still ours: a lease that expired and was
// taken by another instance is left alone.
var release = goredis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Release implements widgetdata.Leases: it frees key before its time is up if this
// instance (its id) still holds it, and leaves it alone otherwise.
func (l *Leases) Release(ctx context.Context, key string) error {
	return release.Run(ctx, l.rdb, []string{l.prefix + key}, l.id).Err()
}
