package hub

// The handlers of the six client messages (SPEC §5): each answers one message, in the
// order the connection's read loop received them, and returns the error to reply with.

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

func (c *conn) subscribe(ctx context.Context, m inbound) error {
	kind, id, err := parseChannel(m.Channel)
	if err != nil {
		return err
	}
	c.mu.Lock()
	_, dup := c.subs[m.Channel]
	n := len(c.subs)
	c.mu.Unlock()
	if dup {
		return dsync.Errorf(dsync.CodeBadRequest, "already subscribed to %s", m.Channel)
	}
	if n >= c.h.cfg.MaxSubscriptions {
		return dsync.Invalid("channel", "max", strconv.Itoa(c.h.cfg.MaxSubscriptions), "at most %d subscriptions per connection", c.h.cfg.MaxSubscriptions)
	}
	// An access notice applied between the role's read and the join would miss this
	// subscription: settle reads it again then.
	epoch := c.h.access.applied.Load()
	switch kind {
	case kindLayout:
		// Access first, so a layout one may not read never creates channel state.
		_, role, err := c.h.svc.LayoutWithRole(ctx, c.uid, id)
		if err != nil {
			return err
		}
		if err := c.subscribeLayout(ctx, m, id, role); err != nil {
			return err
		}
		c.settle(epoch)
		return nil
	case kindWidget:
		w, role, err := c.h.svc.WidgetWithRole(ctx, c.uid, id)
		if err != nil {
			return err
		}
		if err := dsync.Allow(role, dsync.IsLink(c.uid), dsync.ActReadData, "widget", id); err != nil {
			return err
		}
		// The channel is the widget owner's, whoever subscribes first.
		if err := c.join(ctx, m.Channel, m.Channel, kindWidget, id, w.Owner, role); err != nil {
			return err
		}
		data := json.RawMessage("null")
		if c.h.cfg.Data != nil {
			d, err := c.h.cfg.Data.Get(ctx, w, false)
			if err == nil && d != nil {
				data = encode(d)
			}
		}
		c.reply(outbound{ID: m.ID, Type: "subscribed", Channel: m.Channel, Data: &data})
		c.settle(epoch)
		return nil
	default:
		if dsync.IsLink(c.uid) {
			return dsync.Errorf(dsync.CodeForbidden, "a link has no user channel")
		}
		if err := c.join(ctx, m.Channel, userChannel(c.uid), kindUser, c.uid, c.uid, ""); err != nil {
			return err
		}
		c.reply(outbound{ID: m.ID, Type: "subscribed", Channel: m.Channel})
		return nil
	}
}

// join subscribes the connection, with role, to the broker channel name (of kind, for
// id of owner), which the client calls as: widget and user channels, whose
// subscribers start with nothing.
func (c *conn) join(ctx context.Context, as, name, kind, id, owner string, role dsync.Role) error {
	ch := c.h.acquire(name, kind, id, owner)
	if err := ch.ensureReady(ctx); err != nil {
		ch.releaseLocked()
		return err
	}
	ch.subs[c] = &sub{role: role}
	ch.mu.Unlock()
	c.track(as, ch)
	return nil
}

// subscribeLayout joins the layout's channel and answers with a snapshot, or with the
// versions after since (or a reset snapshot when the log no longer has them). The
// reply is queued under the channel's lock, so no version after it can overtake it.
func (c *conn) subscribeLayout(ctx context.Context, m inbound, id string, role dsync.Role) (err error) {
	me := PresenceEntry{User: c.uid, Client: c.id}
	// Presence is best effort: a hung Redis must not hold the subscribe (nor the
	// edits queued behind it on this connection) for more than presenceTimeout.
	pctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	if err := c.h.cfg.Presence.Join(pctx, id, me); err != nil {
		c.h.log.Warn("presence join failed", "layout", id, "err", err)
	}
	defer func() {
		if err != nil {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), presenceTimeout)
			defer cancel()
			_ = c.h.cfg.Presence.Leave(lctx, id, c.id)
		}
	}()
	presence := c.h.presenceList(pctx, id)
	ch := c.h.acquire(m.Channel, kindLayout, id, "")
	if err := ch.ensureReady(ctx); err != nil {
		ch.releaseLocked()
		return err
	}
	l, err := c.h.svc.Head(ctx, id)
	if err != nil {
		ch.releaseLocked()
		return err
	}
	out := outbound{ID: m.ID, Type: "subscribed", Channel: m.Channel, Version: i64(l.Version), Role: string(role)}
	switch {
	case m.Since == nil:
		out.Snapshot = &l
	case *m.Since == l.Version:
		out.Ops = &[]versionOps{}
	case *m.Since >= 0 && *m.Since < l.Version:
		// A resume past MaxReplyOpsBytes of ops is a reset snapshot instead (SPEC §12).
		cs, complete, err := c.h.svc.ChangesSince(ctx, id, *m.Since, l.Version, dsync.MaxReplyOpsBytes)
		if err != nil {
			ch.releaseLocked()
			return err
		}
		if complete {
			ops := make([]versionOps, len(cs))
			for i, x := range cs {
				ops[i] = versionOps{Version: x.Version, Ops: x.Ops, Author: x.Author, Client: x.Client}
			}
			out.Ops = &ops
		} else {
			out.Snapshot, out.Reset = &l, true
		}
	default:
		out.Snapshot, out.Reset = &l, true
	}
	// A version newer than what the channel delivered may already be in the store:
	// the subscriber has it from this reply, and its cursor skips it when it arrives.
	ch.subs[c] = &sub{cursor: l.Version, role: role}
	out.Presence = presence
	c.reply(out)
	ch.mu.Unlock()
	c.track(m.Channel, ch)
	c.h.publishRaw(ctx, m.Channel, presenceVersion, encode(presenceDelta{Joined: []PresenceEntry{me}}))
	return nil
}

// presenceTimeout bounds each presence call a client message makes.
const presenceTimeout = 500 * time.Millisecond

func (c *conn) track(name string, ch *channel) {
	c.mu.Lock()
	c.subs[name] = ch
	c.mu.Unlock()
	c.h.m.subscriptions.Inc()
}

func (c *conn) unsubscribe(m inbound) error {
	if _, _, err := parseChannel(m.Channel); err != nil {
		return err
	}
	c.mu.Lock()
	ch, ok := c.subs[m.Channel]
	delete(c.subs, m.Channel)
	c.mu.Unlock()
	if !ok {
		return dsync.Errorf(dsync.CodeBadRequest, "not subscribed to %s", m.Channel)
	}
	c.leave(ch)
	c.reply(outbound{ID: m.ID, Type: "unsubscribed", Channel: m.Channel})
	return nil
}

// leave removes the connection from a channel it had joined.
func (c *conn) leave(ch *channel) {
	ch.mu.Lock()
	_, ok := ch.subs[c]
	if ok {
		delete(ch.subs, c)
		c.h.m.subscriptions.Dec()
	}
	ch.releaseLocked()
	if ok && ch.kind == kindLayout {
		ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
		defer cancel()
		c.h.announcePresence(ctx, ch.id, PresenceEntry{User: c.uid, Client: c.id}, false)
	}
}

func (c *conn) edit(ctx context.Context, m inbound) error {
	// Over the user's edit budget, nothing reaches the store.
	if err := c.spendEdit(ctx); err != nil {
		return err
	}
	kind, id, err := parseChannel(m.Channel)
	if err != nil {
		return err
	}
	if kind != kindLayout {
		return dsync.Invalid("channel", "layout", "", "edits go to layout channels")
	}
	if m.Base == nil {
		return dsync.Invalid("base", "required", "", "base (the version the ops apply to) is required")
	}
	if !c.h.beginEdit() {
		return dsync.Errorf(dsync.CodeUnavailable, "the server is shutting down")
	}
	// Shutdown waits for this until the ack (or conflict) is queued, so the 1001
	// close flushes it: an edit that commits during shutdown is acknowledged.
	defer c.h.edits.Done()
	// The edit commits even if the connection drops meanwhile: its ack may be lost,
	// and the client's resend with the same editId is answered from the op log.
	_, res, err := c.h.svc.EditLayout(context.WithoutCancel(ctx), c.uid, id, dsync.Edit{
		Base: *m.Base, Ops: m.Ops, Force: m.Force, EditID: m.EditID, Author: c.uid, Client: c.id})
	var de *dsync.Error
	if errors.As(err, &de) && de.Code == dsync.CodeVersionConflict {
		c.h.m.edits.WithLabelValues("conflicted").Inc()
		c.reply(outbound{ID: m.ID, Type: "conflict", Version: i64(de.Version), Conflicts: de.Conflicts})
		return nil
	}
	if err != nil {
		c.h.m.edits.WithLabelValues("refused").Inc()
		return err
	}
	switch {
	case res.Rebased:
		c.h.m.edits.WithLabelValues("rebased").Inc()
	case res.Committed:
		c.h.m.edits.WithLabelValues("committed").Inc()
	default:
		c.h.m.edits.WithLabelValues("unchanged").Inc()
	}
	c.reply(outbound{ID: m.ID, Type: "ack", Version: i64(res.Version), Rebased: &res.Rebased})
	return nil
}

func (c *conn) refresh(ctx context.Context, m inbound) error {
	kind, id, err := parseChannel(m.Channel)
	if err != nil {
		return err
	}
	if kind != kindWidget {
		return dsync.Invalid("channel", "widget", "", "refresh takes a widget channel")
	}
	w, err := c.widgetFor(ctx, m.Channel, id, dsync.ActRefresh)
	if err != nil {
		return err
	}
	data := json.RawMessage("null")
	if c.h.cfg.Data != nil {
		d, err := c.h.cfg.Data.Get(ctx, w, true)
		if err != nil {
			return err
		}
		if d != nil {
			data = encode(d)
		}
	}
	// The requester gets the data right after `refreshed` (SPEC §12), whatever the
	// kind, whether it is subscribed or not, and whether this refresh fetched or was
	// answered from the cache. A fresh fetch is also published to every subscriber, so
	// a subscribed requester may get that `data` twice, once either side of `refreshed`.
	c.reply(outbound{ID: m.ID, Type: "refreshed", Channel: m.Channel})
	c.reply(outbound{Type: "data", Channel: m.Channel, Data: &data})
	return nil
}

// widgetFor returns widget id if the connection may do a with it. Subscribed to
// name, the role it was granted then answers (kept current by access notices), and
// the widget is read as its owner's (a cached read); otherwise the domain decides.
func (c *conn) widgetFor(ctx context.Context, name, id string, a dsync.Action) (dsync.Widget, error) {
	c.mu.Lock()
	ch := c.subs[name]
	c.mu.Unlock()
	if ch != nil {
		if role := ch.roleOf(c); role != "" {
			if err := dsync.Allow(role, dsync.IsLink(c.uid), a, "widget", id); err != nil {
				return dsync.Widget{}, err
			}
			return c.h.svc.WidgetFor(ctx, ch.owner, id, dsync.ActReadData)
		}
	}
	return c.h.svc.WidgetFor(ctx, c.uid, id, a)
}

func (c *conn) auth(ctx context.Context, m inbound) error {
	// A link's connection lives as long as the link: it has no token to refresh, and
	// may do nothing but read (SPEC §10).
	if dsync.IsLink(c.uid) {
		return dsync.Errorf(dsync.CodeForbidden, "a link may not send auth: its connection lasts until the link expires")
	}
	id, err := c.h.cfg.Verify(ctx, m.Token)
	if err != nil {
		if dsync.ErrorCode(err) == dsync.CodeUnavailable {
			return err // the identity provider's keys are not at hand yet: try again
		}
		return dsync.Errorf(dsync.CodeUnauthorized, "the token is not valid")
	}
	if id.User != c.uid {
		c.replyError(m.ID, dsync.Errorf(dsync.CodeForbidden, "the token is for another user"))
		c.closeFor(dsync.CodeForbidden, "token for another user", true)
		return nil
	}
	c.mu.Lock()
	c.exp = id.Exp
	c.armExpiry()
	c.mu.Unlock()
	c.reply(outbound{ID: m.ID, Type: "authed", Exp: id.Exp.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
	return nil
}
