package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// Sharing (SPEC §10): access lists (LayoutAs, Access, SharedWith, PutAccess) and
// links (Link, Links, CreateLink, RevokeLink), and what DeleteLayout takes with it.

func putAccess(t testing.TB, s dsync.Store, a dsync.Access) error {
	t.Helper()
	return s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.PutAccess(t.Context(), a) })
}

func mustPutAccess(t testing.TB, s dsync.Store, a dsync.Access) {
	t.Helper()
	if err := putAccess(t, s, a); err != nil {
		t.Fatalf("PutAccess of layout %s at version %d: %v", a.LayoutID, a.Version, err)
	}
}

func mustAccess(t testing.TB, r dsync.Reader, layoutID string) dsync.Access {
	t.Helper()
	a, err := r.Access(t.Context(), layoutID)
	if err != nil {
		t.Fatalf("Access of layout %s: %v", layoutID, err)
	}
	return a
}

// checkAccess fails unless got is want; a nil want.Users means no members.
func checkAccess(t testing.TB, what string, got, want dsync.Access) {
	t.Helper()
	if got.LayoutID != want.LayoutID || got.Owner != want.Owner || got.Version != want.Version {
		t.Errorf("%s: got {layout %s owner %s version %d}, want {layout %s owner %s version %d}", what,
			got.LayoutID, got.Owner, got.Version, want.LayoutID, want.Owner, want.Version)
	}
	wantUsers := want.Users
	if wantUsers == nil {
		wantUsers = map[string]dsync.Role{}
	}
	if got.Users == nil || !maps.Equal(got.Users, wantUsers) {
		t.Errorf("%s users: got %v (nil %t), want %v", what, got.Users, got.Users == nil, wantUsers)
	}
}

// wantRole fails unless user reads layout id (its document as want) with role.
func wantRole(t testing.TB, r dsync.Reader, want dsync.Layout, user string, role dsync.Role) {
	t.Helper()
	got, gotRole, err := r.LayoutAs(t.Context(), want.ID, user)
	if err != nil {
		t.Errorf("LayoutAs(%s, %q): %v", want.ID, user, err)
		return
	}
	if gotRole != role {
		t.Errorf("LayoutAs(%s, %q): got role %q, want %q", want.ID, user, gotRole, role)
	}
	checkLayout(t, got, want)
}

// newLink returns a viewer link to layoutID made at created, valid for 30 days. Its
// hash starts with a NUL and ends with 0xff, so it must be kept as bytes.
func newLink(layoutID string, created int) dsync.Link {
	hash := make([]byte, 32)
	_, _ = rand.Read(hash)
	hash[0], hash[31] = 0x00, 0xff
	return dsync.Link{
		ID:        newID("link"),
		LayoutID:  layoutID,
		Role:      dsync.RoleViewer,
		Hash:      hash,
		CreatedAt: at(created),
		ExpiresAt: at(created + 30*24*3600*1000),
	}
}

func createLink(t testing.TB, s dsync.Store, l dsync.Link) {
	t.Helper()
	if err := s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.CreateLink(t.Context(), l) }); err != nil {
		t.Fatalf("create link %s: %v", l.ID, err)
	}
}

func revokeLink(t testing.TB, s dsync.Store, layoutID, id string) error {
	t.Helper()
	return s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.RevokeLink(t.Context(), layoutID, id) })
}

func checkLink(t testing.TB, got, want dsync.Link) {
	t.Helper()
	if got.ID != want.ID || got.LayoutID != want.LayoutID || got.Role != want.Role || got.Revoked != want.Revoked {
		t.Errorf("link: got {id %s layout %s role %q revoked %t}, want {id %s layout %s role %q revoked %t}",
			got.ID, got.LayoutID, got.Role, got.Revoked, want.ID, want.LayoutID, want.Role, want.Revoked)
	}
	if !bytes.Equal(got.Hash, want.Hash) {
		t.Errorf("link %s hash: got %x, want %x", want.ID, got.Hash, want.Hash)
	}
	checkTime(t, "link "+want.ID+" createdAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "link "+want.ID+" expiresAt", got.ExpiresAt, want.ExpiresAt)
}

func mustLink(t testing.TB, r dsync.Reader, id string) dsync.Link {
	t.Helper()
	l, err := r.Link(t.Context(), id)
	if err != nil {
		t.Fatalf("Link %s: %v", id, err)
	}
	return l
}

// wantLinks fails unless layoutID's listed links are want, in order, as created.
func wantLinks(t testing.TB, r dsync.Reader, what, layoutID string, want ...dsync.Link) {
	t.Helper()
	got, err := r.Links(t.Context(), layoutID)
	if err != nil {
		t.Errorf("%s: Links: %v", what, err)
		return
	}
	if got == nil {
		t.Errorf("%s: Links: got nil, want a non-nil list", what)
	}
	ids := func(ls []dsync.Link) []string {
		out := []string{}
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("%s: Links: got %v, want %v", what, ids(got), ids(want))
		return
	}
	for i := range want {
		checkLink(t, got[i], want[i])
	}
}

// wantShared fails unless user's shared layouts are want, in order, with roles.
func wantShared(t testing.TB, r dsync.Reader, what, user string, want []dsync.Layout, roles []dsync.Role) {
	t.Helper()
	got, err := r.SharedWith(t.Context(), user)
	if err != nil {
		t.Errorf("%s: SharedWith: %v", what, err)
		return
	}
	if got == nil {
		t.Errorf("%s: SharedWith: got nil, want a non-nil list", what)
	}
	var gotIDs, wantIDs []string
	var gotRoles []dsync.Role
	for _, sl := range got {
		gotIDs, gotRoles = append(gotIDs, sl.Layout.ID), append(gotRoles, sl.Role)
	}
	for _, l := range want {
		wantIDs = append(wantIDs, l.ID)
	}
	if !slices.Equal(gotIDs, wantIDs) || !slices.Equal(gotRoles, roles) {
		t.Errorf("%s: SharedWith: got %v with roles %v, want %v with roles %v", what, gotIDs, gotRoles, wantIDs, roles)
		return
	}
	for i := range want {
		checkLayout(t, got[i].Layout, want[i])
	}
}

func users(kv ...any) map[string]dsync.Role {
	m := map[string]dsync.Role{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(dsync.Role)
	}
	return m
}

// testAccessLayoutAs: LayoutAs returns the layout whoever owns it, with the owner's,
// a member's or no role; a missing layout is not_found.
func testAccessLayoutAs(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner, viewer, editor := newID("owner"), newID("viewer"), newID("editor")
	l := newLayout(owner)
	createLayout(t, s, l)
	mustPutAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: owner, Version: 1,
		Users: users(viewer, dsync.RoleViewer, editor, dsync.RoleEditor)})

	tests := []struct {
		name, user string
		want       dsync.Role
	}{
		{"the owner is owner", owner, dsync.RoleOwner},
		{"a viewer member is viewer", viewer, dsync.RoleViewer},
		{"an editor member is editor", editor, dsync.RoleEditor},
		{"anyone else has no role and still reads the layout", newID("stranger"), ""},
		{"a user id differing in case is someone else", strings.ToUpper(viewer), ""},
		{"a link's actor has no role", dsync.LinkUserPrefix + newID("link"), ""},
		{"the empty user has no role", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantRole(t, s, l, tc.user, tc.want)
			err := s.InTx(ctx, func(tx dsync.Tx) error { wantRole(t, tx, l, tc.user, tc.want); return nil })
			if err != nil {
				t.Fatalf("InTx: %v", err)
			}
		})
	}

	// Membership is per layout: the owner's other layout is not shared.
	other := newLayout(owner)
	createLayout(t, s, other)
	wantRole(t, s, other, viewer, "")
	wantRole(t, s, other, owner, dsync.RoleOwner)

	// An edit of the document keeps the access list; LayoutAs reads the new head.
	next, c := nextLayout(l, "k")
	updateLayout(t, s, next, c)
	wantRole(t, s, next, editor, dsync.RoleEditor)
	wantRole(t, s, next, owner, dsync.RoleOwner)

	_, role, err := s.LayoutAs(ctx, newID("layout"), owner)
	wantCode(t, "LayoutAs of a missing layout", err, dsync.CodeNotFound)
	if role != "" {
		t.Errorf("LayoutAs of a missing layout: got role %q, want none", role)
	}
}

// testAccessNeverShared: a layout never shared has an empty (non-nil) access list at
// version 0; a missing layout has none (not_found).
func testAccessNeverShared(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l := newLayout(newID("owner"))
	createLayout(t, s, l)
	want := dsync.Access{LayoutID: l.ID, Owner: l.Owner, Users: map[string]dsync.Role{}}
	checkAccess(t, "Access of a never shared layout", mustAccess(t, s, l.ID), want)
	err := s.InTx(ctx, func(tx dsync.Tx) error {
		checkAccess(t, "Access in a transaction", mustAccess(t, tx, l.ID), want)
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	_, err = s.Access(ctx, newID("layout"))
	wantCode(t, "Access of a missing layout", err, dsync.CodeNotFound)
}

// testAccessPutCAS: PutAccess is compare-and-swap on the access version; it replaces
// the members, leaves the owner and the document alone, and a missing layout is
// not_found.
func testAccessPutCAS(t *testing.T, s dsync.Store) {
	owner, alice, bob, carol := newID("owner"), newID("alice"), newID("bob"), newID("carol")
	l := newLayout(owner)
	createLayout(t, s, l)
	never := dsync.Access{LayoutID: l.ID, Owner: owner}

	for _, v := range []int64{2, 5} {
		err := putAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(carol, dsync.RoleEditor), Version: v})
		wantIs(t, fmt.Sprintf("PutAccess at version %d of a never shared layout", v), err, dsync.ErrStale)
	}
	checkAccess(t, "after stale puts", mustAccess(t, s, l.ID), never)

	v1 := dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(alice, dsync.RoleViewer, bob, dsync.RoleEditor), Version: 1}
	mustPutAccess(t, s, v1)
	checkAccess(t, "after the first put", mustAccess(t, s, l.ID), v1)

	for _, v := range []int64{1, 3} {
		err := putAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(carol, dsync.RoleEditor), Version: v})
		wantIs(t, fmt.Sprintf("PutAccess at version %d on version 1", v), err, dsync.ErrStale)
	}
	checkAccess(t, "after stale puts on version 1", mustAccess(t, s, l.ID), v1)
	wantRole(t, s, l, carol, "")

	// Replaced, not merged: alice goes, bob changes role, carol comes.
	v2 := dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(bob, dsync.RoleViewer, carol, dsync.RoleEditor), Version: 2}
	mustPutAccess(t, s, v2)
	checkAccess(t, "after the second put", mustAccess(t, s, l.ID), v2)
	wantRole(t, s, l, alice, "")
	wantRole(t, s, l, bob, dsync.RoleViewer)
	wantRole(t, s, l, carol, dsync.RoleEditor)

	// Removing everyone keeps counting versions; nil Users is no members too.
	v3 := dsync.Access{LayoutID: l.ID, Owner: owner, Users: map[string]dsync.Role{}, Version: 3}
	mustPutAccess(t, s, v3)
	checkAccess(t, "after removing every member", mustAccess(t, s, l.ID), v3)
	wantRole(t, s, l, bob, "")
	v4 := dsync.Access{LayoutID: l.ID, Owner: owner, Version: 4}
	mustPutAccess(t, s, v4)
	checkAccess(t, "after a put with nil users", mustAccess(t, s, l.ID), v4)

	// a.Owner is not written.
	mallory := newID("mallory")
	mustPutAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: mallory, Users: users(alice, dsync.RoleViewer), Version: 5})
	v5 := dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(alice, dsync.RoleViewer), Version: 5}
	checkAccess(t, "after a put naming another owner", mustAccess(t, s, l.ID), v5)
	wantRole(t, s, l, mallory, "")
	wantRole(t, s, l, owner, dsync.RoleOwner)

	// The document and its op log are untouched by access changes, and the other way
	// round.
	checkLayout(t, mustGetLayout(t, s, owner, l.ID), l)
	wantVersions(t, "changes after access puts", mustLayoutChanges(t, s, l.ID, 0, 100), seq(1, 1))
	next, c := nextLayout(l, "k")
	updateLayout(t, s, next, c)
	checkAccess(t, "after a document update", mustAccess(t, s, l.ID), v5)

	// A member with a role other than viewer or editor is refused, and nothing written.
	for _, r := range []dsync.Role{dsync.RoleOwner, "", "admin"} {
		err := putAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(carol, r), Version: 6})
		if err == nil {
			t.Errorf("PutAccess with a member of role %q: got nil error, want one", r)
		}
	}
	checkAccess(t, "after refused roles", mustAccess(t, s, l.ID), v5)

	err := putAccess(t, s, dsync.Access{LayoutID: newID("layout"), Owner: owner, Users: users(alice, dsync.RoleViewer), Version: 1})
	wantCode(t, "PutAccess of a missing layout", err, dsync.CodeNotFound)
}

// testAccessSharedWith: SharedWith lists the layouts a user is a member of, oldest
// first (by creation, then id), with the user's role; never the user's own.
func testAccessSharedWith(t *testing.T, s dsync.Store) {
	user, ownerA, ownerB := newID("user"), newID("owner"), newID("owner")
	mk := func(owner, prefix string, created int) dsync.Layout {
		l := newLayout(owner)
		l.ID, l.CreatedAt, l.UpdatedAt = prefix+"-"+newID("layout"), at(created), at(created)
		createLayout(t, s, l)
		return l
	}
	// Created out of order; two share a creation time and are ordered by id.
	third := mk(ownerA, "c", 3000)
	firstB := mk(ownerB, "b", 1000)
	second := mk(ownerB, "a", 2000)
	firstA := mk(ownerA, "a", 1000)
	notShared := mk(ownerA, "a", 500)
	own := mk(user, "a", 0)
	share := func(l dsync.Layout, v int64, u map[string]dsync.Role) {
		mustPutAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: l.Owner, Users: u, Version: v})
	}
	share(third, 1, users(user, dsync.RoleEditor))
	share(firstB, 1, users(user, dsync.RoleViewer, ownerA, dsync.RoleEditor))
	share(second, 1, users(user, dsync.RoleEditor))
	share(firstA, 1, users(user, dsync.RoleViewer))
	share(notShared, 1, users(newID("other"), dsync.RoleEditor))
	share(own, 1, users(ownerA, dsync.RoleViewer))

	wantShared(t, s, "user", user, []dsync.Layout{firstA, firstB, second, third},
		[]dsync.Role{dsync.RoleViewer, dsync.RoleViewer, dsync.RoleEditor, dsync.RoleEditor})
	// ownerA's own layouts (shared with user) are not listed; the ones shared with
	// ownerA are.
	wantShared(t, s, "an owner who is also a member", ownerA, []dsync.Layout{own, firstB},
		[]dsync.Role{dsync.RoleViewer, dsync.RoleEditor})
	wantShared(t, s, "a user nothing is shared with", newID("stranger"), nil, nil)

	// Removed from one, another role on another.
	share(second, 2, nil)
	share(third, 2, users(user, dsync.RoleViewer))
	wantShared(t, s, "user after access changes", user, []dsync.Layout{firstA, firstB, third},
		[]dsync.Role{dsync.RoleViewer, dsync.RoleViewer, dsync.RoleViewer})

	// The domain never lists an owner among the members (Access.Users), but the store
	// does not read the owner to refuse it: should one be listed anyway, the layout is
	// still the owner's, not shared with them.
	if err := putAccess(t, s, dsync.Access{LayoutID: own.ID, Owner: user, Version: 2,
		Users: users(user, dsync.RoleViewer, ownerA, dsync.RoleViewer)}); err == nil {
		wantShared(t, s, "user listed on their own layout", user, []dsync.Layout{firstA, firstB, third},
			[]dsync.Role{dsync.RoleViewer, dsync.RoleViewer, dsync.RoleViewer})
		wantRole(t, s, own, user, dsync.RoleOwner)
	}

	err := s.InTx(t.Context(), func(tx dsync.Tx) error {
		wantShared(t, tx, "user in a transaction", user, []dsync.Layout{firstA, firstB, third},
			[]dsync.Role{dsync.RoleViewer, dsync.RoleViewer, dsync.RoleViewer})
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

// testAccessLinks: links are created, read whole (revoked or expired), listed oldest
// first without the revoked ones, and revoked once, by their own layout only.
func testAccessLinks(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner := newID("owner")
	l := newLayout(owner)
	createLayout(t, s, l)
	other := newLayout(owner)
	createLayout(t, s, other)

	wantLinks(t, s, "a layout without links", l.ID)
	wantLinks(t, s, "a missing layout", newID("layout"))
	_, err := s.Link(ctx, newID("link"))
	wantCode(t, "Link of an unknown id", err, dsync.CodeNotFound)

	mk := func(layoutID, prefix string, created int) dsync.Link {
		lk := newLink(layoutID, created)
		lk.ID = prefix + "-" + lk.ID
		return lk
	}
	third := mk(l.ID, "c", 3000)
	firstB := mk(l.ID, "b", 1000)
	firstA := mk(l.ID, "a", 1000)
	expired := mk(l.ID, "a", 2000)
	expired.ExpiresAt = at(-1000) // expired before it was made
	otherLink := mk(other.ID, "a", 500)
	for _, lk := range []dsync.Link{third, firstB, expired, otherLink, firstA} {
		createLink(t, s, lk)
	}
	for _, lk := range []dsync.Link{third, firstB, firstA, expired, otherLink} {
		checkLink(t, mustLink(t, s, lk.ID), lk)
	}
	wantLinks(t, s, "links", l.ID, firstA, firstB, expired, third)
	wantLinks(t, s, "the other layout's links", other.ID, otherLink)

	// Revoked: not listed, still read, with Revoked set.
	if err := revokeLink(t, s, l.ID, firstB.ID); err != nil {
		t.Fatalf("RevokeLink: %v", err)
	}
	wantLinks(t, s, "links after a revoke", l.ID, firstA, expired, third)
	revoked := firstB
	revoked.Revoked = true
	checkLink(t, mustLink(t, s, firstB.ID), revoked)

	tests := []struct {
		name, layoutID, id string
	}{
		{"a link revoked already", l.ID, firstB.ID},
		{"another layout's link", other.ID, firstA.ID},
		{"a link by the wrong layout, the other way round", l.ID, otherLink.ID},
		{"an unknown link", l.ID, newID("link")},
		{"a missing layout", newID("layout"), third.ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, "RevokeLink", revokeLink(t, s, tc.layoutID, tc.id), dsync.CodeNotFound)
		})
	}
	wantLinks(t, s, "links after refused revokes", l.ID, firstA, expired, third)
	wantLinks(t, s, "the other layout's links after refused revokes", other.ID, otherLink)
	checkLink(t, mustLink(t, s, firstB.ID), revoked)

	// A link to a missing layout is not made.
	orphan := newLink(newID("layout"), 0)
	err = s.InTx(ctx, func(tx dsync.Tx) error { return tx.CreateLink(ctx, orphan) })
	wantCode(t, "CreateLink on a missing layout", err, dsync.CodeNotFound)
	_, err = s.Link(ctx, orphan.ID)
	wantCode(t, "Link refused for a missing layout", err, dsync.CodeNotFound)

	// A taken id is refused and the link kept as it was.
	dup := newLink(other.ID, 9000)
	dup.ID = third.ID
	if err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.CreateLink(ctx, dup) }); err == nil {
		t.Errorf("CreateLink with a taken id: got nil error, want one")
	}
	checkLink(t, mustLink(t, s, third.ID), third)
	wantLinks(t, s, "the other layout's links after a refused create", other.ID, otherLink)
}

// testAccessDeleteLayout: DeleteLayout takes the layout's access list and links with
// it, and leaves other layouts' alone; a new layout with the id starts unshared.
func testAccessDeleteLayout(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner, member := newID("owner"), newID("member")
	l := newLayout(owner)
	createLayout(t, s, l)
	keep := newLayout(owner)
	keep.CreatedAt = at(10)
	createLayout(t, s, keep)
	for _, x := range []dsync.Layout{l, keep} {
		mustPutAccess(t, s, dsync.Access{LayoutID: x.ID, Owner: owner, Users: users(member, dsync.RoleEditor), Version: 1})
	}
	lk, gone, keepLink := newLink(l.ID, 0), newLink(l.ID, 1), newLink(keep.ID, 0)
	for _, x := range []dsync.Link{lk, gone, keepLink} {
		createLink(t, s, x)
	}
	if err := revokeLink(t, s, l.ID, gone.ID); err != nil {
		t.Fatalf("RevokeLink: %v", err)
	}
	wantShared(t, s, "before delete", member, []dsync.Layout{l, keep}, []dsync.Role{dsync.RoleEditor, dsync.RoleEditor})

	if err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.DeleteLayout(ctx, owner, l.ID) }); err != nil {
		t.Fatalf("DeleteLayout: %v", err)
	}
	for _, id := range []string{lk.ID, gone.ID} {
		_, err := s.Link(ctx, id)
		wantCode(t, "Link of a deleted layout", err, dsync.CodeNotFound)
	}
	wantLinks(t, s, "links of a deleted layout", l.ID)
	wantShared(t, s, "after delete", member, []dsync.Layout{keep}, []dsync.Role{dsync.RoleEditor})
	for _, u := range []string{owner, member} {
		_, _, err := s.LayoutAs(ctx, l.ID, u)
		wantCode(t, "LayoutAs of a deleted layout", err, dsync.CodeNotFound)
	}
	_, err := s.Access(ctx, l.ID)
	wantCode(t, "Access of a deleted layout", err, dsync.CodeNotFound)
	err = putAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: owner, Version: 2})
	wantCode(t, "PutAccess of a deleted layout", err, dsync.CodeNotFound)
	err = s.InTx(ctx, func(tx dsync.Tx) error { return tx.CreateLink(ctx, newLink(l.ID, 5)) })
	wantCode(t, "CreateLink on a deleted layout", err, dsync.CodeNotFound)
	wantCode(t, "RevokeLink of a deleted layout's link", revokeLink(t, s, l.ID, lk.ID), dsync.CodeNotFound)

	checkAccess(t, "the kept layout's access", mustAccess(t, s, keep.ID),
		dsync.Access{LayoutID: keep.ID, Owner: owner, Users: users(member, dsync.RoleEditor), Version: 1})
	wantLinks(t, s, "the kept layout's links", keep.ID, keepLink)

	// The id can be used again and starts unshared, without links.
	again := newLayout(owner)
	again.ID = l.ID
	createLayout(t, s, again)
	checkAccess(t, "Access of a new layout with a deleted one's id", mustAccess(t, s, l.ID),
		dsync.Access{LayoutID: l.ID, Owner: owner, Version: 0})
	wantLinks(t, s, "links of a new layout with a deleted one's id", l.ID)
	wantRole(t, s, again, member, "")
	wantShared(t, s, "after the id is used again", member, []dsync.Layout{keep}, []dsync.Role{dsync.RoleEditor})
	_, err = s.Link(ctx, lk.ID)
	wantCode(t, "Link of the deleted layout after the id is used again", err, dsync.CodeNotFound)
}

// testAccessTxIsolation: a transaction reads its own access and link writes; others
// see them once it commits.
func testAccessTxIsolation(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner, member := newID("owner"), newID("member")
	l := newLayout(owner)
	createLayout(t, s, l)
	old := newLink(l.ID, 0)
	createLink(t, s, old)
	v1 := dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(member, dsync.RoleEditor), Version: 1}
	lk := newLink(l.ID, 100)
	revokedOld := old
	revokedOld.Revoked = true

	checkAll := func(t *testing.T, r dsync.Reader, what string) {
		t.Helper()
		checkAccess(t, what+": Access", mustAccess(t, r, l.ID), v1)
		wantRole(t, r, l, member, dsync.RoleEditor)
		wantShared(t, r, what, member, []dsync.Layout{l}, []dsync.Role{dsync.RoleEditor})
		checkLink(t, mustLink(t, r, lk.ID), lk)
		checkLink(t, mustLink(t, r, old.ID), revokedOld)
		wantLinks(t, r, what, l.ID, lk)
	}
	err := s.InTx(ctx, func(tx dsync.Tx) error {
		if err := tx.PutAccess(ctx, v1); err != nil {
			return err
		}
		if err := tx.CreateLink(ctx, lk); err != nil {
			return err
		}
		if err := tx.RevokeLink(ctx, l.ID, old.ID); err != nil {
			return err
		}
		checkAll(t, tx, "inside the transaction")

		// Outside, nothing yet.
		checkAccess(t, "Access outside before commit", mustAccess(t, s, l.ID), dsync.Access{LayoutID: l.ID, Owner: owner})
		wantRole(t, s, l, member, "")
		wantShared(t, s, "outside before commit", member, nil, nil)
		_, err := s.Link(ctx, lk.ID)
		wantCode(t, "Link outside before commit", err, dsync.CodeNotFound)
		checkLink(t, mustLink(t, s, old.ID), old)
		wantLinks(t, s, "outside before commit", l.ID, old)
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkAll(t, s, "after commit")
}

// testAccessRollback: access and link writes of a transaction that fails are gone,
// and so is a DeleteLayout's taking of them.
func testAccessRollback(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner, member := newID("owner"), newID("member")
	l := newLayout(owner)
	createLayout(t, s, l)
	d := newLayout(owner)
	d.CreatedAt = at(10)
	createLayout(t, s, d)
	v1 := dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(member, dsync.RoleViewer), Version: 1}
	mustPutAccess(t, s, v1)
	dv1 := dsync.Access{LayoutID: d.ID, Owner: owner, Users: users(member, dsync.RoleEditor), Version: 1}
	mustPutAccess(t, s, dv1)
	old, dLink := newLink(l.ID, 0), newLink(d.ID, 0)
	createLink(t, s, old)
	createLink(t, s, dLink)
	lk := newLink(l.ID, 100)
	boom := errors.New("boom")

	err := s.InTx(ctx, func(tx dsync.Tx) error {
		if err := tx.PutAccess(ctx, dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(newID("other"), dsync.RoleEditor), Version: 2}); err != nil {
			return err
		}
		if err := tx.CreateLink(ctx, lk); err != nil {
			return err
		}
		if err := tx.RevokeLink(ctx, l.ID, old.ID); err != nil {
			return err
		}
		if err := tx.DeleteLayout(ctx, owner, d.ID); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("InTx: got error %v, want fn's error unchanged", err)
	}

	checkAccess(t, "Access after rollback", mustAccess(t, s, l.ID), v1)
	_, err = s.Link(ctx, lk.ID)
	wantCode(t, "Link created in a rolled back transaction", err, dsync.CodeNotFound)
	checkLink(t, mustLink(t, s, old.ID), old)
	wantLinks(t, s, "after rollback", l.ID, old)
	checkAccess(t, "Access of the layout whose delete rolled back", mustAccess(t, s, d.ID), dv1)
	wantLinks(t, s, "links of the layout whose delete rolled back", d.ID, dLink)
	wantShared(t, s, "after rollback", member, []dsync.Layout{l, d}, []dsync.Role{dsync.RoleViewer, dsync.RoleEditor})
}

// testAccessFailedWritesKeepTx: PutAccess, CreateLink and RevokeLink failing with
// ErrStale or not_found write nothing and leave the transaction usable.
func testAccessFailedWritesKeepTx(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner, alice, bob := newID("owner"), newID("alice"), newID("bob")
	l := newLayout(owner)
	createLayout(t, s, l)
	v1 := dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(alice, dsync.RoleViewer), Version: 1}
	mustPutAccess(t, s, v1)
	old := newLink(l.ID, 0)
	createLink(t, s, old)
	v2 := dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(bob, dsync.RoleEditor), Version: 2}
	lk := newLink(l.ID, 100)

	err := s.InTx(ctx, func(tx dsync.Tx) error {
		stale := dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(bob, dsync.RoleViewer), Version: 1}
		wantIs(t, "PutAccess on an old version", tx.PutAccess(ctx, stale), dsync.ErrStale)
		wantCode(t, "PutAccess of a missing layout",
			tx.PutAccess(ctx, dsync.Access{LayoutID: newID("layout"), Owner: owner, Version: 1}), dsync.CodeNotFound)
		wantCode(t, "CreateLink on a missing layout", tx.CreateLink(ctx, newLink(newID("layout"), 0)), dsync.CodeNotFound)
		wantCode(t, "RevokeLink of an unknown link", tx.RevokeLink(ctx, l.ID, newID("link")), dsync.CodeNotFound)
		checkAccess(t, "Access after failed writes", mustAccess(t, tx, l.ID), v1)
		wantLinks(t, tx, "after failed writes", l.ID, old)

		if err := tx.PutAccess(ctx, v2); err != nil {
			return err
		}
		if err := tx.RevokeLink(ctx, l.ID, old.ID); err != nil {
			return err
		}
		wantCode(t, "RevokeLink twice in one transaction", tx.RevokeLink(ctx, l.ID, old.ID), dsync.CodeNotFound)
		return tx.CreateLink(ctx, lk)
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkAccess(t, "Access after commit", mustAccess(t, s, l.ID), v2)
	wantLinks(t, s, "after commit", l.ID, lk)
}

// testAccessRace: of concurrent PutAccess on one access version exactly one commits,
// the others are stale; of concurrent revokes of one link exactly one succeeds.
func testAccessRace(t *testing.T, s dsync.Store) {
	const writers = 10
	owner := newID("owner")
	l := newLayout(owner)
	createLayout(t, s, l)
	lk := newLink(l.ID, 0)
	createLink(t, s, lk)

	puts := make([]error, writers)
	revokes := make([]error, writers)
	members := make([]string, writers)
	for g := range writers {
		members[g] = newID(fmt.Sprintf("user%d", g))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			<-start
			puts[g] = putAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(members[g], dsync.RoleViewer), Version: 1})
		})
		wg.Go(func() {
			<-start
			revokes[g] = revokeLink(t, s, l.ID, lk.ID)
		})
	}
	close(start)
	wg.Wait()

	winner, wins := -1, 0
	for g, err := range puts {
		switch {
		case err == nil:
			winner, wins = g, wins+1
		case !errors.Is(err, dsync.ErrStale):
			t.Errorf("writer %d: PutAccess: got %v, want nil or ErrStale", g, err)
		}
	}
	if wins != 1 {
		t.Fatalf("PutAccess on one version: %d writers committed, want exactly 1", wins)
	}
	checkAccess(t, "Access after the race", mustAccess(t, s, l.ID),
		dsync.Access{LayoutID: l.ID, Owner: owner, Users: users(members[winner], dsync.RoleViewer), Version: 1})

	revoked := 0
	for g, err := range revokes {
		switch {
		case err == nil:
			revoked++
		case dsync.ErrorCode(err) != dsync.CodeNotFound:
			t.Errorf("revoker %d: RevokeLink: got %v, want nil or not_found", g, err)
		}
	}
	if revoked != 1 {
		t.Errorf("concurrent RevokeLink of one link: %d succeeded, want exactly 1", revoked)
	}
	if !mustLink(t, s, lk.ID).Revoked {
		t.Errorf("link after the revokes: not revoked")
	}
}
