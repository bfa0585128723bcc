package hub

import (
	"context"
	"math"
	"sync"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// channel is this instance's state for one broker channel: its local subscribers and,
// for a layout, the last version delivered and presence.
//
// mu serialises deliveries with subscribes, so a subscriber's first reply is queued
// before any version after its snapshot, and versions go out in order.
type channel struct {
	h     *Hub
	name  string // broker channel: layout:<id>, widget:<id>, user:<owner>
	kind  string
	id    string // layout or widget id; the owner for user channels
	owner string

	mu     sync.Mutex
	subs   map[*conn]*sub
	dead   bool  // removed from the hub; a subscriber finding it dead looks again
	ready  bool  // subscribed at the broker
	last   int64 // layouts: last version delivered
	joined []PresenceEntry
	left   []PresenceEntry
	timer  *time.Timer
	// unfollow ends a widget channel's live refresh.
	unfollow func()
}

// sub is one connection's subscription to a channel.
type sub struct {
	// cursor is the last layout version this subscriber has (snapshot or op).
	cursor int64
	// role is the subscriber's role on the layout or widget, as last read (SPEC §10).
	role dsync.Role
}

// acquire returns the live channel named name, creating it, with its lock held.
func (h *Hub) acquire(name, kind, id, owner string) *channel {
	for {
		h.mu.Lock()
		ch := h.channels[name]
		if ch == nil {
			ch = &channel{h: h, name: name, kind: kind, id: id, owner: owner, subs: map[*conn]*sub{}}
			h.channels[name] = ch
		}
		h.mu.Unlock()
		ch.mu.Lock()
		if !ch.dead {
			return ch
		}
		ch.mu.Unlock()
	}
}

// ensureReady subscribes at the broker once; for a layout it then reads the head, so
// every version after it arrives through the broker or is filled from the op log.
// Called with ch.mu held.
func (ch *channel) ensureReady(ctx context.Context) error {
	if ch.ready {
		return nil
	}
	if err := ch.h.cfg.Broker.Subscribe(ctx, ch.name); err != nil {
		return dsync.Unavailable(err)
	}
	if ch.kind == kindLayout {
		l, err := ch.h.svc.Head(ctx, ch.id)
		if err != nil {
			_ = ch.h.cfg.Broker.Unsubscribe(context.WithoutCancel(ctx), ch.name)
			return err
		}
		ch.last = l.Version
	}
	ch.ready = true
	if ch.kind == kindWidget && ch.h.cfg.Data != nil {
		ch.unfollow = ch.h.cfg.Data.Follow(ch.owner, ch.id)
	}
	return nil
}

// releaseLocked drops the channel when nobody is subscribed any more. Called with
// ch.mu held; it unlocks it.
func (ch *channel) releaseLocked() {
	if len(ch.subs) > 0 {
		ch.mu.Unlock()
		return
	}
	ch.dead = true
	if ch.unfollow != nil {
		ch.unfollow()
	}
	if ch.timer != nil {
		ch.timer.Stop()
	}
	// Unsubscribe at the broker before the name is free again. A subscriber arriving
	// meanwhile waits on ch.mu, finds the channel dead and makes a new one, whose
	// Subscribe then reaches the broker after this Unsubscribe. The other way round, a
	// slow Unsubscribe would undo the new channel's Subscribe, and its subscribers
	// would get nothing through the broker.
	if ch.ready {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := ch.h.cfg.Broker.Unsubscribe(ctx, ch.name); err != nil {
			ch.h.log.Warn("broker unsubscribe failed", "channel", ch.name, "err", err)
		}
		cancel()
	}
	ch.h.mu.Lock()
	if ch.h.channels[ch.name] == ch {
		delete(ch.h.channels, ch.name)
	}
	ch.h.mu.Unlock()
	ch.mu.Unlock()
}

// deliver hands one broker message to the subscribers. For layouts, versions already
// delivered are dropped and a gap is filled from the op log first.
func (ch *channel) deliver(version int64, frame []byte) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.dead || !ch.ready {
		return
	}
	if ch.kind != kindLayout {
		for c := range ch.subs {
			c.enqueue(frame)
		}
		return
	}
	if version == presenceVersion {
		ch.presenceDeltaLocked(frame)
		return
	}
	if version <= ch.last {
		ch.h.m.duplicates.Inc()
		return
	}
	if version > ch.last+1 && !ch.fillLocked(version-1) {
		return // the sweeper retries
	}
	if version == ch.last+1 {
		ch.sendLocked(version, frame)
	}
}

// catchUp delivers every committed version this channel has not delivered yet. A
// layout found deleted (its notice was lost) ends every subscription to it.
func (ch *channel) catchUp() {
	ch.mu.Lock()
	if ch.dead || !ch.ready {
		ch.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := ch.h.svc.Head(ctx, ch.id)
	if dsync.ErrorCode(err) == dsync.CodeNotFound {
		subs := make([]*conn, 0, len(ch.subs))
		for c := range ch.subs {
			subs = append(subs, c)
		}
		ch.mu.Unlock()
		for _, c := range subs {
			c.drop(ch.name, "deleted")
		}
		return
	}
	defer ch.mu.Unlock()
	if err == nil && l.Version > ch.last {
		ch.fillLocked(l.Version)
	}
}

// fillLocked delivers versions last+1 … upTo from the op log, or a reset snapshot to
// every subscriber when the log no longer has them. It reports whether the channel
// is now at upTo (or beyond).
func (ch *channel) fillLocked(upTo int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A gap is a few versions; a live channel is never cut short by the reply bound.
	cs, complete, err := ch.h.svc.ChangesSince(ctx, ch.id, ch.last, upTo, math.MaxInt)
	if err != nil {
		ch.h.log.Warn("gap fill failed", "channel", ch.name, "err", err)
		return false
	}
	ch.h.m.gapFills.Inc()
	if complete {
		for i := range cs {
			ch.sendLocked(cs[i].Version, opFrame(ch.id, &cs[i]))
		}
		return true
	}
	l, err := ch.h.svc.Head(ctx, ch.id)
	if err != nil {
		ch.h.log.Warn("reset snapshot failed", "channel", ch.name, "err", err)
		return false
	}
	frame := encode(outbound{Type: "snapshot", Channel: ch.name, Version: i64(l.Version), Snapshot: &l, Reset: true})
	for c, s := range ch.subs {
		c.enqueue(frame)
		s.cursor = l.Version
	}
	ch.last = l.Version
	return l.Version >= upTo
}

// sendLocked queues version's frame (the same bytes for everyone) to each subscriber
// that does not have it yet.
func (ch *channel) sendLocked(version int64, frame []byte) {
	for c, s := range ch.subs {
		if s.cursor >= version {
			continue
		}
		c.enqueue(frame)
		s.cursor = version
	}
	ch.last = version
	ch.h.m.deliveries.Add(float64(len(ch.subs)))
}

func (ch *channel) flushPresence() {
	ch.mu.Lock()
	ch.timer = nil
	if ch.dead || (len(ch.joined) == 0 && len(ch.left) == 0) {
		ch.mu.Unlock()
		return
	}
	joined, left, local := ch.joined, ch.left, len(ch.subs)
	ch.joined, ch.left = nil, nil
	ch.mu.Unlock()

	// Lists up to 1,000 clients on the channel, counts past them (SPEC §5). The count
	// is the presence store's, across instances, asked without the channel's lock so
	// that a slow store never holds its fan-out; changes meanwhile start the next
	// interval.
	var frame []byte
	counts, err := ch.h.presenceCounts(context.Background(), ch.id)
	if err != nil {
		counts = presenceCounts{Clients: local} // what this instance knows
	}
	if counts.Clients > maxListedClients {
		frame = encode(outbound{Type: "presence", Channel: ch.name, Counts: &counts})
	} else {
		frame = encode(struct {
			Type    string          `json:"type"`
			Channel string          `json:"channel"`
			Joined  []PresenceEntry `json:"joined"`
			Left    []PresenceEntry `json:"left"`
		}{"presence", ch.name, nonNil(joined), nonNil(left)})
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.dead {
		return
	}
	for c := range ch.subs {
		c.enqueue(frame)
	}
}

func nonNil(p []PresenceEntry) []PresenceEntry {
	if p == nil {
		return []PresenceEntry{}
	}
	return p
}
