package hub

import (
	"context"
	"errors"
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
	// linkLayout is the layout a link's connection may read ("" for a user).
	linkLayout string
	// rechecking serialises the re-reads of the connection's access (access.go).
	rechecking sync.Mutex

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
	return &conn{h: h, ws: ws, id: newClientID(), uid: id.User, linkLayout: id.Layout, exp: id.Exp,
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
	c.enqueue(encode(helloFrame{Type: "hello", Client: c.id, User: c.uid, Layout: c.linkLayout}))

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
		err = c.auth(ctx, m)
	default:
		err = dsync.Errorf(dsync.CodeBadRequest, "unknown message type %q", m.Type)
	}
	if err != nil {
		c.replyError(m.ID, err)
	}
}
