package sync_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestPermits_IsTheMatrixOfSpec10: each action needs the least role §10 names, and a
// link (a viewer) may only read.
func TestPermits_IsTheMatrixOfSpec10(t *testing.T) {
	want := map[dsync.Action][4]bool{ // viewer, editor, owner, link (as viewer)
		dsync.ActRead:      {true, true, true, true},
		dsync.ActReadData:  {true, true, true, true},
		dsync.ActClone:     {true, true, true, false},
		dsync.ActEdit:      {false, true, true, false},
		dsync.ActRefresh:   {false, true, true, false},
		dsync.ActManage:    {false, false, true, false},
		dsync.ActOwnWidget: {false, false, true, false},
	}
	if got := dsync.Actions(); len(got) != len(want) {
		t.Fatalf("Actions() = %v, want the %d of the table", got, len(want))
	}
	for _, a := range dsync.Actions() {
		w, ok := want[a]
		if !ok {
			t.Errorf("action %v has no row here", a)
			continue
		}
		got := [4]bool{dsync.Permits(dsync.RoleViewer, false, a), dsync.Permits(dsync.RoleEditor, false, a),
			dsync.Permits(dsync.RoleOwner, false, a), dsync.Permits(dsync.RoleViewer, true, a)}
		if got != w {
			t.Errorf("%v: viewer, editor, owner, link = %v, want %v", a, got, w)
		}
		if dsync.Permits("", false, a) || dsync.Permits("admin", false, a) {
			t.Errorf("%v: permitted without a known role", a)
		}
		if err := dsync.Allow("", false, a, "layout", "x"); dsync.ErrorCode(err) != dsync.CodeNotFound {
			t.Errorf("%v without a role: %v, want not_found", a, err)
		}
	}
	if err := dsync.Allow(dsync.RoleViewer, false, dsync.ActEdit, "layout", "x"); dsync.ErrorCode(err) != dsync.CodeForbidden {
		t.Errorf("a viewer's edit: %v, want forbidden", err)
	}
	if err := dsync.Allow(dsync.RoleViewer, true, dsync.ActClone, "layout", "x"); dsync.ErrorCode(err) != dsync.CodeForbidden {
		t.Errorf("a link's clone: %v, want forbidden", err)
	}
	if err := dsync.Allow(dsync.RoleEditor, false, dsync.ActEdit, "layout", "x"); err != nil {
		t.Errorf("an editor's edit: %v, want nil", err)
	}
}

// sharingFixture is alice's layout of newFixture on a service whose clock the test
// moves.
type sharingFixture struct {
	fixture
	now    *atomic.Int64 // unix nanoseconds
	events *recorder
}

func newSharingFixture(t *testing.T, st dsync.Store) sharingFixture {
	t.Helper()
	now := &atomic.Int64{}
	now.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	f := newFixture(t, st, 0)
	ev := &recorder{}
	f.svc = dsync.NewService(st, dsync.Options{Now: func() time.Time { return time.Unix(0, now.Load()) }, Announcer: ev})
	return sharingFixture{fixture: f, now: now, events: ev}
}

// accessEvents returns the AccessChanged events announced since the last call, as
// "user=role".
func (f sharingFixture) accessEvents() []string {
	return take(f.events, func(c dsync.AccessChanged) string { return c.User + "=" + string(c.Role) })
}

func role(r dsync.Role) *dsync.Role { return &r }

// TestSharing_AccessListIsAMergeWithItsOwnVersion: PUT access merges (null removes),
// counts its own version, refuses a stale version with the current list, the owner,
// links' ids, unknown roles and more than 100 members, and a change that changes
// nothing makes no version; members read with their role, strangers not at all.
func TestSharing_AccessListIsAMergeWithItsOwnVersion(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newSharingFixture(t, open(t))
		id := f.layout.ID
		a, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"bob": role(dsync.RoleEditor), "carol": role(dsync.RoleViewer)}, nil)
		if err != nil || a.Version != 1 || len(a.Users) != 2 || a.Owner != "alice" {
			t.Fatalf("first share: %+v, %v; want version 1 with bob and carol", a, err)
		}
		if _, r, err := f.svc.LayoutWithRole(ctx, "bob", id); err != nil || r != dsync.RoleEditor {
			t.Errorf("bob reads with %q, %v; want editor", r, err)
		}
		if _, err := f.svc.Layout(ctx, "dave", id); dsync.ErrorCode(err) != dsync.CodeNotFound {
			t.Errorf("dave reads: %v, want not_found", err)
		}
		if got := f.accessEvents(); !slices.Equal(got, []string{"bob=editor", "carol=viewer"}) {
			t.Errorf("events of the first share: %v, want bob=editor, carol=viewer", got)
		}
		v := int64(1)
		a, err = f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"carol": nil, "bob": role(dsync.RoleViewer), "dave": nil}, &v)
		if err != nil || a.Version != 2 || len(a.Users) != 1 || a.Users["bob"] != dsync.RoleViewer {
			t.Fatalf("merge at version 1: %+v, %v; want version 2 with bob a viewer", a, err)
		}
		// One event per user whose role changed, none for dave (never a member).
		if got := f.accessEvents(); !slices.Equal(got, []string{"bob=viewer", "carol="}) {
			t.Errorf("events of the merge: %v, want bob=viewer, carol= (removed)", got)
		}
		de := wantCode(t, func() error {
			_, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"dave": role(dsync.RoleViewer)}, &v)
			return err
		}(), dsync.CodeVersionConflict)
		if cur, ok := de.Current.(dsync.AccessView); !ok || cur.Version != 2 {
			t.Errorf("stale version's current = %#v, want the access list at version 2", de.Current)
		}
		if a, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"bob": role(dsync.RoleViewer), "zed": nil}, nil); err != nil || a.Version != 2 {
			t.Errorf("a merge that changes nothing: %+v, %v; want version 2 still", a, err)
		}
		if got := f.accessEvents(); len(got) != 0 {
			t.Errorf("events of a merge that changes nothing: %v, want none", got)
		}
		for _, users := range map[string]map[string]*dsync.Role{
			"the owner":    {"alice": role(dsync.RoleViewer)},
			"a link's id":  {"link:x": role(dsync.RoleViewer)},
			"role owner":   {"dave": role(dsync.RoleOwner)},
			"unknown role": {"dave": role("admin")},
			"empty id":     {"": role(dsync.RoleViewer)},
			"long id":      {strings.Repeat("u", dsync.MaxUserLen+1): role(dsync.RoleViewer)},
		} {
			_, err := f.svc.UpdateAccess(ctx, "alice", id, users, nil)
			wantCode(t, err, dsync.CodeValidation)
		}
		long := strings.Repeat("é", dsync.MaxUserLen) // the longest id, in characters
		if a, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{long: role(dsync.RoleViewer)}, nil); err != nil || a.Users[long] != dsync.RoleViewer {
			t.Fatalf("a user id of %d characters: %+v, %v; want it listed", dsync.MaxUserLen, a, err)
		}
		if _, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{long: nil}, nil); err != nil {
			t.Fatal(err)
		}
		many := map[string]*dsync.Role{}
		for i := range dsync.MaxMembers - 1 {
			many[fmt.Sprintf("m%03d", i)] = role(dsync.RoleViewer)
		}
		if a, err := f.svc.UpdateAccess(ctx, "alice", id, many, nil); err != nil || len(a.Users) != dsync.MaxMembers {
			t.Fatalf("%d new members beside bob: %d members, %v; want %d", len(many), len(a.Users), err, dsync.MaxMembers)
		}
		_, err = f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"one-more": role(dsync.RoleViewer)}, nil)
		wantCode(t, err, dsync.CodeValidation)
		// Only the owner manages it; a member is told it exists.
		_, err = f.svc.UpdateAccess(ctx, "bob", id, map[string]*dsync.Role{"dave": role(dsync.RoleViewer)}, nil)
		wantCode(t, err, dsync.CodeForbidden)
		_, err = f.svc.AccessOf(ctx, "bob", id)
		wantCode(t, err, dsync.CodeForbidden)
		_, err = f.svc.AccessOf(ctx, "dave", id)
		wantCode(t, err, dsync.CodeNotFound)
	})
}

// TestSharing_LinksReadTheirLayoutUntilRevokedOrExpired: a link token acts as
// "link:<id>" on its layout alone, is refused once revoked or at its expiry, or with a
// wrong secret or layout; at most 20 live links; TTLs are bounded.
func TestSharing_LinksReadTheirLayoutUntilRevokedOrExpired(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newSharingFixture(t, open(t))
		id := f.layout.ID
		lk, err := f.svc.CreateLink(ctx, "alice", id, dsync.RoleViewer, dsync.MinLinkTTLSeconds)
		if err != nil {
			t.Fatal(err)
		}
		actor, err := f.svc.LinkUser(ctx, lk.Token)
		if err != nil || actor.Who != dsync.LinkUserPrefix+lk.ID || actor.LayoutID != id {
			t.Fatalf("LinkUser = %+v, %v; want link:%s on %s", actor, err, lk.ID, id)
		}
		if !actor.Expires.Equal(lk.ExpiresAt.Time) || lk.ExpiresAt.Sub(lk.CreatedAt.Time) != dsync.MinLinkTTL {
			t.Errorf("expires %v (created %v), want %v later", lk.ExpiresAt, lk.CreatedAt, dsync.MinLinkTTL)
		}
		if _, r, err := f.svc.LayoutWithRole(ctx, actor.Who, id); err != nil || r != dsync.RoleViewer {
			t.Errorf("the link reads with %q, %v; want viewer", r, err)
		}
		if _, err := f.svc.WidgetFor(ctx, actor.Who, f.w1, dsync.ActReadData); err != nil {
			t.Errorf("the link reads its layout's widget: %v", err)
		}
		_, err = f.svc.WidgetFor(ctx, actor.Who, f.w1, dsync.ActRefresh)
		wantCode(t, err, dsync.CodeForbidden)
		_, _, err = f.svc.EditLayout(ctx, actor.Who, id, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}, Author: actor.Who})
		wantCode(t, err, dsync.CodeForbidden)
		_, err = f.svc.Layouts(ctx, actor.Who, false)
		wantCode(t, err, dsync.CodeForbidden)
		// A token of the link with another layout's id, or another secret, is refused.
		other := strings.Replace(lk.Token, id, f.w1, 1)
		for name, tok := range map[string]string{"another layout": other, "another secret": lk.Token[:len(lk.Token)-2] + "AA", "not a link": "x"} {
			if _, err := f.svc.LinkUser(ctx, tok); dsync.ErrorCode(err) != dsync.CodeUnauthorized {
				t.Errorf("%s: %v, want unauthorized", name, err)
			}
		}
		// Expiry holds at the instant it is reached.
		f.now.Add(int64(dsync.MinLinkTTL) - 1)
		if _, err := f.svc.LinkUser(ctx, lk.Token); err != nil {
			t.Errorf("a nanosecond before expiry: %v", err)
		}
		f.now.Add(1)
		if _, err := f.svc.LinkUser(ctx, lk.Token); dsync.ErrorCode(err) != dsync.CodeUnauthorized {
			t.Errorf("at expiry: %v, want unauthorized", err)
		}
		_, err = f.svc.Layout(ctx, actor.Who, id)
		wantCode(t, err, dsync.CodeNotFound)
		if a, _ := f.svc.AccessOf(ctx, "alice", id); len(a.Links) != 0 {
			t.Errorf("live links after expiry: %v, want none", a.Links)
		}
		// TTL bounds, role, revocation.
		for _, ttl := range []int64{0, dsync.MinLinkTTLSeconds - 1, dsync.MaxLinkTTLSeconds + 1, -1} {
			_, err := f.svc.CreateLink(ctx, "alice", id, dsync.RoleViewer, ttl)
			wantCode(t, err, dsync.CodeValidation)
		}
		_, err = f.svc.CreateLink(ctx, "alice", id, dsync.RoleEditor, dsync.DefaultLinkSeconds)
		wantCode(t, err, dsync.CodeValidation)
		live, err := f.svc.CreateLink(ctx, "alice", id, dsync.RoleViewer, dsync.MaxLinkTTLSeconds)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RevokeLink(ctx, "bob", id, live.ID); dsync.ErrorCode(err) != dsync.CodeNotFound {
			t.Errorf("a stranger revokes: %v, want not_found", err)
		}
		if err := f.svc.RevokeLink(ctx, "alice", id, live.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.LinkUser(ctx, live.Token); dsync.ErrorCode(err) != dsync.CodeUnauthorized {
			t.Errorf("revoked: %v, want unauthorized", err)
		}
		wantCode(t, f.svc.RevokeLink(ctx, "alice", id, live.ID), dsync.CodeNotFound)
		for i := range dsync.MaxLiveLinks {
			if _, err := f.svc.CreateLink(ctx, "alice", id, dsync.RoleViewer, dsync.DefaultLinkSeconds); err != nil {
				t.Fatalf("live link %d: %v", i+1, err)
			}
		}
		_, err = f.svc.CreateLink(ctx, "alice", id, dsync.RoleViewer, dsync.DefaultLinkSeconds)
		wantCode(t, err, dsync.CodeConflict)
	})
}

// TestSharing_MembersReachTheWidgetsPlacedOnTheLayout: a member reads the widgets the
// shared layout places (the owner's), by the best of their roles, and no other of the
// owner's widgets; changing a widget stays its owner's.
func TestSharing_MembersReachTheWidgetsPlacedOnTheLayout(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newSharingFixture(t, open(t))
		off, err := f.svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("off"),
			Source: &dsync.Source{Kind: "push"}}, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateAccess(ctx, "alice", f.layout.ID, map[string]*dsync.Role{"bob": role(dsync.RoleViewer)}, nil); err != nil {
			t.Fatal(err)
		}
		if w, r, err := f.svc.WidgetWithRole(ctx, "bob", f.w1); err != nil || r != dsync.RoleViewer || w.Owner != "alice" {
			t.Errorf("bob's reach of w1: %q, %v; want alice's widget as viewer", r, err)
		}
		_, err = f.svc.WidgetFor(ctx, "bob", f.w1, dsync.ActRefresh)
		wantCode(t, err, dsync.CodeForbidden)
		_, _, err = f.svc.WidgetWithRole(ctx, "bob", off.ID)
		wantCode(t, err, dsync.CodeNotFound)
		if _, r, err := f.svc.WidgetWithRole(ctx, "alice", f.w1); err != nil || r != dsync.RoleOwner {
			t.Errorf("alice's own widget: %q, %v; want owner", r, err)
		}
		// A second layout places w1 and makes bob an editor there: his best role wins.
		l2, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Author: "alice", Doc: dsync.LayoutDoc{Name: ptr("two"), Columns: ptr(12),
			Items: map[string]dsync.Item{f.w1: {X: 0, Y: 0, W: 6, H: 4}}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateAccess(ctx, "alice", l2.ID, map[string]*dsync.Role{"bob": role(dsync.RoleEditor)}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.WidgetFor(ctx, "bob", f.w1, dsync.ActRefresh); err != nil {
			t.Errorf("bob refreshes w1 as an editor of l2: %v", err)
		}
		rs, err := f.svc.WidgetsFor(ctx, "bob", []string{f.w1, f.w2, off.ID}, dsync.ActRefresh)
		if err != nil {
			t.Fatal(err)
		}
		if rs[0].Err != nil || dsync.ErrorCode(rs[1].Err) != dsync.CodeForbidden || dsync.ErrorCode(rs[2].Err) != dsync.CodeNotFound {
			t.Errorf("bob's batch refresh: %v, %v, %v; want ok, forbidden (viewer of the first), not_found", rs[0].Err, rs[1].Err, rs[2].Err)
		}
		_, _, err = f.svc.UpdateWidget(ctx, "bob", f.w1, 1, dsync.WidgetDoc{Title: ptr("mine")}, dsync.Edit{Author: "bob"})
		wantCode(t, err, dsync.CodeForbidden)
		wantCode(t, f.svc.RemoveWidget(ctx, "bob", f.w1, "bob"), dsync.CodeForbidden)
	})
}
