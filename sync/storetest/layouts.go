package storetest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"

	dsync "github.com/dashsync/dashsync/sync"
)

func testLayoutRoundTrip(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l := newLayout(newID("user"))
	l.IsDefault = true
	c := changeFor(l, 1, "created", l.CreatedAt)
	restored := int64(7)
	c.RestoredFrom = &restored
	c.Rebased = true

	err := s.InTx(ctx, func(tx dsync.Tx) error {
		if err := tx.CreateLayout(ctx, l, c); err != nil {
			return err
		}
		checkLayout(t, mustGetLayout(t, tx, l.Owner, l.ID), l) // a transaction reads its own writes
		return nil
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}

	checkLayout(t, mustGetLayout(t, s, l.Owner, l.ID), l)
	list, err := s.Layouts(ctx, l.Owner)
	if err != nil {
		t.Fatalf("Layouts: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("Layouts: got %d layouts, want 1", len(list))
	}
	checkLayout(t, list[0], l)
	checkChanges(t, mustLayoutChanges(t, s, l.ID, 0, 1), []dsync.Change{c})
}

func testLayoutNilMaps(t *testing.T, s dsync.Store) {
	l := newLayout(newID("user"))
	l.Items, l.Settings = nil, nil
	createLayout(t, s, l)

	got := mustGetLayout(t, s, l.Owner, l.ID)
	if got.Items == nil || len(got.Items) != 0 {
		t.Errorf("items: got %v (nil %t), want an empty non-nil map", got.Items, got.Items == nil)
	}
	if got.Settings == nil || len(got.Settings) != 0 {
		t.Errorf("settings: got %v (nil %t), want an empty non-nil map", got.Settings, got.Settings == nil)
	}

	// A change without ops or doc keeps them absent.
	next := got.Clone()
	next.Version = 2
	c2 := dsync.Change{Version: 2, Author: "alice", Time: at(5)}
	updateLayout(t, s, next, c2)
	checkChanges(t, mustLayoutChanges(t, s, l.ID, 1, 2), []dsync.Change{c2})
}

func testLayoutOwnerScope(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	alice, bob := newID("alice"), newID("bob")
	la := newLayout(alice)
	createLayout(t, s, la)
	lb := newLayout(bob)
	createLayout(t, s, lb)

	tests := []struct {
		name, owner, id string
	}{
		{"another owner's layout", bob, la.ID},
		{"a missing layout", alice, newID("layout")},
		{"an owner with no layouts", newID("carol"), la.ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Layout(ctx, tc.owner, tc.id)
			wantCode(t, "Layout", err, dsync.CodeNotFound)
		})
	}

	for _, owner := range []string{alice, bob} {
		list, err := s.Layouts(ctx, owner)
		if err != nil {
			t.Fatalf("Layouts(%s): %v", owner, err)
		}
		if len(list) != 1 || list[0].Owner != owner {
			t.Errorf("Layouts(%s): got %d layouts %v, want only its own one", owner, len(list), list)
		}
	}
	list, err := s.Layouts(ctx, newID("nobody"))
	if err != nil || len(list) != 0 {
		t.Errorf("Layouts(nobody): got %d layouts, %v; want none, nil", len(list), err)
	}
}

func testLayoutListOrder(t *testing.T, s dsync.Store) {
	owner := newID("user")
	// Created out of order; two share a creation time and are ordered by id.
	mk := func(id string, created int) dsync.Layout {
		l := newLayout(owner)
		l.ID, l.CreatedAt, l.UpdatedAt = id+"-"+newID("layout"), at(created), at(created)
		return l
	}
	third := mk("c", 3000)
	firstB := mk("b", 1000)
	firstA := mk("a", 1000)
	second := mk("a", 2000)
	for _, l := range []dsync.Layout{third, firstB, second, firstA} {
		createLayout(t, s, l)
	}
	list, err := s.Layouts(t.Context(), owner)
	if err != nil {
		t.Fatalf("Layouts: %v", err)
	}
	var got []string
	for _, l := range list {
		got = append(got, l.ID)
	}
	want := []string{firstA.ID, firstB.ID, second.ID, third.ID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Layouts order: got %v, want %v", got, want)
	}
}

func testLayoutUpdate(t *testing.T, s dsync.Store) {
	l := newLayout(newID("user"))
	c1 := createLayout(t, s, l)

	next := l.Clone()
	next.Version = 2
	next.Name = "Renamed <ops>"
	next.Columns = 48
	next.Items = map[string]dsync.Item{"w3": {X: 1, Y: 2, W: 3, H: 4}}
	next.Settings = dsync.Settings{"only": json.RawMessage(`{"z":1,"a":2}`)}
	next.UpdatedAt = at(9999)
	next.CreatedAt = at(123456) // ignored: creation time is kept
	c2 := changeFor(next, 2, "only", next.UpdatedAt)
	updateLayout(t, s, next, c2)

	want := next
	want.CreatedAt = l.CreatedAt
	checkLayout(t, mustGetLayout(t, s, l.Owner, l.ID), want)
	checkChanges(t, mustLayoutChanges(t, s, l.ID, 0, 2), []dsync.Change{c1, c2})
}

func testLayoutUpdateCAS(t *testing.T, s dsync.Store) {
	owner := newID("user")
	head, _ := layoutWithVersions(t, s, owner, 2)

	tests := []struct {
		name    string
		mutate  func(l *dsync.Layout)
		wantErr func(t *testing.T, err error)
	}{
		{"expected version behind the head is stale", func(l *dsync.Layout) { l.Version = 2 },
			func(t *testing.T, err error) { wantIs(t, "UpdateLayout", err, dsync.ErrStale) }},
		{"expected version ahead of the head is stale", func(l *dsync.Layout) { l.Version = 5 },
			func(t *testing.T, err error) { wantIs(t, "UpdateLayout", err, dsync.ErrStale) }},
		{"a missing layout is not found", func(l *dsync.Layout) { l.ID = newID("layout") },
			func(t *testing.T, err error) { wantCode(t, "UpdateLayout", err, dsync.CodeNotFound) }},
		{"another owner's layout is not found", func(l *dsync.Layout) { l.Owner = newID("mallory") },
			func(t *testing.T, err error) { wantCode(t, "UpdateLayout", err, dsync.CodeNotFound) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := head.Clone()
			l.Name = "must not be written"
			tc.mutate(&l)
			c := changeFor(l, l.Version, "k", at(50))
			err := s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.UpdateLayout(t.Context(), l, c) })
			tc.wantErr(t, err)
		})
	}
	checkLayout(t, mustGetLayout(t, s, owner, head.ID), head)
	wantVersions(t, "changes after failed updates", mustLayoutChanges(t, s, head.ID, 0, 100), seq(1, 2))
}

func testLayoutChangesRange(t *testing.T, s dsync.Store) {
	l, changes := layoutWithVersions(t, s, newID("user"), 5)
	tests := []struct {
		name        string
		after, upTo int64
		want        []int64
	}{
		{"everything", 0, 5, seq(1, 5)},
		{"after is exclusive and upTo inclusive", 2, 4, seq(3, 4)},
		{"upTo past the head stops at the head", 4, 100, seq(5, 5)},
		{"an empty range", 5, 5, seq(1, 0)},
		{"after past upTo", 4, 2, seq(1, 0)},
		{"nothing before version 1", 0, 0, seq(1, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustLayoutChanges(t, s, l.ID, tc.after, tc.upTo)
			wantVersions(t, fmt.Sprintf("LayoutChanges(%d, %d)", tc.after, tc.upTo), got, tc.want)
		})
	}
	checkChanges(t, mustLayoutChanges(t, s, l.ID, 0, 5), changes)
	wantVersions(t, "another layout's changes", mustLayoutChanges(t, s, newID("layout"), 0, 5), nil)
}

func testLayoutHistory(t *testing.T, s dsync.Store) {
	l, changes := layoutWithVersions(t, s, newID("user"), 5)
	tests := []struct {
		name   string
		before int64
		limit  int
		want   []int64
	}{
		{"all, newest first", 6, 10, []int64{5, 4, 3, 2, 1}},
		{"before is exclusive", 5, 10, []int64{4, 3, 2, 1}},
		{"limit keeps the newest", 100, 2, []int64{5, 4}},
		{"a page in the middle", 4, 2, []int64{3, 2}},
		{"nothing before version 1", 1, 10, nil},
		{"a zero limit returns nothing", 6, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LayoutHistory(t.Context(), l.ID, tc.before, tc.limit)
			if err != nil {
				t.Fatalf("LayoutHistory: %v", err)
			}
			if tc.want == nil {
				tc.want = []int64{}
			}
			wantVersions(t, fmt.Sprintf("LayoutHistory(%d, %d)", tc.before, tc.limit), got, tc.want)
		})
	}
	got, err := s.LayoutHistory(t.Context(), l.ID, 3, 1)
	if err != nil {
		t.Fatalf("LayoutHistory: %v", err)
	}
	checkChanges(t, got, changes[1:2])
}

func testLayoutChangeByEdit(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l, changes := layoutWithVersions(t, s, newID("user"), 3)
	other, _ := layoutWithVersions(t, s, l.Owner, 1)

	got, err := s.LayoutChangeByEdit(ctx, l.ID, changes[1].EditID)
	if err != nil {
		t.Fatalf("LayoutChangeByEdit: %v", err)
	}
	checkChange(t, got, changes[1])

	tests := []struct {
		name, layoutID, editID string
	}{
		{"an unknown editId", l.ID, uuid.NewString()},
		{"an empty editId", l.ID, ""},
		{"another layout's editId", other.ID, changes[1].EditID},
		{"a missing layout", newID("layout"), changes[1].EditID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.LayoutChangeByEdit(ctx, tc.layoutID, tc.editID)
			wantCode(t, "LayoutChangeByEdit", err, dsync.CodeNotFound)
		})
	}

	// A change committed without an editId is not found by the empty editId.
	noEdit, c := nextLayout(l, "x")
	c.EditID = ""
	updateLayout(t, s, noEdit, c)
	_, err = s.LayoutChangeByEdit(ctx, l.ID, "")
	wantCode(t, "LayoutChangeByEdit(\"\") after a change without editId", err, dsync.CodeNotFound)
	cs := mustLayoutChanges(t, s, l.ID, 3, 4)
	checkChanges(t, cs, []dsync.Change{c})
}

func testLayoutTrim(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l, changes := layoutWithVersions(t, s, newID("user"), 5)
	keep, _ := layoutWithVersions(t, s, l.Owner, 3)

	if err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.TrimLayoutChanges(ctx, l.ID, 3) }); err != nil {
		t.Fatalf("TrimLayoutChanges: %v", err)
	}
	checkChanges(t, mustLayoutChanges(t, s, l.ID, 0, 5), changes[3:])
	hist, err := s.LayoutHistory(ctx, l.ID, 6, 10)
	if err != nil {
		t.Fatalf("LayoutHistory: %v", err)
	}
	wantVersions(t, "history after trim", hist, []int64{5, 4})
	_, err = s.LayoutChangeByEdit(ctx, l.ID, changes[0].EditID)
	wantCode(t, "LayoutChangeByEdit of a trimmed change", err, dsync.CodeNotFound)
	checkLayout(t, mustGetLayout(t, s, l.Owner, l.ID), l)
	wantVersions(t, "another layout's changes", mustLayoutChanges(t, s, keep.ID, 0, 10), seq(1, 3))

	// Trimming past the head empties the log but keeps the layout; it can go on.
	if err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.TrimLayoutChanges(ctx, l.ID, 100) }); err != nil {
		t.Fatalf("TrimLayoutChanges: %v", err)
	}
	wantVersions(t, "changes after trimming all", mustLayoutChanges(t, s, l.ID, 0, 100), nil)
	next, c := nextLayout(l, "after-trim")
	updateLayout(t, s, next, c)
	wantVersions(t, "changes after a new version", mustLayoutChanges(t, s, l.ID, 0, 100), seq(6, 6))
}

func testLayoutDelete(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l, changes := layoutWithVersions(t, s, newID("user"), 3)
	keep, _ := layoutWithVersions(t, s, l.Owner, 2)

	err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.DeleteLayout(ctx, newID("mallory"), l.ID) })
	wantCode(t, "DeleteLayout by another owner", err, dsync.CodeNotFound)
	mustGetLayout(t, s, l.Owner, l.ID)

	if err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.DeleteLayout(ctx, l.Owner, l.ID) }); err != nil {
		t.Fatalf("DeleteLayout: %v", err)
	}
	_, err = s.Layout(ctx, l.Owner, l.ID)
	wantCode(t, "Layout after delete", err, dsync.CodeNotFound)
	wantVersions(t, "changes after delete", mustLayoutChanges(t, s, l.ID, 0, 100), nil)
	_, err = s.LayoutChangeByEdit(ctx, l.ID, changes[2].EditID)
	wantCode(t, "LayoutChangeByEdit after delete", err, dsync.CodeNotFound)
	err = s.InTx(ctx, func(tx dsync.Tx) error { return tx.DeleteLayout(ctx, l.Owner, l.ID) })
	wantCode(t, "DeleteLayout twice", err, dsync.CodeNotFound)

	checkLayout(t, mustGetLayout(t, s, l.Owner, keep.ID), keep)
	wantVersions(t, "another layout's changes", mustLayoutChanges(t, s, keep.ID, 0, 10), seq(1, 2))

	// The id can be used again: nothing of the old op log is left in the way.
	again := newLayout(l.Owner)
	again.ID = l.ID
	c := createLayout(t, s, again)
	checkChanges(t, mustLayoutChanges(t, s, l.ID, 0, 100), []dsync.Change{c})
}

func testLayoutOneDefault(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner := newID("user")
	first := newLayout(owner)
	first.IsDefault = true
	createLayout(t, s, first)

	second := newLayout(owner)
	second.IsDefault = true
	c := changeFor(second, 1, "created", second.CreatedAt)
	err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.CreateLayout(ctx, second, c) })
	wantIs(t, "CreateLayout of a second default", err, dsync.ErrStale)
	_, err = s.Layout(ctx, owner, second.ID)
	wantCode(t, "Layout of the refused default", err, dsync.CodeNotFound)

	third := newLayout(owner)
	createLayout(t, s, third)
	makeDefault, c3 := nextLayout(third, "k")
	makeDefault.IsDefault = true
	err = s.InTx(ctx, func(tx dsync.Tx) error { return tx.UpdateLayout(ctx, makeDefault, c3) })
	wantIs(t, "UpdateLayout to a second default", err, dsync.ErrStale)
	checkLayout(t, mustGetLayout(t, s, owner, third.ID), third)

	// Moving the default within one transaction works.
	unset, c1 := nextLayout(first, "k")
	unset.IsDefault = false
	err = s.InTx(ctx, func(tx dsync.Tx) error {
		if err := tx.UpdateLayout(ctx, unset, c1); err != nil {
			return err
		}
		return tx.UpdateLayout(ctx, makeDefault, c3)
	})
	if err != nil {
		t.Fatalf("move the default: %v", err)
	}
	if l := mustGetLayout(t, s, owner, third.ID); !l.IsDefault {
		t.Errorf("third layout: got isDefault false, want true")
	}

	// Another owner has a default of its own.
	mine := newLayout(newID("other"))
	mine.IsDefault = true
	createLayout(t, s, mine)
}

func testLayoutCreateTakenID(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l := newLayout(newID("user"))
	createLayout(t, s, l)
	dup := newLayout(newID("other"))
	dup.ID = l.ID
	c := changeFor(dup, 1, "created", dup.CreatedAt)
	err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.CreateLayout(ctx, dup, c) })
	wantIs(t, "CreateLayout with a taken id", err, dsync.ErrStale)
	checkLayout(t, mustGetLayout(t, s, l.Owner, l.ID), l)
}

func testLayoutBadVersions(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l := newLayout(newID("user"))
	createLayout(t, s, l)
	tests := []struct {
		name string
		fn   func(tx dsync.Tx) error
	}{
		{"create at version 2", func(tx dsync.Tx) error {
			n := newLayout(l.Owner)
			n.Version = 2
			return tx.CreateLayout(ctx, n, changeFor(n, 2, "k", at(0)))
		}},
		{"create with a change at version 2", func(tx dsync.Tx) error {
			n := newLayout(l.Owner)
			return tx.CreateLayout(ctx, n, changeFor(n, 2, "k", at(0)))
		}},
		{"update with a change of another version", func(tx dsync.Tx) error {
			n, c := nextLayout(l, "k")
			c.Version = 3
			return tx.UpdateLayout(ctx, n, c)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.InTx(ctx, tc.fn); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
	checkLayout(t, mustGetLayout(t, s, l.Owner, l.ID), l)
}

// testLayoutPaths: LayoutPaths gives each kept change's version and the distinct paths
// of its ops, in the range LayoutChanges uses, without values.
func testLayoutPaths(t *testing.T, s dsync.Store) {
	l, changes := layoutWithVersions(t, s, newID("user"), 5)
	got, err := s.LayoutPaths(t.Context(), l.ID, 1, 4)
	if err != nil {
		t.Fatalf("LayoutPaths: %v", err)
	}
	wantVersions(t, "LayoutPaths(1, 4)", got, seq(2, 4))
	for i, c := range got {
		want := map[string]bool{}
		for _, op := range changes[i+1].Ops {
			want[op.Path] = true
		}
		seen := map[string]bool{}
		for _, op := range c.Ops {
			if seen[op.Path] || !want[op.Path] || op.Value != nil || op.Op != "" {
				t.Fatalf("version %d: paths %+v, want the distinct paths of %+v alone", c.Version, c.Ops, changes[i+1].Ops)
			}
			seen[op.Path] = true
		}
		if len(seen) != len(want) || c.Doc != nil {
			t.Fatalf("version %d: paths %+v (doc %d bytes), want %v and no doc", c.Version, c.Ops, len(c.Doc), want)
		}
	}
	wantVersions(t, "another layout's paths", func() []dsync.Change {
		cs, _ := s.LayoutPaths(t.Context(), newID("layout"), 0, 5)
		return cs
	}(), nil)
}
