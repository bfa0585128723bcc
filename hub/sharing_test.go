package hub_test

// This file tests SPEC §10's live consequences of sharing on one instance, through real
// sockets, the real REST routes and both stores: the recipient's `user` channel hears
// layout.shared and layout.unshared; a member's sockets follow their role (`access`)
// and lose the layout and its widgets' channels when their access goes (`unsubscribed`,
// reason revoked); a revoked link's sockets are unsubscribed and closed with 4003;
// deleting a layout unsubscribes everyone (reason deleted); `subscribed` carries the
// subscriber's role; presence names every account, a link as link:<id>.
//
// SPEC §10 asks for these within 1 s. No test here asserts a wall-clock bound: the hub's
// sweeper (the only periodic path that could find a change on its own) waits an hour,
// so whatever a socket sees was pushed by the change itself; each wait has a generous
// deadline and the observed latency is logged.

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testpresence"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// pushOnly keeps the sweeper, which would find a deleted layout by itself, out of the
// way: everything a socket is told must have been pushed.
func pushOnly(c *hub.Config) { c.SweepInterval = time.Hour }

// sharingServer is a server of backend whose sweeper stays out of the way.
func sharingServer(t testing.TB, backend string) *testenv.Server {
	t.Helper()
	return testenv.New(t, testenv.Options{Backend: backend, Hub: pushOnly})
}

// setAccess merges users into layoutID's access list as owner (PUT …/access).
func setAccess(t testing.TB, s *testenv.Server, owner, layoutID string, users map[string]any) {
	t.Helper()
	mustREST(t, s, owner, http.StatusOK, "PUT", "/api/dashboard/layouts/"+layoutID+"/access", map[string]any{"users": users})
}

// newLink makes a viewer link to layoutID as owner and returns its id and token.
func newLink(t testing.TB, s *testenv.Server, owner, layoutID string) (id, token string) {
	t.Helper()
	l := mustREST(t, s, owner, http.StatusCreated, "POST", "/api/dashboard/layouts/"+layoutID+"/links", map[string]any{"role": "viewer"})
	id, _ = l["id"].(string)
	token, _ = l["token"].(string)
	if id == "" || token == "" || l["role"] != "viewer" {
		t.Fatalf("POST …/links: got %v, want a viewer link with an id and a token", l)
	}
	return id, token
}

// sock is one connection with the messages pushed to it.
type sock struct {
	name string
	c    *wsclient.Client
	box  *inbox
}

func dialSock(t testing.TB, s *testenv.Server, user, name string) *sock {
	t.Helper()
	return dialSockToken(t, s, testenv.Token(t, user), name)
}

func dialSockToken(t testing.TB, s *testenv.Server, token, name string) *sock {
	t.Helper()
	k := &sock{name: name, box: newInbox()}
	k.c = s.DialToken(t, token, k.box.add)
	return k
}

// subscribe subscribes to channel and returns the reply, failing t unless it is
// `subscribed`.
func (k *sock) subscribe(t testing.TB, channel string) wsclient.Msg {
	t.Helper()
	r := req(t, k.c, map[string]any{"type": "subscribe", "channel": channel})
	if r.Type != "subscribed" || r.Channel != channel {
		t.Fatalf("%s: subscribe %s: got %s, want subscribed", k.name, channel, r.Raw)
	}
	return r
}

// refused subscribes to channel and fails t unless the answer is an error with code.
func (k *sock) refused(t testing.TB, channel, code string) {
	t.Helper()
	r := req(t, k.c, map[string]any{"type": "subscribe", "channel": channel})
	if r.Type != "error" || r.Error == nil || r.Error.Code != code {
		t.Fatalf("%s: subscribe %s: got %s, want an error %s", k.name, channel, r.Raw, code)
	}
}

// await waits for a pushed message matching pred and returns the first, logging how
// long after start (unless zero) it was read.
func (k *sock) await(t testing.TB, start time.Time, what string, pred func(wsclient.Msg) bool) wsclient.Msg {
	t.Helper()
	ms := k.box.waitFor(t, k.name+": "+what, func(ms []wsclient.Msg) bool { return slices.ContainsFunc(ms, pred) })
	m := ms[slices.IndexFunc(ms, pred)]
	if !start.IsZero() {
		t.Logf("%s: %s %v after the change began", k.name, what, m.At.Sub(start).Round(time.Microsecond))
	}
	return m
}

// closed waits for the connection to close and fails t unless the server closed it
// with code; it logs how long after start it closed.
func (k *sock) closed(t testing.TB, start time.Time, code websocket.StatusCode) {
	t.Helper()
	select {
	case <-k.c.Done():
	case <-time.After(waitLimit):
		t.Fatalf("%s: still open %v after the change, want it closed with %d", k.name, waitLimit, code)
	}
	t.Logf("%s: closed %v after the change began", k.name, time.Since(start).Round(time.Microsecond))
	if got := k.c.CloseStatus(); got != code {
		t.Fatalf("%s: closed with %d (%v), want %d", k.name, got, k.c.Err(), code)
	}
}

// sync returns once every message queued to the socket before now has been read: a
// ping's reply is queued after them.
func (k *sock) sync(t testing.TB) {
	t.Helper()
	if r := req(t, k.c, map[string]any{"type": "ping"}); r.Type != "pong" {
		t.Fatalf("%s: ping: got %s, want pong", k.name, r.Raw)
	}
}

// notices are the pushed messages of the kinds sharing causes, in the order received.
func (k *sock) notices() []wsclient.Msg {
	var out []wsclient.Msg
	for _, m := range k.box.all() {
		if m.Type == "access" || m.Type == "unsubscribed" || (m.Type == "event" && (m.Event == "layout.shared" || m.Event == "layout.unshared")) {
			out = append(out, m)
		}
	}
	return out
}

func isMsg(typ, channel string) func(wsclient.Msg) bool {
	return func(m wsclient.Msg) bool { return m.Type == typ && m.Channel == channel }
}

func isEvent(name string) func(wsclient.Msg) bool {
	return func(m wsclient.Msg) bool { return m.Type == "event" && m.Event == name }
}

// wantExactly fails t unless m, decoded, is want: no field more, none less.
func wantExactly(t testing.TB, who string, m wsclient.Msg, want map[string]any) {
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

func accessMsg(layoutID, role string) map[string]any {
	return map[string]any{"type": "access", "channel": "layout:" + layoutID, "role": role}
}

func unsubscribedMsg(channel, reason string) map[string]any {
	return map[string]any{"type": "unsubscribed", "channel": channel, "reason": reason}
}

func unsharedMsg(layoutID string) map[string]any {
	return map[string]any{"type": "event", "channel": "user", "event": "layout.unshared", "layout": map[string]any{"id": layoutID}}
}

// sharedMsg is the layout.shared event user should get for layoutID: the summary
// their list of shared layouts has for it, and their role.
func sharedMsg(t testing.TB, s *testenv.Server, user, layoutID string) map[string]any {
	t.Helper()
	for _, l := range mustREST(t, s, user, http.StatusOK, "GET", "/api/dashboard/layouts?include=shared", nil)["layouts"].([]any) {
		if m := l.(map[string]any); m["id"] == layoutID {
			return map[string]any{"type": "event", "channel": "user", "event": "layout.shared", "layout": m, "role": m["role"]}
		}
	}
	t.Fatalf("%s's layouts (include=shared) do not list %s", user, layoutID)
	return nil
}

// secondLayout gives user another layout, so that deleting one is allowed.
func secondLayout(t testing.TB, s *testenv.Server, user string) dsync.Layout {
	t.Helper()
	l, err := s.Service.CreateLayout(context.Background(), user, dsync.NewLayout{Author: user,
		Doc: dsync.LayoutDoc{Name: ptr("Spare"), Columns: ptr(12)}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSharing_RecipientsUserChannelHearsSharedAndUnshared: the recipient's `user`
// channel gets layout.shared (the layout's summary as their list has it, and their
// role) when they are added and when their role changes, and layout.unshared (the
// layout's id) when they are removed and when the layout is deleted; the owner's
// `user` channel hears none of it.
func TestSharing_RecipientsUserChannelHearsSharedAndUnshared(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := sharingServer(t, backend)
		l, _ := seed(t, s, "alice")
		socks := map[string]*sock{}
		for _, u := range []string{"alice", "bob", "carol"} {
			socks[u] = dialSock(t, s, u, u+"'s user channel")
			socks[u].subscribe(t, "user")
		}

		// step makes one change and checks the event each recipient got for it.
		want := map[string][]map[string]any{}
		step := func(name string, change func(), events map[string]func() map[string]any) {
			t.Helper()
			start := time.Now()
			change()
			for u, ev := range events {
				k := socks[u]
				k.box.waitFor(t, k.name+": "+name, func([]wsclient.Msg) bool { return len(k.notices()) > len(want[u]) })
				got := k.notices()[len(want[u])]
				t.Logf("%s: %s: %s %v after the change began", k.name, name, got.Event, got.At.Sub(start).Round(time.Microsecond))
				w := ev()
				wantExactly(t, k.name+": "+name, got, w)
				want[u] = append(want[u], w)
			}
		}
		shared := func(u string) func() map[string]any { return func() map[string]any { return sharedMsg(t, s, u, l.ID) } }
		unshared := func() map[string]any { return unsharedMsg(l.ID) }

		step("bob added as viewer", func() { setAccess(t, s, "alice", l.ID, map[string]any{"bob": "viewer"}) },
			map[string]func() map[string]any{"bob": shared("bob")})
		if got := want["bob"][0]["role"]; got != "viewer" {
			t.Fatalf("layout.shared for bob: got role %v, want viewer", got)
		}
		step("bob's role changed to editor", func() { setAccess(t, s, "alice", l.ID, map[string]any{"bob": "editor"}) },
			map[string]func() map[string]any{"bob": shared("bob")})
		if got := want["bob"][1]["role"]; got != "editor" {
			t.Fatalf("layout.shared for bob: got role %v, want editor", got)
		}
		step("bob removed", func() { setAccess(t, s, "alice", l.ID, map[string]any{"bob": nil}) },
			map[string]func() map[string]any{"bob": unshared})
		step("bob and carol added", func() { setAccess(t, s, "alice", l.ID, map[string]any{"bob": "viewer", "carol": "editor"}) },
			map[string]func() map[string]any{"bob": shared("bob"), "carol": shared("carol")})

		secondLayout(t, s, "alice")
		step("the layout deleted", func() { mustREST(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/layouts/"+l.ID, nil) },
			map[string]func() map[string]any{"bob": unshared, "carol": unshared})

		// Nothing else: each recipient got exactly its events, and the owner none (her
		// layout.deleted, on her own channel, was published after every one of them).
		socks["alice"].await(t, time.Time{}, "layout.deleted", isEvent("layout.deleted"))
		for u, k := range socks {
			k.sync(t)
			if got := k.notices(); len(got) != len(want[u]) {
				t.Errorf("%s: got %d sharing messages %v, want %d", k.name, len(got), raws(got), len(want[u]))
			}
		}
	})
}

func raws(ms []wsclient.Msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Raw)
	}
	return out
}

// TestSharing_MembersSocketsFollowTheirRole: every socket of a member subscribed to
// the layout gets `access` with the new role when it changes, and the role kept with
// the subscriptions changes with it (a refresh of a widget on the layout is refused to
// a viewer, allowed to an editor); when their access is removed, each gets
// `unsubscribed` reason revoked for the layout and for the widget channels it had
// through it, and from then on `not_found` for both. Their other subscriptions, the
// owner's sockets and other members are untouched.
func TestSharing_MembersSocketsFollowTheirRole(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := sharingServer(t, backend)
		l, ws := seed(t, s, "alice")
		own, _ := seed(t, s, "bob")
		lch, wch := "layout:"+l.ID, "widget:"+ws[0]
		setAccess(t, s, "alice", l.ID, map[string]any{"bob": "viewer", "carol": "viewer"})

		bobs := []*sock{dialSock(t, s, "bob", "bob's tab 1"), dialSock(t, s, "bob", "bob's tab 2")}
		for _, k := range bobs {
			if r := k.subscribe(t, lch); r.Role != "viewer" {
				t.Fatalf("%s: subscribed: got %s, want role viewer", k.name, r.Raw)
			}
			k.subscribe(t, wch)
		}
		bobs[0].subscribe(t, "layout:"+own.ID)
		carol := dialSock(t, s, "carol", "carol's tab")
		carol.subscribe(t, lch)
		alice := dialSock(t, s, "alice", "alice's tab")
		alice.subscribe(t, lch)
		alice.subscribe(t, wch)

		// mayRefresh checks what the role kept with bob's widget subscription allows.
		mayRefresh := func(k *sock, allowed bool) {
			t.Helper()
			r := req(t, k.c, map[string]any{"type": "refresh", "channel": wch})
			switch {
			case allowed && r.Type != "refreshed":
				t.Fatalf("%s: refresh as an editor: got %s, want refreshed", k.name, r.Raw)
			case !allowed && (r.Type != "error" || r.Error.Code != "forbidden"):
				t.Fatalf("%s: refresh as a viewer: got %s, want forbidden", k.name, r.Raw)
			}
		}
		mayRefresh(bobs[0], false)

		for i, role := range []string{"editor", "viewer"} {
			start := time.Now()
			setAccess(t, s, "alice", l.ID, map[string]any{"bob": role})
			for _, k := range bobs {
				m := k.await(t, start, "access "+role, func(m wsclient.Msg) bool { return m.Type == "access" && m.Role == role })
				wantExactly(t, k.name, m, accessMsg(l.ID, role))
				if n := len(ofType(k.box.all(), "access")); n != i+1 {
					t.Errorf("%s: got %d access messages after %d role changes", k.name, n, i+1)
				}
				mayRefresh(k, role == "editor")
			}
		}

		start := time.Now()
		setAccess(t, s, "alice", l.ID, map[string]any{"bob": nil})
		for _, k := range bobs {
			wantExactly(t, k.name, k.await(t, start, "unsubscribed from the layout", isMsg("unsubscribed", lch)), unsubscribedMsg(lch, "revoked"))
			wantExactly(t, k.name, k.await(t, start, "unsubscribed from the widget", isMsg("unsubscribed", wch)), unsubscribedMsg(wch, "revoked"))
			k.refused(t, lch, "not_found")
			k.refused(t, wch, "not_found")
			k.refused(t, "widget:"+ws[1], "not_found")
		}
		// Bob's own layout stays subscribed: his edit of it reaches his tab.
		r := req(t, bobs[0].c, map[string]any{"type": "edit", "channel": "layout:" + own.ID, "base": own.Version,
			"ops": []any{op("replace", "/name", "Still mine")}})
		if r.Type != "ack" {
			t.Fatalf("bob's edit of his own layout: got %s, want an ack", r.Raw)
		}
		bobs[0].await(t, start, "the op of his own layout", isMsg("op", "layout:"+own.ID))

		// Carol heard nothing of bob's changes: the first sharing message she gets is
		// for her own (access notices are applied in order).
		start = time.Now()
		setAccess(t, s, "alice", l.ID, map[string]any{"carol": "editor"})
		carol.await(t, start, "access editor", isMsg("access", lch))
		if got := carol.notices(); len(got) != 1 {
			t.Errorf("carol: got %v, want only the access message for her own role change", raws(got))
		} else {
			wantExactly(t, carol.name, got[0], accessMsg(l.ID, "editor"))
		}
		// Nor did the owner, whose socket has everything queued before carol's notice.
		alice.sync(t)
		if got := alice.notices(); len(got) != 0 {
			t.Errorf("alice (the owner): got %v, want no sharing messages", raws(got))
		}
		for _, k := range bobs {
			if got := k.notices(); len(got) != 4 {
				t.Errorf("%s: got %v, want two access and two unsubscribed messages", k.name, raws(got))
			}
		}
	})
}

// TestSharing_RevokedLinkIsUnsubscribedThenClosed4003: every socket of a revoked link
// gets `unsubscribed` reason revoked for each of its channels and is then closed with
// 4003; its token no longer opens a socket or reads the layout. Another link of the
// same layout keeps working. A link has no `user` channel.
func TestSharing_RevokedLinkIsUnsubscribedThenClosed4003(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := sharingServer(t, backend)
		l, ws := seed(t, s, "alice")
		lch, wch := "layout:"+l.ID, "widget:"+ws[0]
		revoked, token := newLink(t, s, "alice", l.ID)
		_, kept := newLink(t, s, "alice", l.ID)

		links := []*sock{dialSockToken(t, s, token, "revoked link's tab 1"), dialSockToken(t, s, token, "revoked link's tab 2")}
		for _, k := range links {
			k.subscribe(t, lch)
			k.subscribe(t, wch)
		}
		links[0].refused(t, "user", "forbidden")
		other := dialSockToken(t, s, kept, "other link's tab")
		other.subscribe(t, lch)

		start := time.Now()
		mustREST(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/layouts/"+l.ID+"/links/"+revoked, nil)
		for _, k := range links {
			k.closed(t, start, wire.CloseForbidden)
			// Read before the close: the messages were written first.
			got := k.notices()
			slices.SortFunc(got, func(a, b wsclient.Msg) int { return strings.Compare(a.Channel, b.Channel) })
			if len(got) != 2 {
				t.Fatalf("%s: before the close got %v, want unsubscribed from %s and %s", k.name, raws(got), lch, wch)
			}
			wantExactly(t, k.name, got[0], unsubscribedMsg(lch, "revoked"))
			wantExactly(t, k.name, got[1], unsubscribedMsg(wch, "revoked"))
		}

		if status, b := s.RESTToken(t, token, "GET", "/api/dashboard/layouts/"+l.ID, nil); status != http.StatusUnauthorized {
			t.Errorf("GET the layout with the revoked token: got %d %s, want 401", status, b)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if c, resp, err := wsclient.Dial(ctx, s.WSURL, wsclient.Options{Token: token}); err == nil {
			c.CloseNow()
			t.Errorf("dial with the revoked token: connected, want refused")
		} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("dial with the revoked token: got %v, want 401", err)
		}

		// The other link's socket is still open and subscribed.
		start = time.Now()
		mustREST(t, s, "alice", http.StatusOK, "PATCH", "/api/dashboard/layouts/"+l.ID,
			map[string]any{"version": l.Version, "ops": []any{op("replace", "/name", "After the revocation")}})
		other.await(t, start, "the next op", isMsg("op", lch))
		if got := other.notices(); len(got) != 0 {
			t.Errorf("%s: got %v, want no sharing messages", other.name, raws(got))
		}
	})
}

// TestSharing_DeletingALayoutUnsubscribesEverySubscriber: when the owner deletes a
// layout, each of its subscribers (the owner, an editor, a viewer, a link) gets
// `unsubscribed` reason deleted; the members' widget subscriptions through it end
// and their `user` channels get layout.unshared; afterwards it is not_found for all.
func TestSharing_DeletingALayoutUnsubscribesEverySubscriber(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := sharingServer(t, backend)
		l, ws := seed(t, s, "alice")
		secondLayout(t, s, "alice")
		lch, wch := "layout:"+l.ID, "widget:"+ws[0]
		setAccess(t, s, "alice", l.ID, map[string]any{"bob": "editor", "carol": "viewer"})
		_, token := newLink(t, s, "alice", l.ID)

		alice, bob, carol := dialSock(t, s, "alice", "owner"), dialSock(t, s, "bob", "editor"), dialSock(t, s, "carol", "viewer")
		link := dialSockToken(t, s, token, "link")
		all := []*sock{alice, bob, carol, link}
		for _, k := range all {
			k.subscribe(t, lch)
		}
		members := []*sock{bob, carol}
		for _, k := range members {
			k.subscribe(t, wch)
			k.subscribe(t, "user")
		}

		start := time.Now()
		mustREST(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/layouts/"+l.ID, nil)
		for _, k := range all {
			wantExactly(t, k.name, k.await(t, start, "unsubscribed from the layout", isMsg("unsubscribed", lch)), unsubscribedMsg(lch, "deleted"))
		}
		for _, k := range members {
			m := k.await(t, start, "unsubscribed from the widget", isMsg("unsubscribed", wch))
			if m.Reason != "revoked" && m.Reason != "deleted" {
				t.Errorf("%s: got %s, want the widget subscription ended (reason revoked or deleted)", k.name, m.Raw)
			}
			wantExactly(t, k.name, k.await(t, start, "layout.unshared", isEvent("layout.unshared")), unsharedMsg(l.ID))
			k.refused(t, wch, "not_found")
		}
		for _, k := range all[:3] {
			k.refused(t, lch, "not_found")
		}
	})
}

// TestSharing_SubscribedCarriesTheSubscribersRole: `subscribed` for a layout carries
// the subscriber's role: owner, editor, viewer, and viewer for a link.
func TestSharing_SubscribedCarriesTheSubscribersRole(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := sharingServer(t, backend)
		l, _ := seed(t, s, "alice")
		setAccess(t, s, "alice", l.ID, map[string]any{"bob": "editor", "carol": "viewer"})
		_, token := newLink(t, s, "alice", l.ID)
		for _, tc := range []struct {
			name, token, want string
		}{
			{"owner", testenv.Token(t, "alice"), "owner"},
			{"editor", testenv.Token(t, "bob"), "editor"},
			{"viewer", testenv.Token(t, "carol"), "viewer"},
			{"link", token, "viewer"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				k := dialSockToken(t, s, tc.token, tc.name)
				for _, since := range []any{nil, l.Version} { // a snapshot, then a resume
					m := map[string]any{"type": "subscribe", "channel": "layout:" + l.ID}
					if since != nil {
						m["since"] = since
					}
					r := req(t, k.c, m)
					if r.Type != "subscribed" || r.Role != tc.want {
						t.Errorf("subscribe (since %v): got %s, want subscribed with role %s", since, r.Raw, tc.want)
					}
					req(t, k.c, map[string]any{"type": "unsubscribe", "channel": "layout:" + l.ID})
				}
			})
		}
	})
}

// TestSharing_PresenceNamesEveryAccount: on a shared layout, presence lists each
// account with its clients (alice and bob see each other), and a link's connection
// appears as user link:<id>, in `subscribed` and in `presence` joins and leaves.
func TestSharing_PresenceNamesEveryAccount(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := sharingServer(t, backend)
		l, _ := seed(t, s, "alice")
		ch := "layout:" + l.ID
		setAccess(t, s, "alice", l.ID, map[string]any{"bob": "viewer"})
		linkID, token := newLink(t, s, "alice", l.ID)
		linkUser := "link:" + linkID

		alice := dialSock(t, s, "alice", "alice")
		subscribePresence(t, alice.c, ch)
		bob := dialSock(t, s, "bob", "bob")
		got := subscribePresence(t, bob.c, ch)
		want := []testpresence.User{{User: "alice", Clients: []string{alice.c.Hello.Client}}, {User: "bob", Clients: []string{bob.c.Hello.Client}}}
		if !samePresence(got, want) {
			t.Errorf("bob's subscribed.presence: got %+v, want %+v", got, want)
		}
		joined := func(k *sock, e testpresence.Entry) {
			t.Helper()
			k.await(t, time.Time{}, "presence joined "+e.User, func(m wsclient.Msg) bool {
				if m.Type != "presence" || m.Channel != ch {
					return false
				}
				j, _ := testpresence.Changes(t, m)
				return slices.Contains(j, e)
			})
		}
		joined(alice, testpresence.Entry{User: "bob", Client: bob.c.Hello.Client})

		link := dialSockToken(t, s, token, "link")
		if link.c.Hello.User != linkUser {
			t.Errorf("link's hello: got %s, want user %s", link.c.Hello.Raw, linkUser)
		}
		got = subscribePresence(t, link.c, ch)
		want = append(want, testpresence.User{User: linkUser, Clients: []string{link.c.Hello.Client}})
		if !samePresence(got, want) {
			t.Errorf("link's subscribed.presence: got %+v, want %+v", got, want)
		}
		for _, k := range []*sock{alice, bob} {
			joined(k, testpresence.Entry{User: linkUser, Client: link.c.Hello.Client})
		}

		if err := bob.c.Close(); err != nil {
			t.Fatal(err)
		}
		left := testpresence.Entry{User: "bob", Client: bob.c.Hello.Client}
		for _, k := range []*sock{alice, link} {
			k.await(t, time.Time{}, "presence left bob", func(m wsclient.Msg) bool {
				if m.Type != "presence" || m.Channel != ch {
					return false
				}
				_, lf := testpresence.Changes(t, m)
				return slices.Contains(lf, left)
			})
		}
	})
}

// TestSharing_EveryLinkTokenOpensTheLayout: every link's token, whatever its random
// secret spells, reads the layout and opens a socket subscribed to it as a viewer (a
// layout has at most 20 live links: all of them, to cover many secrets).
func TestSharing_EveryLinkTokenOpensTheLayout(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := sharingServer(t, backend)
		l, _ := seed(t, s, "alice")
		for i := range dsync.MaxLiveLinks {
			id, token := newLink(t, s, "alice", l.ID)
			if status, b := s.RESTToken(t, token, "GET", "/api/dashboard/layouts/"+l.ID, nil); status != http.StatusOK {
				t.Errorf("link %d (%s): GET the layout with token %s: got %d %s, want 200", i, id, token, status, b)
				continue
			}
			k := dialSockToken(t, s, token, "link "+id)
			if r := k.subscribe(t, "layout:"+l.ID); r.Role != "viewer" {
				t.Errorf("link %d: subscribed: got %s, want role viewer", i, r.Raw)
			}
			k.c.CloseNow()
		}
	})
}
