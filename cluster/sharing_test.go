package cluster_test

// This file tests SPEC §10's live consequences "on every instance": each change is made
// through one instance's REST API and observed on sockets of the other (and of the
// first), over Postgres and Redis. Access changes, link revocations and deletions
// travel as notices on Redis pub/sub; layouts shared between accounts are co-edited
// across instances with every version reaching every subscriber once, in order.
//
// SPEC §10 asks for these within 1 s. No test here asserts a wall-clock bound: both
// hubs' sweepers (the only periodic path that could find a change on its own) wait an
// hour, so whatever a socket sees was pushed through Redis by the change itself; each
// wait has a generous deadline and the observed latency is logged.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testpresence"
	"github.com/dashsync/dashsync/internal/testtab"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// pushOnly keeps both sweepers out of the way: everything a socket is told must have
// been pushed.
func pushOnly(c *hub.Config) { c.SweepInterval = time.Hour }

// restOK sends one REST request as user and fails t unless the status is want; it
// returns the decoded body (nil when there is none).
func restOK(t testing.TB, s *testenv.Server, user string, want int, method, path string, body any) map[string]any {
	t.Helper()
	status, b := s.REST(t, user, method, path, body)
	if status != want {
		t.Fatalf("%s %s as %s: got %d %s, want %d", method, path, user, status, b, want)
	}
	var out map[string]any
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %s: %v", method, path, b, err)
		}
	}
	return out
}

// setAccess merges users into layoutID's access list as the owner, through s.
func setAccess(t testing.TB, s *testenv.Server, layoutID string, users map[string]any) {
	t.Helper()
	restOK(t, s, owner, http.StatusOK, http.MethodPut, "/api/dashboard/layouts/"+layoutID+"/access", map[string]any{"users": users})
}

// newLink makes a viewer link to layoutID as the owner, through s, and returns its id
// and token.
func newLink(t testing.TB, s *testenv.Server, layoutID string) (id, token string) {
	t.Helper()
	l := restOK(t, s, owner, http.StatusCreated, http.MethodPost, "/api/dashboard/layouts/"+layoutID+"/links", map[string]any{"role": "viewer"})
	id, _ = l["id"].(string)
	token, _ = l["token"].(string)
	if id == "" || token == "" {
		t.Fatalf("POST …/links: got %v, want a link with an id and a token", l)
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
	k := &sock{name: name, box: &inbox{}}
	k.c = s.DialToken(t, token, k.box.add)
	return k
}

// subscribe subscribes to channel and fails t unless the reply is `subscribed` (with
// role, when role is not empty).
func (k *sock) subscribe(t testing.TB, channel, role string) wsclient.Msg {
	t.Helper()
	r := req(t, k.c, map[string]any{"type": "subscribe", "channel": channel})
	if r.Type != "subscribed" || r.Channel != channel || r.Role != role {
		t.Fatalf("%s: subscribe %s: got %s, want subscribed with role %q", k.name, channel, r.Raw, role)
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
// long after start it was read.
func (k *sock) await(t testing.TB, start time.Time, what string, pred func(wsclient.Msg) bool) wsclient.Msg {
	t.Helper()
	m := k.box.waitFor(t, k.name+": "+what, pred)
	t.Logf("%s: %s %v after the change began", k.name, what, m.At.Sub(start).Round(time.Microsecond))
	return m
}

// closed waits for the connection to close and fails t unless the server closed it
// with code.
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
// their list of shared layouts has for it (read through s), and their role.
func sharedMsg(t testing.TB, s *testenv.Server, user, layoutID string) map[string]any {
	t.Helper()
	for _, l := range restOK(t, s, user, http.StatusOK, http.MethodGet, "/api/dashboard/layouts?include=shared", nil)["layouts"].([]any) {
		if m := l.(map[string]any); m["id"] == layoutID {
			return map[string]any{"type": "event", "channel": "user", "event": "layout.shared", "layout": m, "role": m["role"]}
		}
	}
	t.Fatalf("%s's layouts (include=shared) do not list %s", user, layoutID)
	return nil
}

// TestClusterSharing_AccessChangesReachTheMembersSocketsOnBothInstances: access
// changed through A reaches bob's sockets on B (and on A): his `user` channel gets
// layout.shared and layout.unshared, his subscriptions to the layout get `access`
// with each new role, and when his access is removed they and his widget
// subscriptions through it get `unsubscribed` reason revoked, after which both answer
// not_found on either instance.
func TestClusterSharing_AccessChangesReachTheMembersSocketsOnBothInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{Hub: pushOnly})
	l, ws := seed(t, c.a, 2)
	lch, wch := "layout:"+l.ID, "widget:"+ws[0]
	onB := dialSock(t, c.b, "bob", "bob's user channel on B")
	onB.subscribe(t, "user", "")

	start := time.Now()
	setAccess(t, c.a, l.ID, map[string]any{"bob": "viewer"})
	wantExactly(t, onB.name, onB.await(t, start, "layout.shared", isEvent("layout.shared")), sharedMsg(t, c.b, "bob", l.ID))

	tabs := []*sock{dialSock(t, c.b, "bob", "bob's tab on B"), dialSock(t, c.a, "bob", "bob's tab on A")}
	for _, k := range tabs {
		k.subscribe(t, lch, "viewer")
		k.subscribe(t, wch, "")
	}

	for i, role := range []string{"editor", "viewer"} {
		start := time.Now()
		setAccess(t, c.a, l.ID, map[string]any{"bob": role})
		for _, k := range tabs {
			m := k.await(t, start, "access "+role, func(m wsclient.Msg) bool { return m.Type == "access" && m.Role == role })
			wantExactly(t, k.name, m, accessMsg(l.ID, role))
		}
		events := func() []wsclient.Msg {
			var out []wsclient.Msg
			for _, m := range onB.notices() {
				if m.Event == "layout.shared" {
					out = append(out, m)
				}
			}
			return out
		}
		eventually(t, "layout.shared for the new role on B", func() bool { return len(events()) >= i+2 })
		t.Logf("%s: layout.shared %s %v after the change began", onB.name, role, events()[i+1].At.Sub(start).Round(time.Microsecond))
		wantExactly(t, onB.name, events()[i+1], sharedMsg(t, c.b, "bob", l.ID))
	}

	start = time.Now()
	setAccess(t, c.a, l.ID, map[string]any{"bob": nil})
	for _, k := range tabs {
		wantExactly(t, k.name, k.await(t, start, "unsubscribed from the layout", isMsg("unsubscribed", lch)), unsubscribedMsg(lch, "revoked"))
		wantExactly(t, k.name, k.await(t, start, "unsubscribed from the widget", isMsg("unsubscribed", wch)), unsubscribedMsg(wch, "revoked"))
		k.refused(t, lch, "not_found")
		k.refused(t, wch, "not_found")
		if got := k.notices(); len(got) != 4 {
			t.Errorf("%s: got %d sharing messages, want two access and two unsubscribed", k.name, len(got))
		}
	}
	wantExactly(t, onB.name, onB.await(t, start, "layout.unshared", isEvent("layout.unshared")), unsharedMsg(l.ID))
}

// TestClusterSharing_RevokedLinkIsClosed4003OnBothInstances: a link revoked through A
// has its sockets on both instances told `unsubscribed` reason revoked for each of
// their channels and then closed with 4003; another link's socket on B stays.
func TestClusterSharing_RevokedLinkIsClosed4003OnBothInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{Hub: pushOnly})
	l, ws := seed(t, c.a, 2)
	lch, wch := "layout:"+l.ID, "widget:"+ws[0]
	revoked, token := newLink(t, c.a, l.ID)
	_, kept := newLink(t, c.b, l.ID)

	links := []*sock{dialSockToken(t, c.b, token, "revoked link on B"), dialSockToken(t, c.a, token, "revoked link on A")}
	for _, k := range links {
		k.subscribe(t, lch, "viewer")
		k.subscribe(t, wch, "")
	}
	other := dialSockToken(t, c.b, kept, "other link on B")
	other.subscribe(t, lch, "viewer")

	start := time.Now()
	restOK(t, c.a, owner, http.StatusNoContent, http.MethodDelete, "/api/dashboard/layouts/"+l.ID+"/links/"+revoked, nil)
	for _, k := range links {
		k.closed(t, start, wire.CloseForbidden)
		got := k.notices()
		slices.SortFunc(got, func(a, b wsclient.Msg) int { return strings.Compare(a.Channel, b.Channel) })
		if len(got) != 2 {
			t.Fatalf("%s: before the close got %d sharing messages, want unsubscribed from %s and %s", k.name, len(got), lch, wch)
		}
		wantExactly(t, k.name, got[0], unsubscribedMsg(lch, "revoked"))
		wantExactly(t, k.name, got[1], unsubscribedMsg(wch, "revoked"))
	}
	if status, b := c.b.RESTToken(t, token, http.MethodGet, "/api/dashboard/layouts/"+l.ID, nil); status != http.StatusUnauthorized {
		t.Errorf("GET the layout on B with the revoked token: got %d %s, want 401", status, b)
	}

	start = time.Now()
	status, b := rest(t, c.a, http.MethodPatch, "/api/dashboard/layouts/"+l.ID,
		map[string]any{"version": l.Version, "ops": []dsync.Op{jsonOp("replace", "/name", "After the revocation")}})
	if status != http.StatusOK {
		t.Fatalf("PATCH on A: got %d %s", status, b)
	}
	other.await(t, start, "the next op", isMsg("op", lch))
	if got := other.notices(); len(got) != 0 {
		t.Errorf("%s: got %d sharing messages, want none", other.name, len(got))
	}
}

// TestClusterSharing_DeletionUnsubscribesEverySubscriberOnBothInstances: a layout
// deleted through A has every subscriber on B (owner, editor, viewer, link) and on A
// told `unsubscribed` reason deleted, and its members' `user` channels on B get
// layout.unshared.
func TestClusterSharing_DeletionUnsubscribesEverySubscriberOnBothInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{Hub: pushOnly})
	l, _ := seed(t, c.a, 1)
	seed(t, c.a, 0) // a second layout: the last one cannot be deleted
	lch := "layout:" + l.ID
	setAccess(t, c.a, l.ID, map[string]any{"bob": "editor", "carol": "viewer"})
	_, token := newLink(t, c.a, l.ID)

	subs := []*sock{dialSock(t, c.b, owner, "owner on B"), dialSock(t, c.b, "bob", "editor on B"),
		dialSock(t, c.b, "carol", "viewer on B"), dialSockToken(t, c.b, token, "link on B"),
		dialSock(t, c.a, "carol", "viewer on A"), dialSockToken(t, c.a, token, "link on A")}
	for i, role := range []string{"owner", "editor", "viewer", "viewer", "viewer", "viewer"} {
		subs[i].subscribe(t, lch, role)
	}
	members := []*sock{dialSock(t, c.b, "bob", "bob's user channel on B"), dialSock(t, c.b, "carol", "carol's user channel on B")}
	for _, k := range members {
		k.subscribe(t, "user", "")
	}

	start := time.Now()
	restOK(t, c.a, owner, http.StatusNoContent, http.MethodDelete, "/api/dashboard/layouts/"+l.ID, nil)
	for _, k := range subs {
		wantExactly(t, k.name, k.await(t, start, "unsubscribed", isMsg("unsubscribed", lch)), unsubscribedMsg(lch, "deleted"))
	}
	for _, k := range members {
		wantExactly(t, k.name, k.await(t, start, "layout.unshared", isEvent("layout.unshared")), unsharedMsg(l.ID))
	}
	for _, k := range subs[:3] {
		k.refused(t, lch, "not_found")
	}
}

// TestClusterSharing_RolesAndPresenceAcrossAccountsAndInstances: `subscribed` carries
// each subscriber's role on either instance, and presence crosses instances and
// accounts: alice on A sees bob and a link on B join (the link as link:<id>), and
// they see her.
func TestClusterSharing_RolesAndPresenceAcrossAccountsAndInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{Hub: pushOnly})
	l, _ := seed(t, c.a, 1)
	ch := "layout:" + l.ID
	setAccess(t, c.a, l.ID, map[string]any{"bob": "editor", "carol": "viewer"})
	linkID, token := newLink(t, c.a, l.ID)
	linkUser := dsync.LinkUserPrefix + linkID

	alice := dialSock(t, c.a, owner, "alice on A")
	alice.subscribe(t, ch, "owner")
	bob := dialSock(t, c.b, "bob", "bob on B")
	r := bob.subscribe(t, ch, "editor")
	carol := dialSock(t, c.a, "carol", "carol on A")
	carol.subscribe(t, ch, "viewer")
	link := dialSockToken(t, c.b, token, "link on B")
	if link.c.Hello.User != linkUser {
		t.Errorf("link's hello: got %s, want user %s", link.c.Hello.Raw, linkUser)
	}
	lr := link.subscribe(t, ch, "viewer")

	var p []testpresence.User
	if err := json.Unmarshal(r.Presence, &p); err != nil || !slices.ContainsFunc(p, func(u testpresence.User) bool {
		return u.User == owner && slices.Contains(u.Clients, alice.c.Hello.Client)
	}) {
		t.Errorf("bob's subscribed.presence on B: got %s, want it to list alice's tab on A", r.Presence)
	}
	if err := json.Unmarshal(lr.Presence, &p); err != nil {
		t.Fatal(err)
	}
	want := []testpresence.User{{User: owner, Clients: []string{alice.c.Hello.Client}}, {User: "bob", Clients: []string{bob.c.Hello.Client}},
		{User: "carol", Clients: []string{carol.c.Hello.Client}}, {User: linkUser, Clients: []string{link.c.Hello.Client}}}
	if !equalPresence(p, want) {
		t.Errorf("the link's subscribed.presence on B: got %+v, want %+v", p, want)
	}

	joined := func(k *sock, e testpresence.Entry) {
		t.Helper()
		k.box.waitFor(t, fmt.Sprintf("%s: presence joined %s", k.name, e.User), func(m wsclient.Msg) bool {
			if m.Type != "presence" || m.Channel != ch {
				return false
			}
			j, _ := testpresence.Changes(t, m)
			return slices.Contains(j, e)
		})
	}
	joined(alice, testpresence.Entry{User: "bob", Client: bob.c.Hello.Client})
	joined(alice, testpresence.Entry{User: linkUser, Client: link.c.Hello.Client})
	joined(bob, testpresence.Entry{User: "carol", Client: carol.c.Hello.Client})
	joined(bob, testpresence.Entry{User: linkUser, Client: link.c.Hello.Client})
}

// TestClusterSharing_OwnerAndEditorCoEditAcrossInstances: alice (the owner) on A and
// bob (an editor) on B each commit 500 edits to one layout, each on the last version
// they have seen (rebased, or resent after a conflict); alice, bob, carol (a viewer,
// on B) and a link (on A) each see every version exactly once and in order and end
// with the store's document; op messages and history entries name bob as the author
// of bob's edits and alice of hers.
func TestClusterSharing_OwnerAndEditorCoEditAcrossInstances(t *testing.T) {
	t.Parallel()
	// 1,001 versions: the op log keeps them all, so that checkRun reads every one.
	c := newCluster(t, clusterOptions{Hub: pushOnly, Retention: 2000})
	l, ws := seed(t, c.a, 3)
	setAccess(t, c.a, l.ID, map[string]any{"bob": "editor", "carol": "viewer"})
	_, token := newLink(t, c.b, l.ID)

	tab := func(s *testenv.Server, user, name string) *testtab.Tab {
		t.Helper()
		tb := testtab.Open(t, s, user, l.ID, name, tabOptions)
		return tb
	}
	alice := &editor{Tab: tab(c.a, owner, "alice on A"), own: ws[1], x: l.Items[ws[1]].X, y: l.Items[ws[1]].Y}
	bob := &editor{Tab: tab(c.b, "bob", "bob on B"), own: ws[2], x: l.Items[ws[2]].X, y: l.Items[ws[2]].Y}
	carol := tab(c.b, "carol", "carol (viewer) on B")
	link := testtab.OpenToken(t, c.a, token, l.ID, "link on A", tabOptions)
	tabs := []*testtab.Tab{alice.Tab, bob.Tab, carol, link}

	const perEditor = 500
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	r := &coedit{shared: ws[0]}
	acks, err := r.runEditors(ctx, []*editor{alice, bob}, perEditor)
	if err != nil {
		t.Fatal(err)
	}
	last := int64(1 + 2*perEditor)
	checkRun(t, c, l.ID, last, acks, tabs)
	t.Logf("%d edits each from alice on A and bob on B in %v: rebased %d and %d, conflicts resent %d and %d",
		perEditor, time.Since(start).Round(time.Millisecond), alice.rebased, bob.rebased, alice.conflicts, bob.conflicts)
	if alice.rebased+bob.rebased == 0 {
		t.Errorf("no edit was rebased: alice and bob never edited concurrently, so the test proved little")
	}

	// Who wrote each version, and from which tab.
	author := map[int64]*editor{}
	for _, e := range []*editor{alice, bob} {
		for _, a := range e.acks {
			author[a.Version] = e
		}
	}
	users := map[*editor]string{alice: owner, bob: "bob"}
	for _, tb := range tabs {
		bad := 0
		for _, m := range tb.Ops() {
			e := author[m.Version]
			if e == nil {
				t.Fatalf("%s: op %s: no acknowledged edit committed this version", tb.Name, m.Raw)
			}
			if m.Author != users[e] || m.Client != e.Conn.Hello.Client {
				if bad++; bad <= 3 {
					t.Errorf("%s: op %s: want author %s from client %s", tb.Name, m.Raw, users[e], e.Conn.Hello.Client)
				}
			}
		}
	}

	// History, read by the editor through B, page by page.
	seen := 0
	path := "/api/dashboard/layouts/" + l.ID + "/versions?limit=100"
	for before := ""; ; {
		var page struct {
			Versions []dsync.Change `json:"versions"`
			Next     *int64         `json:"next"`
		}
		status, b := c.b.REST(t, "bob", http.MethodGet, path+before, nil)
		if status != http.StatusOK || json.Unmarshal(b, &page) != nil {
			t.Fatalf("GET …/versions%s as bob on B: got %d %s", before, status, b)
		}
		for _, v := range page.Versions {
			if v.Version == 1 {
				continue // the layout's creation
			}
			seen++
			if e := author[v.Version]; e == nil || v.Author != users[e] {
				t.Errorf("history entry %d: got author %q, want %q", v.Version, v.Author, users[author[v.Version]])
			}
		}
		if page.Next == nil {
			break
		}
		before = "&before=" + strconv.FormatInt(*page.Next, 10)
	}
	if seen != 2*perEditor {
		t.Errorf("history: got %d entries after the creation, want %d", seen, 2*perEditor)
	}
}
