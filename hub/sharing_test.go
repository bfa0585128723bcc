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
	"net/http"
	"testing"
	"time"

	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testpresence"
	"github.com/dashsync/dashsync/internal/testshare"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// sharingServer is a server of backend whose sweeper stays out of the way.
func sharingServer(t testing.TB, backend string) *testenv.Server {
	t.Helper()
	return testenv.New(t, testenv.Options{Backend: backend, Hub: testshare.PushOnly})
}

// sockOptions are the options of every socket in these tests: each wait bounded by
// waitLimit.
var sockOptions = testshare.Options{Wait: waitLimit}

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
		socks := map[string]*testshare.Sock{}
		for _, u := range []string{"alice", "bob", "carol"} {
			socks[u] = testshare.Dial(t, s, u, u+"'s user channel", sockOptions)
			socks[u].Subscribe(t, "user")
		}

		// step makes one change and checks the event each recipient got for it.
		want := map[string][]map[string]any{}
		step := func(name string, change func(), events map[string]func() map[string]any) {
			t.Helper()
			start := time.Now()
			change()
			for u, ev := range events {
				k := socks[u]
				k.WaitFor(t, k.Name+": "+name, func([]wsclient.Msg) bool { return len(k.Notices()) > len(want[u]) })
				got := k.Notices()[len(want[u])]
				t.Logf("%s: %s: %s %v after the change began", k.Name, name, got.Event, got.At.Sub(start).Round(time.Microsecond))
				w := ev()
				testshare.WantExactly(t, k.Name+": "+name, got, w)
				want[u] = append(want[u], w)
			}
		}
		shared := func(u string) func() map[string]any {
			return func() map[string]any { return testshare.SharedMsg(t, s, u, l.ID) }
		}
		unshared := func() map[string]any { return testshare.UnsharedMsg(l.ID) }

		step("bob added as viewer", func() { testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": "viewer"}) },
			map[string]func() map[string]any{"bob": shared("bob")})
		if got := want["bob"][0]["role"]; got != "viewer" {
			t.Fatalf("layout.shared for bob: got role %v, want viewer", got)
		}
		step("bob's role changed to editor", func() { testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": "editor"}) },
			map[string]func() map[string]any{"bob": shared("bob")})
		if got := want["bob"][1]["role"]; got != "editor" {
			t.Fatalf("layout.shared for bob: got role %v, want editor", got)
		}
		step("bob removed", func() { testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": nil}) },
			map[string]func() map[string]any{"bob": unshared})
		step("bob and carol added", func() { testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": "viewer", "carol": "editor"}) },
			map[string]func() map[string]any{"bob": shared("bob"), "carol": shared("carol")})

		secondLayout(t, s, "alice")
		deleteLayout := func() {
			testshare.MustREST(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/layouts/"+l.ID, nil)
		}
		step("the layout deleted", deleteLayout, map[string]func() map[string]any{"bob": unshared, "carol": unshared})

		// Nothing else: each recipient got exactly its events, and the owner none (her
		// layout.deleted, on her own channel, was published after every one of them).
		socks["alice"].Await(t, time.Time{}, "layout.deleted", testshare.IsEvent("layout.deleted"))
		for u, k := range socks {
			k.Sync(t)
			if got := k.Notices(); len(got) != len(want[u]) {
				t.Errorf("%s: got %d sharing messages %v, want %d", k.Name, len(got), testshare.Raws(got), len(want[u]))
			}
		}
	})
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
		testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": "viewer", "carol": "viewer"})

		bobs := []*testshare.Sock{testshare.Dial(t, s, "bob", "bob's tab 1", sockOptions),
			testshare.Dial(t, s, "bob", "bob's tab 2", sockOptions)}
		for _, k := range bobs {
			if r := k.Subscribe(t, lch); r.Role != "viewer" {
				t.Fatalf("%s: subscribed: got %s, want role viewer", k.Name, r.Raw)
			}
			k.Subscribe(t, wch)
		}
		bobs[0].Subscribe(t, "layout:"+own.ID)
		carol := testshare.Dial(t, s, "carol", "carol's tab", sockOptions)
		carol.Subscribe(t, lch)
		alice := testshare.Dial(t, s, "alice", "alice's tab", sockOptions)
		alice.Subscribe(t, lch)
		alice.Subscribe(t, wch)

		// mayRefresh checks what the role kept with bob's widget subscription allows.
		mayRefresh := func(k *testshare.Sock, allowed bool) {
			t.Helper()
			r := req(t, k.C, map[string]any{"type": "refresh", "channel": wch})
			switch {
			case allowed && r.Type != "refreshed":
				t.Fatalf("%s: refresh as an editor: got %s, want refreshed", k.Name, r.Raw)
			case !allowed && (r.Type != "error" || r.Error.Code != "forbidden"):
				t.Fatalf("%s: refresh as a viewer: got %s, want forbidden", k.Name, r.Raw)
			}
		}
		mayRefresh(bobs[0], false)

		for i, role := range []string{"editor", "viewer"} {
			start := time.Now()
			testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": role})
			for _, k := range bobs {
				k.AwaitAccess(t, start, l.ID, role)
				if n := len(ofType(k.All(), "access")); n != i+1 {
					t.Errorf("%s: got %d access messages after %d role changes", k.Name, n, i+1)
				}
				mayRefresh(k, role == "editor")
			}
		}

		start := time.Now()
		testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": nil})
		for _, k := range bobs {
			k.AwaitUnsubscribed(t, start, "unsubscribed from the layout", lch, "revoked")
			k.AwaitUnsubscribed(t, start, "unsubscribed from the widget", wch, "revoked")
			k.Refused(t, lch, "not_found")
			k.Refused(t, wch, "not_found")
			k.Refused(t, "widget:"+ws[1], "not_found")
		}
		// Bob's own layout stays subscribed: his edit of it reaches his tab.
		r := req(t, bobs[0].C, map[string]any{"type": "edit", "channel": "layout:" + own.ID, "base": own.Version,
			"ops": []any{op("replace", "/name", "Still mine")}})
		if r.Type != "ack" {
			t.Fatalf("bob's edit of his own layout: got %s, want an ack", r.Raw)
		}
		bobs[0].Await(t, start, "the op of his own layout", testshare.IsMsg("op", "layout:"+own.ID))

		// Carol heard nothing of bob's changes: the first sharing message she gets is
		// for her own (access notices are applied in order).
		start = time.Now()
		testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"carol": "editor"})
		carol.Await(t, start, "access editor", testshare.IsMsg("access", lch))
		if got := carol.Notices(); len(got) != 1 {
			t.Errorf("carol: got %v, want only the access message for her own role change", testshare.Raws(got))
		} else {
			testshare.WantExactly(t, carol.Name, got[0], testshare.AccessMsg(l.ID, "editor"))
		}
		// Nor did the owner, whose socket has everything queued before carol's notice.
		alice.Sync(t)
		if got := alice.Notices(); len(got) != 0 {
			t.Errorf("alice (the owner): got %v, want no sharing messages", testshare.Raws(got))
		}
		for _, k := range bobs {
			if got := k.Notices(); len(got) != 4 {
				t.Errorf("%s: got %v, want two access and two unsubscribed messages", k.Name, testshare.Raws(got))
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
		revoked, token := testshare.NewLink(t, s, "alice", l.ID)
		_, kept := testshare.NewLink(t, s, "alice", l.ID)

		links := []*testshare.Sock{testshare.DialToken(t, s, token, "revoked link's tab 1", sockOptions),
			testshare.DialToken(t, s, token, "revoked link's tab 2", sockOptions)}
		for _, k := range links {
			k.Subscribe(t, lch)
			k.Subscribe(t, wch)
		}
		links[0].Refused(t, "user", "forbidden")
		other := testshare.DialToken(t, s, kept, "other link's tab", sockOptions)
		other.Subscribe(t, lch)

		start := time.Now()
		testshare.MustREST(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/layouts/"+l.ID+"/links/"+revoked, nil)
		for _, k := range links {
			k.ClosedUnsubscribed(t, start, wire.CloseForbidden, "revoked", lch, wch)
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
		testshare.MustREST(t, s, "alice", http.StatusOK, "PATCH", "/api/dashboard/layouts/"+l.ID,
			map[string]any{"version": l.Version, "ops": []any{op("replace", "/name", "After the revocation")}})
		other.Await(t, start, "the next op", testshare.IsMsg("op", lch))
		if got := other.Notices(); len(got) != 0 {
			t.Errorf("%s: got %v, want no sharing messages", other.Name, testshare.Raws(got))
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
		testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": "editor", "carol": "viewer"})
		_, token := testshare.NewLink(t, s, "alice", l.ID)

		alice, bob, carol := testshare.Dial(t, s, "alice", "owner", sockOptions),
			testshare.Dial(t, s, "bob", "editor", sockOptions), testshare.Dial(t, s, "carol", "viewer", sockOptions)
		link := testshare.DialToken(t, s, token, "link", sockOptions)
		all := []*testshare.Sock{alice, bob, carol, link}
		for _, k := range all {
			k.Subscribe(t, lch)
		}
		members := []*testshare.Sock{bob, carol}
		for _, k := range members {
			k.Subscribe(t, wch)
			k.Subscribe(t, "user")
		}

		start := time.Now()
		testshare.MustREST(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/layouts/"+l.ID, nil)
		for _, k := range all {
			k.AwaitUnsubscribed(t, start, "unsubscribed from the layout", lch, "deleted")
		}
		for _, k := range members {
			m := k.Await(t, start, "unsubscribed from the widget", testshare.IsMsg("unsubscribed", wch))
			if m.Reason != "revoked" && m.Reason != "deleted" {
				t.Errorf("%s: got %s, want the widget subscription ended (reason revoked or deleted)", k.Name, m.Raw)
			}
			k.AwaitUnshared(t, start, l.ID)
			k.Refused(t, wch, "not_found")
		}
		for _, k := range all[:3] {
			k.Refused(t, lch, "not_found")
		}
	})
}

// TestSharing_SubscribedCarriesTheSubscribersRole: `subscribed` for a layout carries
// the subscriber's role: owner, editor, viewer, and viewer for a link.
func TestSharing_SubscribedCarriesTheSubscribersRole(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := sharingServer(t, backend)
		l, _ := seed(t, s, "alice")
		testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": "editor", "carol": "viewer"})
		_, token := testshare.NewLink(t, s, "alice", l.ID)
		for _, tc := range []struct {
			name, token, want string
		}{
			{"owner", testenv.Token(t, "alice"), "owner"},
			{"editor", testenv.Token(t, "bob"), "editor"},
			{"viewer", testenv.Token(t, "carol"), "viewer"},
			{"link", token, "viewer"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				k := testshare.DialToken(t, s, tc.token, tc.name, sockOptions)
				for _, since := range []any{nil, l.Version} { // a snapshot, then a resume
					m := map[string]any{"type": "subscribe", "channel": "layout:" + l.ID}
					if since != nil {
						m["since"] = since
					}
					r := req(t, k.C, m)
					if r.Type != "subscribed" || r.Role != tc.want {
						t.Errorf("subscribe (since %v): got %s, want subscribed with role %s", since, r.Raw, tc.want)
					}
					req(t, k.C, map[string]any{"type": "unsubscribe", "channel": "layout:" + l.ID})
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
		testshare.SetAccess(t, s, "alice", l.ID, map[string]any{"bob": "viewer"})
		linkID, token := testshare.NewLink(t, s, "alice", l.ID)
		linkUser := "link:" + linkID

		alice := testshare.Dial(t, s, "alice", "alice", sockOptions)
		subscribePresence(t, alice.C, ch)
		bob := testshare.Dial(t, s, "bob", "bob", sockOptions)
		got := subscribePresence(t, bob.C, ch)
		want := []testpresence.User{{User: "alice", Clients: []string{alice.C.Hello.Client}}, {User: "bob", Clients: []string{bob.C.Hello.Client}}}
		if !samePresence(got, want) {
			t.Errorf("bob's subscribed.presence: got %+v, want %+v", got, want)
		}
		alice.AwaitJoined(t, ch, testpresence.Entry{User: "bob", Client: bob.C.Hello.Client})

		link := testshare.DialToken(t, s, token, "link", sockOptions)
		if link.C.Hello.User != linkUser {
			t.Errorf("link's hello: got %s, want user %s", link.C.Hello.Raw, linkUser)
		}
		got = subscribePresence(t, link.C, ch)
		want = append(want, testpresence.User{User: linkUser, Clients: []string{link.C.Hello.Client}})
		if !samePresence(got, want) {
			t.Errorf("link's subscribed.presence: got %+v, want %+v", got, want)
		}
		for _, k := range []*testshare.Sock{alice, bob} {
			k.AwaitJoined(t, ch, testpresence.Entry{User: linkUser, Client: link.C.Hello.Client})
		}

		if err := bob.C.Close(); err != nil {
			t.Fatal(err)
		}
		left := testpresence.Entry{User: "bob", Client: bob.C.Hello.Client}
		for _, k := range []*testshare.Sock{alice, link} {
			k.AwaitLeft(t, ch, left)
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
			id, token := testshare.NewLink(t, s, "alice", l.ID)
			if status, b := s.RESTToken(t, token, "GET", "/api/dashboard/layouts/"+l.ID, nil); status != http.StatusOK {
				t.Errorf("link %d (%s): GET the layout with token %s: got %d %s, want 200", i, id, token, status, b)
				continue
			}
			k := testshare.DialToken(t, s, token, "link "+id, sockOptions)
			if r := k.Subscribe(t, "layout:"+l.ID); r.Role != "viewer" {
				t.Errorf("link %d: subscribed: got %s, want role viewer", i, r.Raw)
			}
			k.C.CloseNow()
		}
	})
}
