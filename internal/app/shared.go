package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/store/memory"
	"github.com/dashsync/dashsync/store/redis"
)

// Embedded returns the in-process backends of one instance: broker, presence,
// connection slots, rate limiter, and a widget-data cache of at most cacheBytes (0:
// memory's default). There are no leases: one instance decides alone.
func Embedded(cacheBytes int64) Shared {
	b := memory.NewBroker()
	cache := memory.NewCache(cacheBytes, nil)
	return Shared{Broker: b, Presence: memory.NewPresence(0, nil), Slots: memory.NewConnSlots(0, nil), Cache: cache,
		Limiter: memory.NewLimiter(memory.LimiterOptions{}), Close: func() { _ = b.Close(); _ = cache.Close() }}
}

// OpenRedis returns the Redis backends on a new client of url, with keys and channels
// under prefix and leases taken as instance. Redis not answering is not fatal: the
// instance serves its own sockets and catches up when Redis is back, and rate limits
// fail open meanwhile. Close closes the client.
func OpenRedis(ctx context.Context, url, prefix, instance string, log *slog.Logger) (Shared, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return Shared{}, fmt.Errorf("--redis-url: %w", err)
	}
	// Without it, go-redis waits out ReadTimeout on a Redis that stopped answering,
	// whatever the context says, and a hung Redis would hold edits' acknowledgements
	// far past the broker's publish timeout (SPEC §12).
	opt.ContextTimeoutEnabled = true
	rdb := goredis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		log.Warn("redis does not answer; serving local connections until it does", "addr", opt.Addr, "err", err)
	} else {
		log.Info("redis connected", "addr", opt.Addr)
	}
	sh := OnRedis(rdb, prefix, instance, log)
	closeBroker := sh.Close
	sh.Close = func() { closeBroker(); _ = rdb.Close() }
	return sh, nil
}

// OnRedis returns the Redis backends on rdb (which the caller closes), with keys and
// channels under prefix and leases taken as instance, and the readiness check "redis"
// (a PING). Close closes the broker.
func OnRedis(rdb *goredis.Client, prefix, instance string, log *slog.Logger) Shared {
	b := redis.NewBroker(rdb, redis.BrokerOptions{Prefix: prefix, Logger: log})
	check := api.Check{Name: "redis", Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}
	return Shared{
		Broker:   b,
		Presence: redis.NewPresence(rdb, prefix, 0),
		Slots:    redis.NewConnSlots(rdb, prefix, 0),
		Limiter:  redis.NewLimiter(rdb, redis.LimiterOptions{Prefix: prefix}),
		Cache:    redis.NewCache(rdb, prefix),
		Leases:   redis.NewLeases(rdb, prefix, instance),
		Checks:   []api.Check{check},
		Close:    func() { _ = b.Close() },
	}
}
