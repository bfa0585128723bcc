package hub

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// conn is one WebSocket connection. Its read loop handles client messages one at a
// time (so a client's edits commit in the order it sent them); its writer goroutine
// owns every write and the closing handshake.
type conn struct {
	h   *Hub
	ws  *websocket.Conn
	id  string
	uid string // the user; an `auth` for another user is refused, so it never changes

	queue sendQueue
	// written is closed when the writer has performed the closing handshake.
	written chan struct{}
	// send writes one text frame (the socket; benchmarks count instead).
	send func(ctx context.Context, frame []byte) error
	// writingSince is when the write in progress began (unix nanoseconds, 0: none);
	// the hub's sweeper drops a connection whose write is stuck past WriteTimeout.
	writingSince atomic.Int64

	closing   chan struct{}
	closeOnce sync.Once
	closeCode websocket.StatusCode
	closeMsg  string
	flush     bool // write what is queued before closing

	mu    sync.Mutex
	exp   time.Time
	timer *time.Timer
	subs  map[string]*channel // by channel name as the client wrote it
}

func newConn(h *Hub, ws *websocket.Conn, id Identity) *conn {
	c := newConnState(h, ws, id)
	c.send = func(ctx context.Context, frame []byte) error { return ws.Write(ctx, websocket.MessageText, frame) }
	return c
}

func newConnState(h *Hub, ws *websocket.Conn, id Identity) *conn {
	return &conn{h: h, ws: ws, id: newClientID(), uid: id.User, exp: id.Exp,
		queue: sendQueue{max: h.cfg.QueueSize, ready: make(chan struct{}, 1)}, written: make(chan struct{}), closing: make(chan struct{}), subs: map[string]*channel{}}
}

func (c *conn) user() string { return c.uid }

// enqueue queues a frame without ever blocking; a full queue closes the connection
// with 1013 (its client resumes with `since`).
func (c *conn) enqueue(b []byte) {
	if c.queue.push(b) {
		return
	}
	select {
	case <-c.closing:
	default:
		c.h.m.queueDrops.Inc()
		c.closeFor(dsync.CodeRateLimited, "send queue full: resume with since", false)
	}
}

// close asks the writer to close the connection with code; with flush, what is
// already queued is written first. Only the first call counts.
func (c *conn) close(code websocket.StatusCode, reason string, flush bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeMsg, c.flush = code, reason, flush
		close(c.closing)
	})
}

// closeFor closes the connection with the close code the error table gives code.
func (c *conn) closeFor(code dsync.Code, reason string, flush bool) {
	sc, ok := wire.CloseCode(code)
	if !ok {
		sc = websocket.StatusInternalError
	}
	c.close(sc, reason, flush)
}

// run serves the connection until it closes.
func (c *conn) run(ctx context.Context) {
	c.ws.SetReadLimit(c.h.cfg.ReadLimit)
	go c.writeLoop()
	c.mu.Lock()
	c.armExpiry()
	c.mu.Unlock()
	c.enqueue(encode(outbound{Type: "hello", Client: c.id, User: c.uid}))

	c.readLoop(ctx)

	c.close(websocket.StatusNormalClosure, "", false)
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	subs := c.subs
	c.subs = map[string]*channel{}
	c.mu.Unlock()
	for _, ch := range subs {
		c.leave(ch)
	}
	<-c.written
}

// armExpiry closes the connection with 4001 when its token expires. Called with c.mu held.
func (c *conn) armExpiry() {
	if c.timer != nil {
		c.timer.Stop()
	}
	d := c.exp.Sub(c.h.cfg.Now())
	c.timer = time.AfterFunc(max(d, 0), func() {
		c.closeFor(dsync.CodeUnauthorized, "token expired", true)
	})
}

func (c *conn) readLoop(ctx context.Context) {
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.h.m.tooBig.Inc()
			}
			return
		}
		c.h.m.messagesIn.Inc()
		if typ != websocket.MessageText {
			err := c.spendMessage(ctx)
			if err == nil {
				err = dsync.Errorf(dsync.CodeBadRequest, "messages are JSON text frames")
			}
			c.replyError(nil, err)
			continue
		}
		c.handleApart(ctx, b)
	}
}

// handleApart handles one message on a goroutine of its own and waits for it: the
// store calls some messages make (subscribe, edit) run deep, and the read loop's
// stack, kept for the connection's whole life, stays as small as reading needs.
// Messages are still handled one at a time, in order.
func (c *conn) handleApart(ctx context.Context, b []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.handle(ctx, b)
	}()
	<-done
}

func (c *conn) reply(m outbound) { c.enqueue(encode(m)) }

// replyError answers a message with err, as the error table describes it (the REST
// answers' table), logging what the client must not see.
func (c *conn) replyError(id *int64, err error) {
	r := wire.Describe(err)
	if !r.Quiet {
		c.h.log.Log(context.Background(), r.Log, "websocket request failed", "client", c.id, "user", c.uid, "id", id, "err", r.Cause)
	}
	c.reply(outbound{ID: id, Type: "error", Error: &r.Error})
}

// handle answers one client message. Every message spends one of the connection's
// message budget, even one that does not parse; over it, the answer is rate_limited.
func (c *conn) handle(ctx context.Context, b []byte) {
	m, err := decodeInbound(b)
	if lerr := c.spendMessage(ctx); lerr != nil {
		c.replyError(m.ID, lerr)
		return
	}
	if err != nil {
		c.replyError(m.ID, err)
		return
	}
	switch m.Type {
	case "ping":
		c.reply(outbound{ID: m.ID, Type: "pong"})
	case "subscribe":
		err = c.subscribe(ctx, m)
	case "unsubscribe":
		err = c.unsubscribe(m)
	case "edit":
		err = c.edit(ctx, m)
	case "refresh":
		err = c.refresh(ctx, m)
	case "auth":
		err = c.auth(m)
	default:
		err = dsync.Errorf(dsync.CodeBadRequest, "unknown message type %q", m.Type)
	}
	if err != nil {
		c.replyError(m.ID, err)
	}
}

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
		return dsync.Invalid("channel", "max", "", "at most %d subscriptions per connection", c.h.cfg.MaxSubscriptions)
	}
	switch kind {
	case kindLayout:
		// Ownership first, so another user's layout never creates channel state.
		if _, err := c.h.svc.Layout(ctx, c.uid, id); err != nil {
			return err
		}
		return c.subscribeLayout(ctx, m, id)
	case kindWidget:
		w, err := c.h.svc.Widget(ctx, c.uid, id)
		if err != nil {
			return err
		}
		ch := c.h.acquire(m.Channel, kindWidget, id, c.uid)
		if err := ch.ensureReady(ctx); err != nil {
			ch.releaseLocked()
			return err
		}
		ch.subs[c] = &sub{}
		ch.mu.Unlock()
		c.track(m.Channel, ch)
		data := json.RawMessage("null")
		if c.h.cfg.Data != nil {
			d, err := c.h.cfg.Data.Get(ctx, w, false)
			if err == nil && d != nil {
				data = encode(d)
			}
		}
		c.reply(outbound{ID: m.ID, Type: "subscribed", Channel: m.Channel, Data: &data})
		return nil
	default:
		ch := c.h.acquire(userChannel(c.uid), kindUser, c.uid, c.uid)
		if err := ch.ensureReady(ctx); err != nil {
			ch.releaseLocked()
			return err
		}
		ch.subs[c] = &sub{}
		ch.mu.Unlock()
		c.track(m.Channel, ch)
		c.reply(outbound{ID: m.ID, Type: "subscribed", Channel: m.Channel})
		return nil
	}
}

// subscribeLayout joins the layout's channel and answers with a snapshot, or with the
// versions after since (or a reset snapshot when the log no longer has them). The
// reply is queued under the channel's lock, so no version after it can overtake it.
func (c *conn) subscribeLayout(ctx context.Context, m inbound, id string) (err error) {
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
	ch := c.h.acquire(m.Channel, kindLayout, id, c.uid)
	if err := ch.ensureReady(ctx); err != nil {
		ch.releaseLocked()
		return err
	}
	l, err := c.h.svc.Layout(ctx, c.uid, id)
	if err != nil {
		ch.releaseLocked()
		return err
	}
	out := outbound{ID: m.ID, Type: "subscribed", Channel: m.Channel, Version: i64(l.Version)}
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
	ch.subs[c] = &sub{cursor: l.Version}
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
	w, err := c.h.svc.Widget(ctx, c.uid, id)
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

func (c *conn) auth(m inbound) error {
	id, err := c.h.cfg.Verify(m.Token)
	if err != nil {
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

// sendQueue is a connection's bounded queue of frames. It holds no buffer while
// idle, and the writer takes everything queued at once, to send as few frames as it
// can.
type sendQueue struct {
	mu      sync.Mutex
	items   [][]byte
	max     int
	stopped bool          // the connection is closed: what is pushed is dropped
	ready   chan struct{} // capacity 1: something was queued since the last take
}

// push queues b; it reports false when the queue is full.
func (q *sendQueue) push(b []byte) bool {
	q.mu.Lock()
	switch {
	case q.stopped:
		q.mu.Unlock()
		return true // dropped: the connection is gone
	case len(q.items) >= q.max:
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, b)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns what is queued and leaves spare (emptied) as the new queue.
func (q *sendQueue) take(spare [][]byte) [][]byte {
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	q.mu.Unlock()
	return items
}

func (q *sendQueue) stop() {
	q.mu.Lock()
	q.stopped, q.items = true, nil
	q.mu.Unlock()
}

// writeLoop is the connection's writer: it writes what is queued, as many messages
// per frame as fit in MaxFrame separated by '\n', and performs the closing handshake
// when asked. Writes carry no deadline of their own (a timer per write costs more
// than the write); the hub's sweeper cuts a write stuck past WriteTimeout instead.
func (c *conn) writeLoop() {
	var (
		buf   []byte   // joins the messages of one frame
		spare [][]byte // the queue's other slice, reused while it is small
	)
	ctx := context.Background()
	write := func(items [][]byte) error {
		for len(items) > 0 {
			frame, n := items[0], 1 // one message goes as it is: the shared bytes
			if len(items) > 1 && len(frame) < c.h.cfg.MaxFrame {
				buf = append(buf[:0], frame...)
				for n < len(items) && len(buf)+1+len(items[n]) <= c.h.cfg.MaxFrame {
					buf = append(buf, '\n')
					buf = append(buf, items[n]...)
					n++
				}
				frame = buf
			}
			c.writingSince.Store(time.Now().UnixNano())
			err := c.send(ctx, frame)
			c.writingSince.Store(0)
			if err != nil {
				return err
			}
			c.h.m.messagesOut.Add(float64(n))
			c.h.m.frames.Inc()
			items = items[n:]
		}
		if cap(buf) > 4*c.h.cfg.MaxFrame {
			buf = nil // a burst's buffer is not kept for an idle connection
		}
		return nil
	}
	takeAll := func() [][]byte {
		items := c.queue.take(spare)
		spare = nil
		if cap(items) <= 64 {
			spare = items
		}
		return items
	}
	for {
		select {
		case <-c.queue.ready:
			// Let the fan-out that woke this writer run on a little: under load more
			// messages are queued by then, and each frame (one write(2)) carries them all.
			runtime.Gosched()
			items := takeAll()
			err := write(items)
			clear(items) // the frames are shared: drop the references, not the bytes
			if err != nil {
				c.close(websocket.StatusAbnormalClosure, "", false)
			}
		case <-c.closing:
			if c.flush {
				_ = write(takeAll())
			}
			c.queue.stop()
			switch {
			case c.ws == nil:
			case c.closeCode == websocket.StatusAbnormalClosure:
				_ = c.ws.CloseNow()
			default:
				_ = c.ws.Close(c.closeCode, c.closeMsg)
			}
			close(c.written)
			return
		}
	}
}

// writeStuck reports whether a write has been in progress for longer than d.
func (c *conn) writeStuck(now time.Time, d time.Duration) bool {
	since := c.writingSince.Load()
	return since != 0 && now.Sub(time.Unix(0, since)) > d
}
