package memory

import (
	"context"
	"sync"
	"time"

	"github.com/dashsync/dashsync/hub"
)

var _ hub.Presence = (*Presence)(nil)

// DefaultPresenceTTL is how long a presence entry lives without a refresh.
const DefaultPresenceTTL = 20 * time.Second

// Presence is the in-process hub.Presence of the embedded default.
type Presence struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	layouts map[string]map[string]presenceEntry // layout → client → entry
}

type presenceEntry struct {
	user    string
	expires time.Time
}

// NewPresence returns an empty presence store whose entries live ttl (0: the default)
// without a refresh, on the clock now (nil: time.Now).
func NewPresence(ttl time.Duration, now func() time.Time) *Presence {
	if ttl <= 0 {
		ttl = DefaultPresenceTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Presence{ttl: ttl, now: now, layouts: map[string]map[string]presenceEntry{}}
}

// Join implements hub.Presence.
func (p *Presence) Join(ctx context.Context, layout string, e hub.PresenceEntry) error {
	return p.Refresh(ctx, layout, []hub.PresenceEntry{e})
}

// Leave implements hub.Presence.
func (p *Presence) Leave(ctx context.Context, layout, client string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.layouts[layout], client)
	if len(p.layouts[layout]) == 0 {
		delete(p.layouts, layout)
	}
	return nil
}

// List implements hub.Presence.
func (p *Presence) List(ctx context.Context, layout string) ([]hub.PresenceEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]hub.PresenceEntry, 0, len(p.layouts[layout]))
	for client, e := range p.layouts[layout] {
		if now.Before(e.expires) {
			out = append(out, hub.PresenceEntry{User: e.user, Client: client})
		}
	}
	return out, nil
}

// Refresh implements hub.Presence.
func (p *Presence) Refresh(ctx context.Context, layout string, es []hub.PresenceEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	exp := p.now().Add(p.ttl)
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.layouts[layout]
	if m == nil {
		m = map[string]presenceEntry{}
		p.layouts[layout] = m
	}
	for _, e := range es {
		m[e.Client] = presenceEntry{user: e.User, expires: exp}
	}
	return nil
}

// Expire implements hub.Presence.
func (p *Presence) Expire(ctx context.Context, layout string) ([]hub.PresenceEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var gone []hub.PresenceEntry
	for client, e := range p.layouts[layout] {
		if !now.Before(e.expires) {
			gone = append(gone, hub.PresenceEntry{User: e.user, Client: client})
			delete(p.layouts[layout], client)
		}
	}
	if len(p.layouts[layout]) == 0 {
		delete(p.layouts, layout)
	}
	return gone, nil
}
