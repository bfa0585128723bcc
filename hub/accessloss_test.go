package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/memory"
)

// noticeDropper is a broker that loses every access notice while dropping is set, as
// a Redis pub/sub reconnect can: a test double for a fault the in-process broker never
// shows. loss then reports the loss to the hub, as the Redis broker does once it is
// back.
type noticeDropper struct {
	*memory.Broker
	dropping atomic.Bool
	dropped  atomic.Int64
	mu       sync.Mutex
	h        hub.Handler
}

func (b *noticeDropper) Start(ctx context.Context, h hub.Handler) error {
	b.mu.Lock()
	b.h = h
	b.mu.Unlock()
	return b.Broker.Start(ctx, dropperHandler{b})
}

func (b *noticeDropper) loss() {
	b.mu.Lock()
	h := b.h
	b.mu.Unlock()
	h.HandleLoss()
}

type dropperHandler struct{ b *noticeDropper }

func (d dropperHandler) HandleMessage(channel string, payload []byte) {
	if channel == "access" && d.b.dropping.Load() {
		d.b.dropped.Add(1)
		return
	}
	d.b.h.HandleMessage(channel, payload)
}

func (d dropperHandler) HandleLoss() { d.b.h.HandleLoss() }

// A lost access notice is repaired when the broker reports the loss: every instance
// reads its connections' roles again. Bob, removed while the notice was lost, is
// unsubscribed (revoked); the socket of a link revoked meanwhile is unsubscribed and
// closed with 4003. The sweeper is out of the way, so only the loss report can tell.
func TestAccess_LostNoticeIsRepairedWhenTheBrokerReportsTheLoss(t *testing.T) {
	b := &noticeDropper{Broker: memory.NewBroker()}
	s := testenv.New(t, testenv.Options{Broker: b, Hub: func(c *hub.Config) { c.SweepInterval = time.Hour }})
	var l struct {
		ID string `json:"id"`
	}
	restJSON(t, s, "alice", http.StatusCreated, "POST", "/api/dashboard/layouts", map[string]any{"name": "shared"}, &l)
	restJSON(t, s, "alice", http.StatusOK, "PUT", "/api/dashboard/layouts/"+l.ID+"/access", map[string]any{"users": map[string]any{"bob": "editor"}}, nil)
	var lk struct {
		ID, Token string
	}
	restJSON(t, s, "alice", http.StatusCreated, "POST", "/api/dashboard/layouts/"+l.ID+"/links", map[string]any{}, &lk)

	bob, bobMsgs := dialCollect(t, s, testenv.Token(t, "bob"))
	link, linkMsgs := dialCollect(t, s, lk.Token)
	for _, c := range []*wsclient.Client{bob, link} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := c.Request(ctx, map[string]any{"type": "subscribe", "channel": "layout:" + l.ID})
		cancel()
		if err != nil || r.Type != "subscribed" {
			t.Fatalf("subscribe: %+v %v", r, err)
		}
	}

	b.dropping.Store(true)
	restJSON(t, s, "alice", http.StatusOK, "PUT", "/api/dashboard/layouts/"+l.ID+"/access", map[string]any{"users": map[string]any{"bob": nil}}, nil)
	restJSON(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/layouts/"+l.ID+"/links/"+lk.ID, nil, nil)
	if n := b.dropped.Load(); n != 2 {
		t.Fatalf("dropped %d access notices, want the 2 of the removal and the revocation", n)
	}
	b.dropping.Store(false)
	b.loss()

	want := func(what string, msgs *collected, pred func(wsclient.Msg) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !msgs.has(pred) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not received after the loss report; got %s", what, msgs.raw())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	revoked := func(m wsclient.Msg) bool {
		return m.Type == "unsubscribed" && m.Channel == "layout:"+l.ID && m.Reason == "revoked"
	}
	want("bob's unsubscribed revoked", bobMsgs, revoked)
	want("the link's unsubscribed revoked", linkMsgs, revoked)
	select {
	case <-link.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked link's socket is still open after the loss report")
	}
	if code := websocket.CloseStatus(link.Err()); code != 4003 {
		t.Errorf("the link's socket closed with %d, want 4003", code)
	}
}

type collected struct {
	mu   sync.Mutex
	msgs []wsclient.Msg
}

func (c *collected) add(m wsclient.Msg) { c.mu.Lock(); c.msgs = append(c.msgs, m); c.mu.Unlock() }

func (c *collected) has(pred func(wsclient.Msg) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		if pred(m) {
			return true
		}
	}
	return false
}

func (c *collected) raw() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []byte
	for _, m := range c.msgs {
		out = append(append(out, m.Raw...), '\n')
	}
	return string(out)
}

func dialCollect(t *testing.T, s *testenv.Server, token string) (*wsclient.Client, *collected) {
	t.Helper()
	msgs := &collected{}
	return s.DialToken(t, token, msgs.add), msgs
}

func restJSON(t *testing.T, s *testenv.Server, user string, want int, method, path string, body, out any) {
	t.Helper()
	status, b := s.REST(t, user, method, path, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
