package hub

// Access changes (SPEC §10) on every instance. The domain announces who gained, lost
// or changed a role on a layout, which link was revoked and which layout was deleted;
// the Announcer publishes each as a notice on accessChannel, which every hub
// subscribes to from the start, and each instance applies it to its own connections.
// Access changes are rare (an owner's REST call), so one channel for all of them costs
// nothing per message; what a connection may do is otherwise read once, when it
// subscribes, and kept with its subscription (sub.role) until a notice or a broker
// loss makes the hub read it again.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// accessChannel is the broker channel of access notices. Its name has no colon, so
// no client channel can be it.
const accessChannel = "access"

// The kinds of access notice.
const (
	noticeUser    = "user"    // User's role on Layout changed (or was removed)
	noticeLink    = "link"    // Link of Layout was revoked
	noticeDeleted = "deleted" // Layout was deleted; Members were its members
)

type accessNotice struct {
	Kind    string   `json:"kind"`
	Layout  string   `json:"layout"`
	User    string   `json:"user,omitempty"`
	Link    string   `json:"link,omitempty"`
	Members []string `json:"members,omitempty"`
}

// accessQueueSize bounds the notices waiting to be applied; past it, the hub
// re-reads every connection's access instead (as after a broker loss).
const accessQueueSize = 1024

// accessWork is the queue of notices to apply, served by one goroutine so that the
// store reads a notice causes never hold the broker's delivery.
type accessWork struct {
	queue    chan accessNotice
	overflow atomic.Bool
	wake     chan struct{}
	// applied counts the notices (and full rechecks) begun: a subscribe that read its
	// role before one began and joined after may hold a role it changed, and reads it
	// again (conn.settle).
	applied atomic.Uint64
}

func newAccessWork() *accessWork {
	return &accessWork{queue: make(chan accessNotice, accessQueueSize), wake: make(chan struct{}, 1)}
}

// handleAccess queues a notice as the broker delivered it.
func (h *Hub) handleAccess(frame []byte) {
	var n accessNotice
	if err := json.Unmarshal(frame, &n); err != nil {
		h.log.Warn("bad access notice", "err", err)
		return
	}
	select {
	case h.access.queue <- n:
	default:
		h.recheckAll()
	}
}

// recheckAll asks the access worker to re-read every connection's access.
func (h *Hub) recheckAll() {
	h.access.overflow.Store(true)
	select {
	case h.access.wake <- struct{}{}:
	default:
	}
}

// runAccess applies notices until the hub stops.
func (h *Hub) runAccess() {
	defer h.workers.Done()
	for {
		select {
		case <-h.stop:
			return
		case n := <-h.access.queue:
			h.access.applied.Add(1)
			h.applyAccess(n)
		case <-h.access.wake:
		}
		if h.access.overflow.Swap(false) {
			h.access.applied.Add(1)
			for _, c := range h.connsWhere(func(*conn) bool { return true }) {
				h.recheck(c)
			}
		}
	}
}

// applyAccess applies one notice to this instance's connections.
func (h *Hub) applyAccess(n accessNotice) {
	switch n.Kind {
	case noticeUser:
		for _, c := range h.connsWhere(func(c *conn) bool { return c.uid == n.User }) {
			h.recheck(c)
		}
	case noticeLink:
		for _, c := range h.connsWhere(func(c *conn) bool { return c.uid == dsync.LinkUserPrefix+n.Link }) {
			for _, name := range c.channelNames() {
				c.drop(name, "revoked")
			}
			c.closeFor(dsync.CodeForbidden, "the link was revoked", true)
		}
	case noticeDeleted:
		name := layoutChannel(n.Layout)
		for _, c := range h.connsWhere(func(c *conn) bool { return c.subscribedTo(name) }) {
			c.drop(name, "deleted")
			if dsync.IsLink(c.uid) {
				c.closeFor(dsync.CodeForbidden, "the link's layout was deleted", true)
			}
		}
		members := map[string]bool{}
		for _, m := range n.Members {
			members[m] = true
		}
		for _, c := range h.connsWhere(func(c *conn) bool { return members[c.uid] }) {
			h.recheck(c)
		}
	}
}

// recheck reads c's role again on each of its subscriptions that is not its own,
// ending those it lost ("revoked", or "deleted" when the layout is gone) and telling
// it of a changed role on a layout.
func (h *Hub) recheck(c *conn) {
	// One at a time per connection (the access worker's and a subscribe's settle), so
	// a change is told once.
	c.rechecking.Lock()
	defer c.rechecking.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Widget channels first: once the client reads `access` (or `unsubscribed`) for a
	// layout, the roles kept with its widget subscriptions are current, so a refresh
	// it sends next is judged by the new role.
	chs := c.channels()
	slices.SortStableFunc(chs, func(a, b *channel) int {
		return cmp.Compare(boolInt(a.kind == kindLayout), boolInt(b.kind == kindLayout))
	})
	lost := false
	defer func() {
		if lost && dsync.IsLink(c.uid) {
			// A link reads one layout: without it, the link is revoked, expired or
			// gone (found after a lost notice), and its socket ends as when told.
			c.closeFor(dsync.CodeForbidden, "the link no longer reads its layout", true)
		}
	}()
	for _, ch := range chs {
		had := ch.roleOf(c)
		if had == dsync.RoleOwner || ch.kind == kindUser {
			continue // an owner's access never changes; deletion ends it
		}
		var (
			now dsync.Role
			err error
		)
		if ch.kind == kindLayout {
			_, now, err = h.svc.LayoutWithRole(ctx, c.uid, ch.id)
		} else {
			_, now, err = h.svc.WidgetWithRole(ctx, c.uid, ch.id)
		}
		var de *dsync.Error
		switch {
		case errors.As(err, &de) && de.Code == dsync.CodeNotFound:
			reason := "revoked"
			if ch.kind == kindLayout {
				if _, herr := h.svc.Head(ctx, ch.id); dsync.ErrorCode(herr) == dsync.CodeNotFound {
					reason = "deleted"
				}
			}
			c.drop(ch.name, reason)
			lost = true
		case err != nil:
			h.log.Warn("access recheck failed", "client", c.id, "channel", ch.name, "err", err)
		case now != had:
			ch.setRole(c, now)
			if ch.kind == kindLayout {
				c.reply(outbound{Type: "access", Channel: ch.name, Role: string(now)})
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// settle reads c's access again if an access notice began since epoch (taken
// before its subscribe read the role it joined with).
func (c *conn) settle(epoch uint64) {
	if c.h.access.applied.Load() != epoch {
		c.h.recheck(c)
	}
}

// connsWhere returns this instance's connections that match.
func (h *Hub) connsWhere(match func(*conn) bool) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*conn
	for c := range h.conns {
		if match(c) {
			out = append(out, c)
		}
	}
	return out
}

// channels returns the channels c is subscribed to.
func (c *conn) channels() []*channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*channel, 0, len(c.subs))
	for _, ch := range c.subs {
		out = append(out, ch)
	}
	return out
}

// channelNames returns the names c subscribed with.
func (c *conn) channelNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.subs))
	for name := range c.subs {
		out = append(out, name)
	}
	return out
}

func (c *conn) subscribedTo(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.subs[name]
	return ok
}

// drop ends c's subscription name, as the server's decision: the client is told
// with `unsubscribed` and reason.
func (c *conn) drop(name, reason string) {
	c.mu.Lock()
	ch, ok := c.subs[name]
	delete(c.subs, name)
	c.mu.Unlock()
	if !ok {
		return
	}
	c.leave(ch)
	c.reply(outbound{Type: "unsubscribed", Channel: name, Reason: reason})
}

// roleOf returns c's role on the channel's layout or widget ("" when not subscribed).
func (ch *channel) roleOf(c *conn) dsync.Role {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if s := ch.subs[c]; s != nil {
		return s.role
	}
	return ""
}

func (ch *channel) setRole(c *conn, r dsync.Role) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if s := ch.subs[c]; s != nil {
		s.role = r
	}
}
