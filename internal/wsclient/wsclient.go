// Package wsclient is a Go client of dashsync's WebSocket protocol, for tests and the
// load tool: it splits newline-delimited frames, matches replies to requests by id,
// and hands every other message to a callback.
package wsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Msg is any server message; fields absent from a type are zero.
type Msg struct {
	ID        *int64          `json:"id"`
	Type      string          `json:"type"`
	Channel   string          `json:"channel"`
	Client    string          `json:"client"`
	User      string          `json:"user"`
	Version   int64           `json:"version"`
	Rebased   bool            `json:"rebased"`
	Snapshot  json.RawMessage `json:"snapshot"`
	Reset     bool            `json:"reset"`
	Ops       json.RawMessage `json:"ops"`
	Author    string          `json:"author"`
	Data      json.RawMessage `json:"data"`
	Presence  json.RawMessage `json:"presence"`
	Conflicts json.RawMessage `json:"conflicts"`
	Error     *struct {
		Code         string `json:"code"`
		Message      string `json:"message"`
		RetryAfterMs int64  `json:"retryAfterMs"`
	} `json:"error"`
	Event  string          `json:"event"`
	Layout json.RawMessage `json:"layout"`
	Widget json.RawMessage `json:"widget"`
	Joined json.RawMessage `json:"joined"`
	Left   json.RawMessage `json:"left"`
	Exp    string          `json:"exp"`
	// Role is a subscriber's role on a layout (`subscribed`, `access`, layout.shared).
	Role string `json:"role"`
	// Reason says why the server ended a subscription (`unsubscribed`).
	Reason string `json:"reason"`

	// Raw is the message as received.
	Raw []byte `json:"-"`
	// At is when the frame carrying it was read.
	At time.Time `json:"-"`
}

// Client is one WebSocket connection.
type Client struct {
	ws     *websocket.Conn
	nextID atomic.Int64
	onMsg  func(Msg)

	mu      sync.Mutex
	pending map[int64]chan Msg

	done     chan struct{}
	closeErr error
	// Hello is the server's greeting.
	Hello Msg
}

// Options configure Dial.
type Options struct {
	// Token is sent as a bearer token.
	Token string
	// Origin, when set, is sent as the Origin header.
	Origin string
	// OnMessage receives every message that is not a reply to a request; it runs in
	// the read goroutine and must not block for long.
	OnMessage func(Msg)
	// HTTPClient dials; default http.DefaultClient.
	HTTPClient *http.Client
}

// Dial connects to a dashsync WebSocket URL (ws://host/api/ws) and waits for hello.
func Dial(ctx context.Context, url string, o Options) (*Client, *http.Response, error) {
	h := http.Header{}
	if o.Token != "" {
		h.Set("Authorization", "Bearer "+o.Token)
	}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h, HTTPClient: o.HTTPClient})
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(64 << 20)
	c := &Client{ws: ws, onMsg: o.OnMessage, pending: map[int64]chan Msg{}, done: make(chan struct{})}
	hello := make(chan Msg, 1)
	first := true
	c.onMsgWrap(func(m Msg) {
		if first && m.Type == "hello" {
			first = false
			hello <- m
			return
		}
		if o.OnMessage != nil {
			o.OnMessage(m)
		}
	})
	go c.readLoop()
	select {
	case c.Hello = <-hello:
		return c, resp, nil
	case <-c.done:
		return nil, resp, fmt.Errorf("closed before hello: %w", c.closeErr)
	case <-ctx.Done():
		_ = ws.CloseNow()
		return nil, resp, ctx.Err()
	}
}

func (c *Client) onMsgWrap(f func(Msg)) { c.onMsg = f }

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.closeErr = err
			c.mu.Lock()
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		at := time.Now()
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var m Msg
			if err := json.Unmarshal(line, &m); err != nil {
				continue
			}
			m.Raw, m.At = line, at
			if m.ID != nil {
				c.mu.Lock()
				ch := c.pending[*m.ID]
				delete(c.pending, *m.ID)
				c.mu.Unlock()
				if ch != nil {
					ch <- m
					continue
				}
			}
			c.onMsg(m)
		}
	}
}

// Request sends msg (a map or struct without "id"; the id is added) and waits for its
// reply.
func (c *Client) Request(ctx context.Context, msg map[string]any) (Msg, error) {
	id := c.nextID.Add(1)
	msg["id"] = id
	b, err := json.Marshal(msg)
	if err != nil {
		return Msg{}, err
	}
	return c.RequestRaw(ctx, id, b)
}

// RequestRaw writes frame as it is (bytes a JSON encoder would not produce, say) and
// waits for the reply to id, which the frame must carry. Pick ids that Request does
// not use (it counts up from 1): 1<<40 and above, say.
func (c *Client) RequestRaw(ctx context.Context, id int64, frame []byte) (Msg, error) {
	ch := make(chan Msg, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return Msg{}, err
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return Msg{}, fmt.Errorf("connection closed: %w", c.closeErr)
		}
		return m, nil
	case <-ctx.Done():
		return Msg{}, ctx.Err()
	}
}

// Send writes raw bytes as one text frame, no reply awaited.
func (c *Client) Send(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Done is closed when the connection has closed.
func (c *Client) Done() <-chan struct{} { return c.done }

// CloseStatus is the close code the server sent (-1 when none), once Done.
func (c *Client) CloseStatus() websocket.StatusCode { return websocket.CloseStatus(c.closeErr) }

// Err is why the connection closed, once Done.
func (c *Client) Err() error { return c.closeErr }

// Close closes the connection normally.
func (c *Client) Close() error {
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// CloseNow drops the connection without a handshake (a cut connection).
func (c *Client) CloseNow() { _ = c.ws.CloseNow(); <-c.done }
