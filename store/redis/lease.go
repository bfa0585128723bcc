package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Leases are cluster-wide try-locks with a time to live: the widget-data fetch lock
// (one fetch per cluster) and the live-refresh lease (one refresher per widget).
type Leases struct {
	rdb    *goredis.Client
	prefix string
	id     string
}

// NewLeases returns leases on rdb with keys under prefix, taken in the name of id (the
// instance).
func NewLeases(rdb *goredis.Client, prefix, id string) *Leases {
	if prefix == "" {
		prefix = "dashsync:"
	}
	return &Leases{rdb: rdb, prefix: prefix, id: id}
}

// Acquire takes key for ttl (SET NX PX) and reports whether this caller got it.
func (l *Leases) Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return l.rdb.SetNX(ctx, l.prefix+key, l.id, ttl).Result()
}

// release deletes a key only while it is still ours: a lease that expired and was
// taken by another instance is left alone.
var release = goredis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Release gives key back before its time is up, if this caller still holds it.
func (l *Leases) Release(ctx context.Context, key string) error {
	return release.Run(ctx, l.rdb, []string{l.prefix + key}, l.id).Err()
}
