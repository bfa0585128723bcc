package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/widgetdata"
)

var _ widgetdata.Cache = (*Cache)(nil)

// Cache is the widgetdata.Cache on Redis: one string key per entry under
// prefix+"cache:", expiring by Redis's own TTL (millisecond precision), so every
// instance sees the same data and a Delete takes effect on all of them at once. The
// keys widgetdata builds already carry the owner.
type Cache struct {
	rdb    *goredis.Client
	prefix string
}

// NewCache returns a cache on rdb with keys under prefix ("" gives "dashsync:"). The
// caller keeps ownership of rdb (and closes it).
func NewCache(rdb *goredis.Client, prefix string) *Cache {
	if prefix == "" {
		prefix = "dashsync:"
	}
	return &Cache{rdb: rdb, prefix: prefix + "cache:"}
}

// Get implements widgetdata.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	b, err := c.rdb.Get(ctx, c.prefix+key).Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redis cache get: %w", err)
	}
	return b, true, nil
}

// Set implements widgetdata.Cache. TTLs under a millisecond are rounded up to one.
func (c *Cache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis cache: set %q: ttl %v is not positive", key, ttl)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.rdb.Set(ctx, c.prefix+key, val, max(ttl, time.Millisecond)).Err(); err != nil {
		return fmt.Errorf("redis cache set: %w", err)
	}
	return nil
}

// Delete implements widgetdata.Cache.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = c.prefix + k
	}
	if err := c.rdb.Del(ctx, ks...).Err(); err != nil {
		return fmt.Errorf("redis cache delete: %w", err)
	}
	return nil
}
