package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
)

// inbox collects a connection's pushed (non-reply) messages.
type inbox struct {
	mu   sync.Mutex
	msgs []wsclient.Msg
	cond chan struct{}
}

func newInbox() *inbox { return &inbox{cond: make(chan struct{}, 1)} }

func (b *inbox) add(m wsclient.Msg) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.cond <- struct{}{}:
	default:
	}
}

func (b *inbox) all() []wsclient.Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]wsclient.Msg(nil), b.msgs...)
}

// waitFor waits until pred holds for the messages so far.
func (b *inbox) waitFor(t testing.TB, what string, pred func([]wsclient.Msg) bool) []wsclient.Msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if ms := b.all(); pred(ms) {
			return ms
		}
		select {
		case <-b.cond:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %d messages", what, len(b.all()))
		}
	}
}

func ofType(ms []wsclient.Msg, typ string) []wsclient.Msg {
	var out []wsclient.Msg
	for _, m := range ms {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

func req(t testing.TB, c *wsclient.Client, m map[string]any) wsclient.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Request(ctx, m)
	if err != nil {
		t.Fatalf("request %v: %v", m, err)
	}
	return r
}

// seed creates a layout placing two new widgets for user.
func seed(t testing.TB, s *testenv.Server, user string) (dsync.Layout, []string) {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for _, title := range []string{"a", "b"} {
		kind := "push"
		w, err := s.Service.CreateWidget(ctx, user, dsync.WidgetDoc{Type: ptr("stat"), Title: &title,
			Source: &dsync.Source{Kind: kind}}, user)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	l, err := s.Service.CreateLayout(ctx, user, dsync.NewLayout{Author: user, Doc: dsync.LayoutDoc{Name: ptr("Ops"), Columns: ptr(12),
		Items: map[string]dsync.Item{ids[0]: {X: 0, Y: 0, W: 6, H: 4}, ids[1]: {X: 6, Y: 0, W: 6, H: 4}}}})
	if err != nil {
		t.Fatal(err)
	}
	return l, ids
}

func ptr[T any](v T) *T { return &v }

func op(o, path string, v any) map[string]any {
	m := map[string]any{"op": o, "path": path}
	if v != nil {
		m["value"] = v
	}
	return m
}

func TestProtocol_EveryMessageType(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := testenv.New(t, testenv.Options{Backend: backend})
		l, ws := seed(t, s, "alice")
		box := newInbox()
		c := s.Dial(t, "alice", box.add)
		if c.Hello.Type != "hello" || c.Hello.User != "alice" || !strings.HasPrefix(c.Hello.Client, "c-") {
			t.Fatalf("hello: got %+v", c.Hello)
		}
		ch := "layout:" + l.ID

		if r := req(t, c, map[string]any{"type": "ping"}); r.Type != "pong" {
			t.Fatalf("ping: got %s", r.Raw)
		}
		r := req(t, c, map[string]any{"type": "subscribe", "channel": ch})
		if r.Type != "subscribed" || r.Version != 1 || len(r.Snapshot) == 0 {
			t.Fatalf("subscribe: got %s", r.Raw)
		}
		var presence []struct {
			User    string   `json:"user"`
			Clients []string `json:"clients"`
		}
		if err := json.Unmarshal(r.Presence, &presence); err != nil || len(presence) != 1 || presence[0].Clients[0] != c.Hello.Client {
			t.Fatalf("presence in subscribed: got %s", r.Presence)
		}
		r = req(t, c, map[string]any{"type": "edit", "channel": ch, "base": 1, "editId": "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e6f",
			"ops": []any{op("replace", "/items/"+ws[0]+"/x", 2)}})
		if r.Type != "ack" || r.Version != 2 || r.Rebased {
			t.Fatalf("edit: got %s", r.Raw)
		}
		box.waitFor(t, "the op", func(ms []wsclient.Msg) bool { return len(ofType(ms, "op")) == 1 })
		o := ofType(box.all(), "op")[0]
		if o.Version != 2 || o.Author != "alice" || o.Client != c.Hello.Client || o.Channel != ch {
			t.Fatalf("op: got %s", o.Raw)
		}
		r = req(t, c, map[string]any{"type": "edit", "channel": ch, "base": 1, "ops": []any{op("replace", "/items/"+ws[0]+"/x", 3)}})
		if r.Type != "conflict" || r.Version != 2 || !strings.Contains(string(r.Conflicts), `"reason":"overlap"`) {
			t.Fatalf("conflicting edit: got %s", r.Raw)
		}
		// Resume from version 1: the reply carries version 2's ops.
		c2 := s.Dial(t, "alice", nil)
		r = req(t, c2, map[string]any{"type": "subscribe", "channel": ch, "since": 1})
		if r.Type != "subscribed" || r.Version != 2 || !strings.Contains(string(r.Ops), `"version":2`) || len(r.Snapshot) != 0 {
			t.Fatalf("resume: got %s", r.Raw)
		}
		box.waitFor(t, "presence of the second tab", func(ms []wsclient.Msg) bool {
			for _, m := range ofType(ms, "presence") {
				if strings.Contains(string(m.Joined), c2.Hello.Client) {
					return true
				}
			}
			return false
		})

		wch := "widget:" + ws[0]
		r = req(t, c, map[string]any{"type": "subscribe", "channel": wch})
		if r.Type != "subscribed" || string(r.Data) != "null" {
			t.Fatalf("widget subscribe with nothing cached: got %s", r.Raw)
		}
		r = req(t, c, map[string]any{"type": "refresh", "channel": wch})
		if r.Type != "refreshed" {
			t.Fatalf("refresh: got %s", r.Raw)
		}
		r = req(t, c, map[string]any{"type": "subscribe", "channel": "user"})
		if r.Type != "subscribed" {
			t.Fatalf("user subscribe: got %s", r.Raw)
		}
		if _, err := s.Service.CreateLayout(context.Background(), "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("Second")}}); err != nil {
			t.Fatal(err)
		}
		box.waitFor(t, "layout.created", func(ms []wsclient.Msg) bool {
			for _, m := range ofType(ms, "event") {
				if m.Event == "layout.created" && strings.Contains(string(m.Layout), `"Second"`) {
					return true
				}
			}
			return false
		})
		r = req(t, c, map[string]any{"type": "auth", "token": testenv.Token(t, "alice")})
		if r.Type != "authed" || r.Exp == "" {
			t.Fatalf("auth: got %s", r.Raw)
		}
		r = req(t, c, map[string]any{"type": "unsubscribe", "channel": ch})
		if r.Type != "unsubscribed" {
			t.Fatalf("unsubscribe: got %s", r.Raw)
		}
	})
}

func TestProtocol_BadInputGetsAnErrorAndChangesNothing(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := testenv.New(t, testenv.Options{Backend: backend})
		l, ws := seed(t, s, "alice")
		other, _ := seed(t, s, "bob")
		c := s.Dial(t, "alice", nil)
		ch := "layout:" + l.ID
		cases := []struct {
			name string
			raw  string
			code string
		}{
			{"malformed JSON", `{"id":1,"type":`, "bad_request"},
			{"unknown type", `{"id":1,"type":"dance"}`, "bad_request"},
			{"unknown field", `{"id":1,"type":"ping","extra":1}`, "bad_request"},
			{"bad channel name", `{"id":1,"type":"subscribe","channel":"room:1"}`, "validation_failed"},
			{"empty channel id", `{"id":1,"type":"subscribe","channel":"layout:"}`, "validation_failed"},
			{"another user's layout", fmt.Sprintf(`{"id":1,"type":"subscribe","channel":"layout:%s"}`, other.ID), "not_found"},
			{"edit another user's layout", fmt.Sprintf(`{"id":1,"type":"edit","channel":"layout:%s","base":1,"ops":[]}`, other.ID), "not_found"},
			{"edit without base", fmt.Sprintf(`{"id":1,"type":"edit","channel":"%s","ops":[]}`, ch), "validation_failed"},
			{"edit with a bad op", fmt.Sprintf(`{"id":1,"type":"edit","channel":"%s","base":1,"ops":[{"op":"move","path":"/name"}]}`, ch), "validation_failed"},
			{"edit out of bounds", fmt.Sprintf(`{"id":1,"type":"edit","channel":"%s","base":1,"ops":[{"op":"replace","path":"/items/%s/w","value":99}]}`, ch, ws[0]), "validation_failed"},
			{"edit path outside the vocabulary", fmt.Sprintf(`{"id":1,"type":"edit","channel":"%s","base":1,"ops":[{"op":"replace","path":"/isDefault","value":false}]}`, ch), "validation_failed"},
			{"wrong type", `{"id":1,"type":"subscribe","channel":7}`, "validation_failed"},
			{"auth with a bad token", `{"id":1,"type":"auth","token":"nope"}`, "unauthorized"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				done := make(chan wsclient.Msg, 1)
				box := newInbox()
				cc := s.Dial(t, "alice", func(m wsclient.Msg) { box.add(m) })
				_ = c
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := cc.Send(ctx, []byte(tc.raw)); err != nil {
					t.Fatal(err)
				}
				go func() {
					ms := box.waitFor(t, "an error", func(ms []wsclient.Msg) bool { return len(ofType(ms, "error")) > 0 })
					done <- ofType(ms, "error")[0]
				}()
				var m wsclient.Msg
				select {
				case m = <-done:
				case <-ctx.Done():
					t.Fatal("no error reply")
				}
				if m.Error == nil || m.Error.Code != tc.code {
					t.Fatalf("got %s, want code %s", m.Raw, tc.code)
				}
				// The connection stays usable.
				if r := req(t, cc, map[string]any{"type": "ping"}); r.Type != "pong" {
					t.Fatalf("after the error: got %s", r.Raw)
				}
			})
		}
		for _, id := range []string{l.ID, other.ID} {
			owner := "alice"
			if id == other.ID {
				owner = "bob"
			}
			got, err := s.Service.Layout(context.Background(), owner, id)
			if err != nil || got.Version != 1 {
				t.Fatalf("layout %s changed: version %d, %v", id, got.Version, err)
			}
		}
	})
}

func TestProtocol_FrameOverTheReadLimitClosesThatConnectionOnly(t *testing.T) {
	s := testenv.New(t, testenv.Options{})
	big := s.Dial(t, "alice", nil)
	other := s.Dial(t, "alice", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	payload := fmt.Sprintf(`{"id":1,"type":"ping","x":"%s"}`, strings.Repeat("x", 70<<10))
	_ = big.Send(ctx, []byte(payload))
	select {
	case <-big.Done():
	case <-ctx.Done():
		t.Fatal("the connection was not closed")
	}
	if got := big.CloseStatus(); got != websocket.StatusMessageTooBig {
		t.Fatalf("close status: got %v, want 1009", got)
	}
	if r := req(t, other, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("the other connection: got %s", r.Raw)
	}
}

func TestProtocol_UpgradeRefusals(t *testing.T) {
	s := testenv.New(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cases := []struct {
		name   string
		opts   wsclient.Options
		status int
	}{
		{"no token", wsclient.Options{}, http.StatusUnauthorized},
		{"bad token", wsclient.Options{Token: "x.y.z"}, http.StatusUnauthorized},
		{"cross-origin", wsclient.Options{Token: testenv.Token(t, "alice"), Origin: "http://evil.example"}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := wsclient.Dial(ctx, s.WSURL, tc.opts)
			if err == nil {
				t.Fatal("the upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("got %v, want HTTP %d", resp, tc.status)
			}
		})
	}
	// Same origin and no origin are fine.
	for _, origin := range []string{"", s.URL} {
		c, _, err := wsclient.Dial(ctx, s.WSURL, wsclient.Options{Token: testenv.Token(t, "alice"), Origin: origin})
		if err != nil {
			t.Fatalf("origin %q: %v", origin, err)
		}
		c.CloseNow()
	}
}

func TestProtocol_AuthWithAnotherUsersTokenCloses4003(t *testing.T) {
	s := testenv.New(t, testenv.Options{})
	box := newInbox()
	c := s.Dial(t, "alice", box.add)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Request(ctx, map[string]any{"type": "auth", "token": testenv.Token(t, "mallory")})
	if err != nil || r.Type != "error" || r.Error.Code != "forbidden" {
		t.Fatalf("got %+v, %v; want a forbidden error", r, err)
	}
	<-c.Done()
	if got := c.CloseStatus(); got != 4003 {
		t.Fatalf("close status: got %v, want 4003", got)
	}
}

// TestProtocol_AllowedOriginsAreAdmitted: an origin named by --allowed-origins may open
// a WebSocket from another host; any other origin is still refused (SPEC §5).
func TestProtocol_AllowedOriginsAreAdmitted(t *testing.T) {
	s := testenv.New(t, testenv.Options{API: func(c *api.Config) { c.AllowedOrigins = []string{"https://dash.example"} }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := wsclient.Dial(ctx, s.WSURL, wsclient.Options{Token: testenv.Token(t, "alice"), Origin: "https://dash.example"})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	if r := req(t, c, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("ping: got %s", r.Raw)
	}
	c.CloseNow()
	for _, origin := range []string{"https://evil.example", "http://dash.example", "https://dash.example.evil"} {
		_, resp, err := wsclient.Dial(ctx, s.WSURL, wsclient.Options{Token: testenv.Token(t, "alice"), Origin: origin})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %s: got %v, %v; want HTTP 403", origin, resp, err)
		}
	}
}
