package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	dsync "github.com/dashsync/dashsync/sync"
)

// testReadForEdits: one read gives, per layout, the head, each editor's role, the
// kept changes of the editIds asked for (not of others), the paths after the base
// but no further back than MaxBack, and those of the widgets that are the owner's;
// a missing layout is its entry's not_found.
func testReadForEdits(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner, editor, stranger := newID("owner"), newID("editor"), newID("stranger")
	l, changes := layoutWithVersions(t, s, owner, 4)
	mustPutAccess(t, s, dsync.Access{LayoutID: l.ID, Owner: owner, Version: 1, Users: users(editor, dsync.RoleEditor)})
	mine, theirs := newWidget(owner), newWidget(stranger)
	createWidget(t, s, mine)
	createWidget(t, s, theirs)
	other, _ := layoutWithVersions(t, s, stranger, 2)
	missing := newID("layout")

	var got []dsync.EditState
	err := s.InTx(ctx, func(tx dsync.Tx) error {
		var err error
		got, err = tx.ReadForEdits(ctx, []dsync.EditRead{
			{LayoutID: l.ID, Users: []string{owner, editor, stranger}, EditIDs: []string{changes[2].EditID, uuid.NewString()},
				After: 1, MaxBack: 16, Widgets: []string{mine.ID, theirs.ID, newID("widget")}},
			{LayoutID: missing, Users: []string{owner}},
			{LayoutID: other.ID, Users: []string{stranger}, After: 0, MaxBack: 1},
		})
		return err
	})
	if err != nil {
		t.Fatalf("ReadForEdits: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("ReadForEdits gave %d states for 3 reads", len(got))
	}
	a := got[0]
	if a.Err != nil {
		t.Fatalf("the layout's read: %v", a.Err)
	}
	checkLayout(t, a.Layout, l)
	wantRoles := map[string]dsync.Role{owner: dsync.RoleOwner, editor: dsync.RoleEditor, stranger: ""}
	for u, want := range wantRoles {
		if a.Roles[u] != want {
			t.Errorf("role of %s: %q, want %q", u, a.Roles[u], want)
		}
	}
	if len(a.Edits) != 1 || a.Edits[changes[2].EditID].Version != 3 {
		t.Errorf("edits: %+v, want version 3's alone", a.Edits)
	}
	wantVersions(t, "paths after version 1", a.Paths, seq(2, 4))
	for _, c := range a.Paths {
		if len(c.Ops) != 2 || c.Ops[0].Path != "/settings/k" || c.Ops[1].Path != "/settings/gone" {
			t.Errorf("version %d: paths %+v, want /settings/k and /settings/gone", c.Version, c.Ops)
		}
	}
	if len(a.Widgets) != 1 {
		t.Fatalf("widgets: %d, want the owner's one", len(a.Widgets))
	}
	checkWidget(t, a.Widgets[0], mine)
	wantCode(t, "a missing layout's read", got[1].Err, dsync.CodeNotFound)
	wantVersions(t, "paths no further back than MaxBack", got[2].Paths, seq(2, 2))
	if got[2].Roles[stranger] != dsync.RoleOwner {
		t.Errorf("the other layout's owner has role %q", got[2].Roles[stranger])
	}
}

// testWriteLayouts: one call writes several layouts, each from its version with its
// changes in order and its trim; a layout not at From is ErrStale.
func testWriteLayouts(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner := newID("owner")
	a, aChanges := layoutWithVersions(t, s, owner, 3)
	b := newLayout(owner)
	b1 := createLayout(t, s, b)

	a4, c4 := nextLayout(a, "x")
	a5, c5 := nextLayout(a4, "y")
	b2, cb := nextLayout(b, "z")
	c5.Doc = nil // a version between checkpoints keeps its ops alone
	err := s.InTx(ctx, func(tx dsync.Tx) error {
		return tx.WriteLayouts(ctx, []dsync.LayoutWrite{
			{Layout: a5, From: 3, Changes: []dsync.Change{c4, c5}, TrimUpTo: 2},
			{Layout: b2, From: 1, Changes: []dsync.Change{cb}},
		})
	})
	if err != nil {
		t.Fatalf("WriteLayouts: %v", err)
	}
	checkLayout(t, mustGetLayout(t, s, owner, a.ID), a5)
	checkLayout(t, mustGetLayout(t, s, owner, b.ID), b2)
	checkChanges(t, mustLayoutChanges(t, s, a.ID, 0, 10), []dsync.Change{aChanges[2], c4, c5})
	checkChanges(t, mustLayoutChanges(t, s, b.ID, 0, 10), []dsync.Change{b1, cb})

	old, c := nextLayout(a, "w") // version 4 again, from 3
	err = s.InTx(ctx, func(tx dsync.Tx) error {
		return tx.WriteLayouts(ctx, []dsync.LayoutWrite{{Layout: old, From: 3, Changes: []dsync.Change{c}}})
	})
	wantIs(t, "WriteLayouts from an old version", err, dsync.ErrStale)
	checkLayout(t, mustGetLayout(t, s, owner, a.ID), a5)
}

// TxCounter is a store that counts its transactions in N, for tests of how edits
// group into transactions.
type TxCounter struct {
	dsync.Store
	N *atomic.Int64
}

// InTx counts the transaction and runs it on the store.
func (c TxCounter) InTx(ctx context.Context, fn func(dsync.Tx) error) error {
	c.N.Add(1)
	return c.Store.InTx(ctx, fn)
}

// testGroupCommit: edits that wait for one group commit in one transaction, and each
// has its own outcome: of two edits of one layout on one base, both commit (the later
// rebased) when their paths differ; an edit overlapping a change after its base is a
// conflict, an invalid one validation_failed, and neither changes anything nor keeps
// the others from committing.
func testGroupCommit(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	txs := &atomic.Int64{}
	// The group's service waits for four edits (or a minute) before it commits;
	// the setup goes through another.
	group := dsync.NewService(TxCounter{Store: s, N: txs}, dsync.Options{GroupMax: 4, GroupWindow: time.Minute, CommitLanes: 1})
	svc := dsync.NewService(s, dsync.Options{})
	owner := newID("owner")
	typ, title := "stat", "tile"
	w, err := svc.CreateWidget(ctx, owner, dsync.WidgetDoc{Type: &typ, Title: &title,
		Source: &dsync.Source{Kind: "static", Data: json.RawMessage(`1`)}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string) dsync.Layout {
		t.Helper()
		l, err := svc.CreateLayout(ctx, owner, dsync.NewLayout{Author: owner, Doc: dsync.LayoutDoc{Name: &name,
			Items: map[string]dsync.Item{w.ID: {X: 0, Y: 0, W: 4, H: 2}}}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b, c := mk("a"), mk("b"), mk("c")
	rep := func(path string, v any) dsync.Op {
		raw, _ := json.Marshal(v)
		return dsync.Op{Op: dsync.OpReplace, Path: path, Value: raw}
	}
	// b moves on to version 2 before the group: the group's edit of it on base 1
	// overlaps that.
	if _, _, err := svc.EditLayout(ctx, owner, b.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "b2")}, Author: owner}); err != nil {
		t.Fatal(err)
	}
	edits := []struct {
		id   string
		e    dsync.Edit
		code dsync.Code
	}{
		{a.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/items/"+w.ID+"/x", 2)}}, ""},
		{a.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "a2")}}, ""},
		{b.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "b3")}}, dsync.CodeVersionConflict},
		{c.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/items/"+w.ID+"/w", 0)}}, dsync.CodeValidation},
	}
	type outcome struct {
		l   dsync.Layout
		res dsync.Result
		err error
	}
	out := make([]outcome, len(edits))
	var wg gosync.WaitGroup
	for i, ed := range edits {
		wg.Go(func() {
			ed.e.Author = owner
			l, res, err := group.EditLayout(ctx, owner, ed.id, ed.e)
			out[i] = outcome{l, res, err}
		})
	}
	wg.Wait()
	if n := txs.Load(); n != 1 {
		t.Errorf("the group of %d edits took %d transactions, want 1", len(edits), n)
	}
	for i, ed := range edits {
		if got := dsync.ErrorCode(out[i].err); got != ed.code {
			t.Errorf("edit %d: %v, want code %q", i, out[i].err, ed.code)
		}
	}
	versions := []int64{out[0].res.Version, out[1].res.Version}
	slices.Sort(versions)
	if !slices.Equal(versions, []int64{2, 3}) || out[0].res.Rebased == out[1].res.Rebased {
		t.Errorf("the two edits of a: versions %v, rebased %v and %v; want 2 and 3, the later rebased",
			versions, out[0].res.Rebased, out[1].res.Rebased)
	}
	got, err := svc.Layout(ctx, owner, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 || got.Name != "a2" || got.Items[w.ID].X != 2 {
		t.Errorf("a after the group: %+v, want version 3 with both edits", got)
	}
	for _, l := range []struct {
		id      string
		version int64
		name    string
	}{{b.ID, 2, "b2"}, {c.ID, 1, "c"}} {
		got, err := svc.Layout(ctx, owner, l.id)
		if err != nil || got.Version != l.version || got.Name != l.name || got.Items[w.ID].W != 4 {
			t.Errorf("layout %s after the group: %+v (%v), want version %d unchanged", l.id, got, err, l.version)
		}
	}
	cs := mustLayoutChanges(t, s, a.ID, 0, 10)
	wantVersions(t, "a's op log", cs, seq(1, 3))
	if fmt.Sprint(cs[1].Ops) == fmt.Sprint(cs[2].Ops) {
		t.Errorf("a's versions 2 and 3 hold the same ops %v", cs[1].Ops)
	}
}
