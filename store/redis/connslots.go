package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/hub"
)

var _ hub.ConnSlots = (*ConnSlots)(nil)

// DefaultSlotTTL is how long a connection slot lives without a refresh: the slots of
// an instance that died free themselves within this time. The hub refreshes every
// PresenceRefresh (5 s by default), well inside it.
const DefaultSlotTTL = 30 * time.Second

// acquireScript takes a slot in one step, so concurrent upgrades on any instance
// never grant more than max. KEYS[1] is the user's sorted set (member: client id,
// score: expiry in Redis's unix milliseconds); ARGV: conn, max, ttl in ms. Redis's
// clock is the only clock, so instances' clocks may disagree.
var acquireScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

// refreshScript renews (or takes again) the slots ARGV[2:] for ARGV[1] ms.
var refreshScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

// ConnSlots is the hub.ConnSlots on Redis: a sorted set per user of its connections'
// client ids, scored by when each slot expires; every instance on one Redis (and
// prefix) counts into the same sets. The set itself expires with its last slot, so a
// user with no connection leaves no key behind.
type ConnSlots struct {
	rdb    *goredis.Client
	prefix string
	ttl    time.Duration
}

// NewConnSlots returns a slot store on rdb with keys under prefix ("" gives
// "dashsync:"); slots live ttl (0: DefaultSlotTTL, at least 1 ms) without a refresh.
// The caller keeps ownership of rdb, whose options should set ContextTimeoutEnabled:
// without it a Redis that stops answering holds a call for the client's ReadTimeout,
// whatever the context says.
func NewConnSlots(rdb *goredis.Client, prefix string, ttl time.Duration) *ConnSlots {
	if prefix == "" {
		prefix = "dashsync:"
	}
	if ttl <= 0 {
		ttl = DefaultSlotTTL
	}
	return &ConnSlots{rdb: rdb, prefix: prefix, ttl: max(ttl, time.Millisecond)}
}

func (s *ConnSlots) key(user string) string { return s.prefix + "conns:" + user }

// Acquire implements hub.ConnSlots.
func (s *ConnSlots) Acquire(ctx context.Context, user, conn string, max int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	n, err := acquireScript.Run(ctx, s.rdb, []string{s.key(user)}, conn, max, s.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redis connection slot of %s: %w", user, err)
	}
	return n == 1, nil
}

// Release implements hub.ConnSlots.
func (s *ConnSlots) Release(ctx context.Context, user, conn string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.rdb.ZRem(ctx, s.key(user), conn).Err(); err != nil {
		return fmt.Errorf("redis release connection slot of %s: %w", user, err)
	}
	return nil
}

// Refresh implements hub.ConnSlots.
func (s *ConnSlots) Refresh(ctx context.Context, user string, conns []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(conns) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(conns))
	args = append(args, s.ttl.Milliseconds())
	for _, c := range conns {
		args = append(args, c)
	}
	if err := refreshScript.Run(ctx, s.rdb, []string{s.key(user)}, args...).Err(); err != nil {
		return fmt.Errorf("redis refresh connection slots of %s: %w", user, err)
	}
	return nil
}
