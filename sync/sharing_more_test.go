package sync_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestSharing_ThePatchBoundAndUnsharingEveryone: a patch names at most 200 users (a
// full list's removals and additions), and removing every member is a change: a new
// access version, an event per member, and they lose the layout.
func TestSharing_ThePatchBoundAndUnsharingEveryone(t *testing.T) {
	ctx := context.Background()
	f := newSharingFixture(t, openSQLite(t))
	id := f.layout.ID
	if _, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"bob": role(dsync.RoleEditor), "carol": role(dsync.RoleViewer)}, nil); err != nil {
		t.Fatal(err)
	}
	f.accessEvents()
	patch := func(n int) map[string]*dsync.Role {
		p := map[string]*dsync.Role{}
		for i := range n {
			p[fmt.Sprintf("u%03d", i)] = nil
		}
		return p
	}
	if a, err := f.svc.UpdateAccess(ctx, "alice", id, patch(200), nil); err != nil || a.Version != 1 || len(a.Users) != 2 {
		t.Fatalf("a patch of 200 users: %+v, %v; want it taken (changing nothing)", a, err)
	}
	_, err := f.svc.UpdateAccess(ctx, "alice", id, patch(201), nil)
	if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "users" {
		t.Errorf("a patch of 201 users: %+v", de.Details)
	}
	a, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"bob": nil, "carol": nil}, nil)
	if err != nil || a.Version != 2 || len(a.Users) != 0 || a.Users == nil {
		t.Fatalf("unshare everyone: %+v, %v; want version 2, no users", a, err)
	}
	if got := f.accessEvents(); !slices.Equal(got, []string{"bob=", "carol="}) {
		t.Errorf("events %v, want bob= and carol=", got)
	}
	if _, err := f.svc.Layout(ctx, "bob", id); dsync.ErrorCode(err) != dsync.CodeNotFound {
		t.Errorf("bob after unsharing: %v, want not_found", err)
	}
	if v, err := f.svc.AccessOf(ctx, "alice", id); err != nil || v.Version != 2 || len(v.Users) != 0 || v.Owner != "alice" || v.Links == nil {
		t.Errorf("access view: %+v, %v", v, err)
	}
	// Removing nobody from an empty list is no change.
	if a, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"bob": nil}, nil); err != nil || a.Version != 2 {
		t.Errorf("removing a non-member from an empty list: %+v, %v; want version 2", a, err)
	}
	if got := f.accessEvents(); len(got) != 0 {
		t.Errorf("events %v, want none", got)
	}
}

// TestSharing_ALinkReadsItsOwnLayoutOnly: a link's actor is not_found on every other
// layout of the owner, for reads, history, clones and widgets.
func TestSharing_ALinkReadsItsOwnLayoutOnly(t *testing.T) {
	ctx := context.Background()
	f := newSharingFixture(t, openSQLite(t))
	other, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("other"),
		Items: map[string]dsync.Item{f.w1: {W: 1, H: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := f.svc.CreateLink(ctx, "alice", other.ID, dsync.RoleViewer, dsync.DefaultLinkSeconds)
	if err != nil {
		t.Fatal(err)
	}
	who := dsync.LinkUserPrefix + lk.ID
	if l, err := f.svc.Layout(ctx, who, other.ID); err != nil || l.ID != other.ID {
		t.Fatalf("the link's own layout: %v", err)
	}
	_, err = f.svc.Layout(ctx, who, f.layout.ID)
	wantCode(t, err, dsync.CodeNotFound)
	_, _, err = f.svc.History(ctx, who, f.layout.ID, 0, 10)
	wantCode(t, err, dsync.CodeNotFound)
	// w1 is on both layouts, w2 only on the other one.
	if _, err := f.svc.Widget(ctx, who, f.w1); err != nil {
		t.Errorf("w1 through the link: %v", err)
	}
	_, err = f.svc.Widget(ctx, who, f.w2)
	wantCode(t, err, dsync.CodeNotFound)
	_, err = f.svc.AccessOf(ctx, who, other.ID)
	wantCode(t, err, dsync.CodeForbidden)
}
