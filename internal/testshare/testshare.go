// Package testshare is for tests of SPEC §10's live consequences of sharing: the REST
// calls that share a layout (its access list, its links), a socket that keeps what it
// is pushed and waits for it, and the sharing messages (`access`, `unsubscribed`,
// layout.shared, layout.unshared) a socket should get, to check field for field.
package testshare

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testpresence"
	"github.com/dashsync/dashsync/internal/wsclient"
)

// PushOnly, as a hub's configuration (testenv.Options.Hub), keeps the sweeper, which
// would find a deleted layout or a revoked access by itself, out of the way for an
// hour: everything a socket is told must have been pushed by the change itself.
func PushOnly(c *hub.Config) { c.SweepInterval = time.Hour }

// MustREST sends one REST request as user and fails t unless the status is want; it
// returns the decoded body (nil when there is none).
func MustREST(t testing.TB, s *testenv.Server, user string, want int, method, path string, body any) map[string]any {
	t.Helper()
	status, b := s.REST(t, user, method, path, body)
	if status != want {
		t.Fatalf("%s %s as %s: got %d %s, want %d", method, path, user, status, b, want)
	}
	var out map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %s: %v", method, path, b, err)
		}
	}
	return out
}

// SetAccess merges users (user → role, or nil to remove) into layoutID's access list
// as owner, through s (PUT …/access).
func SetAccess(t testing.TB, s *testenv.Server, owner, layoutID string, users map[string]any) {
	t.Helper()
	MustREST(t, s, owner, http.StatusOK, http.MethodPut, "/api/dashboard/layouts/"+layoutID+"/access", map[string]any{"users": users})
}

// NewLink makes a viewer link to layoutID as owner, through s (POST …/links), and
// returns its id and token.
func NewLink(t testing.TB, s *testenv.Server, owner, layoutID string) (id, token string) {
	t.Helper()
	l := MustREST(t, s, owner, http.StatusCreated, http.MethodPost, "/api/dashboard/layouts/"+layoutID+"/links", map[string]any{"role": "viewer"})
	id, _ = l["id"].(string)
	token, _ = l["token"].(string)
	if id == "" || token == "" || l["role"] != "viewer" {
		t.Fatalf("POST …/links: got %v, want a viewer link with an id and a token", l)
	}
	return id, token
}

// DefaultWait is the bound on a socket's waits when Options.Wait is zero.
const DefaultWait = 30 * time.Second

// Options configure Dial and DialToken.
type Options struct {
	// Wait bounds each of the socket's waits: for a reply, for a pushed message, for
	// the close. Zero: DefaultWait.
	Wait time.Duration
}

// Sock is one connection with the messages pushed to it (replies aside), in the order
// received.
type Sock struct {
	// Name names the socket in failure messages and logs.
	Name string
	// C is the connection, closed at cleanup.
	C *wsclient.Client

	wait    time.Duration
	mu      sync.Mutex
	msgs    []wsclient.Msg
	changed chan struct{} // signalled after every pushed message
}

// Dial opens a socket for user on s.
func Dial(t testing.TB, s *testenv.Server, user, name string, o Options) *Sock {
	t.Helper()
	return DialToken(t, s, testenv.Token(t, user), name, o)
}

// DialToken is Dial with a bearer token: a link's, say.
func DialToken(t testing.TB, s *testenv.Server, token, name string, o Options) *Sock {
	t.Helper()
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	k := &Sock{Name: name, wait: o.Wait, changed: make(chan struct{}, 1)}
	k.C = s.DialToken(t, token, k.add)
	return k
}

func (k *Sock) add(m wsclient.Msg) {
	k.mu.Lock()
	k.msgs = append(k.msgs, m)
	k.mu.Unlock()
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

// All returns the messages pushed so far, in the order received.
func (k *Sock) All() []wsclient.Msg {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.msgs)
}

// Request sends m and returns its reply, failing t after the socket's wait.
func (k *Sock) Request(t testing.TB, m map[string]any) wsclient.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), k.wait)
	defer cancel()
	r, err := k.C.Request(ctx, m)
	if err != nil {
		t.Fatalf("%s: request %v: %v", k.Name, m, err)
	}
	return r
}

// Subscribe subscribes to channel and returns the reply, failing t unless it is
// `subscribed`.
func (k *Sock) Subscribe(t testing.TB, channel string) wsclient.Msg {
	t.Helper()
	r := k.Request(t, map[string]any{"type": "subscribe", "channel": channel})
	if r.Type != "subscribed" || r.Channel != channel {
		t.Fatalf("%s: subscribe %s: got %s, want subscribed", k.Name, channel, r.Raw)
	}
	return r
}

// SubscribeAs is Subscribe that fails t unless the reply's role is role as well (an
// empty role for a channel that is not a layout's).
func (k *Sock) SubscribeAs(t testing.TB, channel, role string) wsclient.Msg {
	t.Helper()
	r := k.Request(t, map[string]any{"type": "subscribe", "channel": channel})
	if r.Type != "subscribed" || r.Channel != channel || r.Role != role {
		t.Fatalf("%s: subscribe %s: got %s, want subscribed with role %q", k.Name, channel, r.Raw, role)
	}
	return r
}

// Refused subscribes to channel and fails t unless the answer is an error with code.
func (k *Sock) Refused(t testing.TB, channel, code string) {
	t.Helper()
	r := k.Request(t, map[string]any{"type": "subscribe", "channel": channel})
	if r.Type != "error" || r.Error == nil || r.Error.Code != code {
		t.Fatalf("%s: subscribe %s: got %s, want an error %s", k.Name, channel, r.Raw, code)
	}
}

// Sync returns once every message queued to the socket before now has been read: a
// ping's reply is queued after them.
func (k *Sock) Sync(t testing.TB) {
	t.Helper()
	if r := k.Request(t, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("%s: ping: got %s, want pong", k.Name, r.Raw)
	}
}

// WaitFor waits until pred holds for the messages pushed so far and returns them,
// failing t after the socket's wait.
func (k *Sock) WaitFor(t testing.TB, what string, pred func([]wsclient.Msg) bool) []wsclient.Msg {
	t.Helper()
	deadline := time.After(k.wait)
	for {
		if ms := k.All(); pred(ms) {
			return ms
		}
		select {
		case <-k.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s; got %d messages", k.wait, what, len(k.All()))
		}
	}
}

// Await waits for a pushed message matching pred and returns the first, logging how
// long after start (unless zero) it was read.
func (k *Sock) Await(t testing.TB, start time.Time, what string, pred func(wsclient.Msg) bool) wsclient.Msg {
	t.Helper()
	ms := k.WaitFor(t, k.Name+": "+what, func(ms []wsclient.Msg) bool { return slices.ContainsFunc(ms, pred) })
	m := ms[slices.IndexFunc(ms, pred)]
	if !start.IsZero() {
		t.Logf("%s: %s %v after the change began", k.Name, what, m.At.Sub(start).Round(time.Microsecond))
	}
	return m
}

// AwaitAccess waits for the `access` message with role (see Await) and fails t
// unless it is AccessMsg(layoutID, role), exactly.
func (k *Sock) AwaitAccess(t testing.TB, start time.Time, layoutID, role string) wsclient.Msg {
	t.Helper()
	m := k.Await(t, start, "access "+role, func(m wsclient.Msg) bool { return m.Type == "access" && m.Role == role })
	WantExactly(t, k.Name, m, AccessMsg(layoutID, role))
	return m
}

// AwaitUnsubscribed waits for the `unsubscribed` message for channel (see Await; what
// names it in logs) and fails t unless it is UnsubscribedMsg(channel, reason),
// exactly.
func (k *Sock) AwaitUnsubscribed(t testing.TB, start time.Time, what, channel, reason string) wsclient.Msg {
	t.Helper()
	m := k.Await(t, start, what, IsMsg("unsubscribed", channel))
	WantExactly(t, k.Name, m, UnsubscribedMsg(channel, reason))
	return m
}

// AwaitUnshared waits for a layout.unshared event (see Await) and fails t unless it is
// UnsharedMsg(layoutID), exactly.
func (k *Sock) AwaitUnshared(t testing.TB, start time.Time, layoutID string) wsclient.Msg {
	t.Helper()
	m := k.Await(t, start, "layout.unshared", IsEvent("layout.unshared"))
	WantExactly(t, k.Name, m, UnsharedMsg(layoutID))
	return m
}

// AwaitJoined waits for a `presence` message on channel whose joined list has e.
func (k *Sock) AwaitJoined(t testing.TB, channel string, e testpresence.Entry) wsclient.Msg {
	t.Helper()
	return k.Await(t, time.Time{}, "presence joined "+e.User, isChange(t, channel, e, true))
}

// AwaitLeft waits for a `presence` message on channel whose left list has e.
func (k *Sock) AwaitLeft(t testing.TB, channel string, e testpresence.Entry) wsclient.Msg {
	t.Helper()
	return k.Await(t, time.Time{}, "presence left "+e.User, isChange(t, channel, e, false))
}

// Closed waits for the connection to close and fails t unless the server closed it
// with code; it logs how long after start it closed.
func (k *Sock) Closed(t testing.TB, start time.Time, code websocket.StatusCode) {
	t.Helper()
	select {
	case <-k.C.Done():
	case <-time.After(k.wait):
		t.Fatalf("%s: still open %v after the change, want it closed with %d", k.Name, k.wait, code)
	}
	t.Logf("%s: closed %v after the change began", k.Name, time.Since(start).Round(time.Microsecond))
	if got := k.C.CloseStatus(); got != code {
		t.Fatalf("%s: closed with %d (%v), want %d", k.Name, got, k.C.Err(), code)
	}
}

// ClosedUnsubscribed is Closed, and then fails t unless the sharing messages (see
// Notices) the socket was pushed before the close are exactly one `unsubscribed` with
// reason for each of channels, in any order. They are read after the close: the
// server writes them first.
func (k *Sock) ClosedUnsubscribed(t testing.TB, start time.Time, code websocket.StatusCode, reason string, channels ...string) {
	t.Helper()
	k.Closed(t, start, code)
	got := k.Notices()
	slices.SortFunc(got, func(a, b wsclient.Msg) int { return strings.Compare(a.Channel, b.Channel) })
	want := slices.Sorted(slices.Values(channels))
	if len(got) != len(want) {
		t.Fatalf("%s: before the close got %v, want unsubscribed from %s", k.Name, Raws(got), strings.Join(want, " and "))
	}
	for i, ch := range want {
		WantExactly(t, k.Name, got[i], UnsubscribedMsg(ch, reason))
	}
}

// Notices are the pushed messages of the kinds sharing causes (`access`,
// `unsubscribed`, layout.shared and layout.unshared), in the order received.
func (k *Sock) Notices() []wsclient.Msg {
	var out []wsclient.Msg
	for _, m := range k.All() {
		if m.Type == "access" || m.Type == "unsubscribed" || (m.Type == "event" && (m.Event == "layout.shared" || m.Event == "layout.unshared")) {
			out = append(out, m)
		}
	}
	return out
}

// IsMsg matches the messages of type typ on channel.
func IsMsg(typ, channel string) func(wsclient.Msg) bool {
	return func(m wsclient.Msg) bool { return m.Type == typ && m.Channel == channel }
}

// IsEvent matches the `event` messages named name.
func IsEvent(name string) func(wsclient.Msg) bool {
	return func(m wsclient.Msg) bool { return m.Type == "event" && m.Event == name }
}

// isChange matches the `presence` messages on channel whose joined list (or, when not
// joined, left list) has e.
func isChange(t testing.TB, channel string, e testpresence.Entry, joined bool) func(wsclient.Msg) bool {
	return func(m wsclient.Msg) bool {
		if m.Type != "presence" || m.Channel != channel {
			return false
		}
		j, l := testpresence.Changes(t, m)
		if joined {
			return slices.Contains(j, e)
		}
		return slices.Contains(l, e)
	}
}

// Raws are the messages ms as received, for failure messages.
func Raws(ms []wsclient.Msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Raw)
	}
	return out
}

// WantExactly fails t unless m, decoded, is want: no field more, none less.
func WantExactly(t testing.TB, who string, m wsclient.Msg, want map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(m.Raw, &got); err != nil {
		t.Fatalf("%s: %v in %s", who, err, m.Raw)
	}
	// Round-trip want too, so its numbers compare as JSON numbers.
	b, _ := json.Marshal(want)
	var w map[string]any
	_ = json.Unmarshal(b, &w)
	if !reflect.DeepEqual(got, w) {
		t.Errorf("%s: got %s, want %s", who, m.Raw, b)
	}
}

// AccessMsg is the `access` message a member's subscription to layoutID gets when
// their role becomes role.
func AccessMsg(layoutID, role string) map[string]any {
	return map[string]any{"type": "access", "channel": "layout:" + layoutID, "role": role}
}

// UnsubscribedMsg is the `unsubscribed` message that ends a subscription to channel
// for reason (revoked, deleted).
func UnsubscribedMsg(channel, reason string) map[string]any {
	return map[string]any{"type": "unsubscribed", "channel": channel, "reason": reason}
}

// UnsharedMsg is the layout.unshared event a member's `user` channel gets when
// layoutID is no longer theirs to see.
func UnsharedMsg(layoutID string) map[string]any {
	return map[string]any{"type": "event", "channel": "user", "event": "layout.unshared", "layout": map[string]any{"id": layoutID}}
}

// SharedMsg is the layout.shared event user should get for layoutID: the summary
// their list of shared layouts has for it (read through s), and their role.
func SharedMsg(t testing.TB, s *testenv.Server, user, layoutID string) map[string]any {
	t.Helper()
	for _, l := range MustREST(t, s, user, http.StatusOK, http.MethodGet, "/api/dashboard/layouts?include=shared", nil)["layouts"].([]any) {
		if m := l.(map[string]any); m["id"] == layoutID {
			return map[string]any{"type": "event", "channel": "user", "event": "layout.shared", "layout": m, "role": m["role"]}
		}
	}
	t.Fatalf("%s's layouts (include=shared) do not list %s", user, layoutID)
	return nil
}
