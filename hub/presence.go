package hub

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// PresenceEntry is one client (tab) of a user on a layout.
type PresenceEntry struct {
	User   string `json:"user"`
	Client string `json:"client"`
}

// Presence keeps who is on each layout, across instances. Entries live for a TTL and
// are kept alive by Refresh, so the entries of an instance that died disappear on
// their own.
type Presence interface {
	// Join records e on layout.
	Join(ctx context.Context, layout string, e PresenceEntry) error
	// Leave removes client from layout.
	Leave(ctx context.Context, layout, client string) error
	// List returns the live entries of layout.
	List(ctx context.Context, layout string) ([]PresenceEntry, error)
	// Refresh keeps es alive on layout (this instance's clients).
	Refresh(ctx context.Context, layout string, es []PresenceEntry) error
	// Expire removes the entries of layout whose TTL has passed and returns them;
	// each expired entry is returned to exactly one caller, across instances.
	Expire(ctx context.Context, layout string) ([]PresenceEntry, error)
}

// maxListedClients is the most clients a presence list names (SPEC §5); past it,
// `subscribed` and `presence` carry counts instead.
const maxListedClients = 1000

// presenceListTimeout bounds the presence store's answer to a count.
const presenceListTimeout = 2 * time.Second

// presenceVersion marks a broker message on a layout channel as a presence change
// rather than a committed version.
const presenceVersion = -1

// presenceDelta is what instances tell each other about joins and leaves.
type presenceDelta struct {
	Joined []PresenceEntry `json:"joined"`
	Left   []PresenceEntry `json:"left"`
}

// announcePresence records a join or leave in the presence store and tells every
// instance (this one included) through the broker. It must not be called with a
// channel lock held: an in-process broker delivers synchronously.
func (h *Hub) announcePresence(ctx context.Context, layoutID string, e PresenceEntry, joined bool) {
	var err error
	d := presenceDelta{}
	if joined {
		err = h.cfg.Presence.Join(ctx, layoutID, e)
		d.Joined = []PresenceEntry{e}
	} else {
		err = h.cfg.Presence.Leave(ctx, layoutID, e.Client)
		d.Left = []PresenceEntry{e}
	}
	if err != nil {
		h.log.Warn("presence store failed", "layout", layoutID, "err", err)
	}
	h.publishRaw(ctx, kindLayout+":"+layoutID, presenceVersion, encode(d))
}

// presenceList answers the presence of a `subscribed` reply: the users with their
// clients, or counts above 1,000 clients.
func (h *Hub) presenceList(ctx context.Context, layoutID string) any {
	es, err := h.cfg.Presence.List(ctx, layoutID)
	if err != nil {
		h.log.Warn("presence list failed", "layout", layoutID, "err", err)
	}
	type entry struct {
		User    string   `json:"user"`
		Clients []string `json:"clients"`
	}
	by := map[string][]string{}
	for _, e := range es {
		by[e.User] = append(by[e.User], e.Client)
	}
	if len(es) > maxListedClients {
		return presenceCounts{Users: len(by), Clients: len(es)}
	}
	out := make([]entry, 0, len(by))
	for u, cs := range by {
		slices.Sort(cs)
		out = append(out, entry{User: u, Clients: slices.Compact(cs)})
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.User, b.User) })
	return out
}

// presenceCounts counts the users and clients on a layout, across instances, within
// presenceListTimeout.
func (h *Hub) presenceCounts(ctx context.Context, layoutID string) (presenceCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, presenceListTimeout)
	defer cancel()
	es, err := h.cfg.Presence.List(ctx, layoutID)
	if err != nil {
		h.log.Warn("presence list failed", "layout", layoutID, "err", err)
		return presenceCounts{}, err
	}
	users := make(map[string]struct{}, len(es))
	for _, e := range es {
		users[e.User] = struct{}{}
	}
	return presenceCounts{Users: len(users), Clients: len(es)}, nil
}

// refreshPresence keeps this instance's clients alive in the presence store and
// announces the entries of dead instances as left.
func (h *Hub) refreshPresence(ctx context.Context, ch *channel) {
	ch.mu.Lock()
	local := make([]PresenceEntry, 0, len(ch.subs))
	for c := range ch.subs {
		local = append(local, PresenceEntry{User: c.user(), Client: c.id})
	}
	ch.mu.Unlock()
	if len(local) == 0 {
		return
	}
	if err := h.cfg.Presence.Refresh(ctx, ch.id, local); err != nil {
		h.log.Warn("presence refresh failed", "layout", ch.id, "err", err)
		return
	}
	gone, err := h.cfg.Presence.Expire(ctx, ch.id)
	if err != nil || len(gone) == 0 {
		return
	}
	h.publishRaw(ctx, ch.name, presenceVersion, encode(presenceDelta{Left: gone}))
}

// presenceDeltaLocked queues a delta for the next coalesced presence message.
// Called with ch.mu held.
func (ch *channel) presenceDeltaLocked(frame []byte) {
	var d presenceDelta
	if json.Unmarshal(frame, &d) != nil {
		return
	}
	ch.joined = append(ch.joined, d.Joined...)
	ch.left = append(ch.left, d.Left...)
	if ch.timer == nil && (len(ch.joined) > 0 || len(ch.left) > 0) {
		ch.timer = time.AfterFunc(ch.h.cfg.PresenceInterval, ch.flushPresence)
	}
}
