package redis

import (
	"context"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/hub"
)

var _ hub.Presence = (*Presence)(nil)

// DefaultPresenceTTL is how long a presence entry lives without a refresh: an instance
// that dies stops refreshing, and its clients leave within this time.
const DefaultPresenceTTL = 20 * time.Second

// Presence is the hub.Presence on Redis: one hash per layout, a field per client whose
// value is "<expiry unix ms> <user>". Expired fields are removed by whichever instance
// deletes them first (HDEL answers 1 to exactly one caller).
type Presence struct {
	rdb    *goredis.Client
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// NewPresence returns a presence store on rdb with keys under prefix ("" gives
// "dashsync:"); entries live ttl (0: the default) without a refresh.
func NewPresence(rdb *goredis.Client, prefix string, ttl time.Duration) *Presence {
	if prefix == "" {
		prefix = "dashsync:"
	}
	if ttl <= 0 {
		ttl = DefaultPresenceTTL
	}
	return &Presence{rdb: rdb, prefix: prefix, ttl: ttl, now: time.Now}
}

func (p *Presence) key(layout string) string { return p.prefix + "presence:" + layout }

func parseEntry(client, v string) (hub.PresenceEntry, time.Time, bool) {
	ms, user, ok := strings.Cut(v, " ")
	if !ok {
		return hub.PresenceEntry{}, time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return hub.PresenceEntry{}, time.Time{}, false
	}
	return hub.PresenceEntry{User: user, Client: client}, time.UnixMilli(n), true
}

// Join implements hub.Presence.
func (p *Presence) Join(ctx context.Context, layout string, e hub.PresenceEntry) error {
	return p.Refresh(ctx, layout, []hub.PresenceEntry{e})
}

// Leave implements hub.Presence.
func (p *Presence) Leave(ctx context.Context, layout, client string) error {
	return p.rdb.HDel(ctx, p.key(layout), client).Err()
}

// List implements hub.Presence.
func (p *Presence) List(ctx context.Context, layout string) ([]hub.PresenceEntry, error) {
	m, err := p.rdb.HGetAll(ctx, p.key(layout)).Result()
	if err != nil {
		return nil, err
	}
	now := p.now()
	out := make([]hub.PresenceEntry, 0, len(m))
	for client, v := range m {
		if e, exp, ok := parseEntry(client, v); ok && now.Before(exp) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Refresh implements hub.Presence. The hash itself expires a while after its last
// refresh, so a layout nobody is on leaves no key behind.
func (p *Presence) Refresh(ctx context.Context, layout string, es []hub.PresenceEntry) error {
	if len(es) == 0 {
		return nil
	}
	exp := strconv.FormatInt(p.now().Add(p.ttl).UnixMilli(), 10)
	vals := make([]any, 0, 2*len(es))
	for _, e := range es {
		vals = append(vals, e.Client, exp+" "+e.User)
	}
	k := p.key(layout)
	_, err := p.rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		pipe.HSet(ctx, k, vals...)
		pipe.Expire(ctx, k, 3*p.ttl)
		return nil
	})
	return err
}

// Expire implements hub.Presence.
func (p *Presence) Expire(ctx context.Context, layout string) ([]hub.PresenceEntry, error) {
	k := p.key(layout)
	m, err := p.rdb.HGetAll(ctx, k).Result()
	if err != nil {
		return nil, err
	}
	now := p.now()
	var gone []hub.PresenceEntry
	for client, v := range m {
		e, exp, ok := parseEntry(client, v)
		if ok && now.Before(exp) {
			continue
		}
		// Only the caller whose HDEL removed the field reports it.
		n, err := p.rdb.HDel(ctx, k, client).Result()
		if err != nil {
			return gone, err
		}
		if n == 1 && ok {
			gone = append(gone, e)
		}
	}
	return gone, nil
}
