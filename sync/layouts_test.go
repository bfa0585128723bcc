package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestLayouts_CreateListDefaultDelete: the first layout is the default, later ones
// are not; the list says owner and role only when asked for shared ones too; SetDefault
// moves the flag (a version of each); deleting the default makes the most recently
// updated other layout the default; the last one stays.
func TestLayouts_CreateListDefaultDelete(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		l1 := f.layout
		mk := func(name string) dsync.Layout {
			t.Helper()
			f.now.Add(int64(time.Second))
			l, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Author: "alice", Doc: dsync.LayoutDoc{Name: &name}})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		_, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Columns: ptr(12)}})
		if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "name" {
			t.Errorf("no name: %+v", de.Details)
		}
		_, err = f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("x"), Items: map[string]dsync.Item{"nope": {W: 1, H: 1}}}})
		if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "items.nope" {
			t.Errorf("an unknown widget: %+v", de.Details)
		}
		_, err = f.svc.CreateLayout(ctx, "bob", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("x"), Items: map[string]dsync.Item{f.w1: {W: 1, H: 1}}}})
		wantCode(t, err, dsync.CodeValidation) // alice's widget is not bob's
		l2, l3 := mk("two"), mk("three")
		if !l1.IsDefault || l2.IsDefault || l3.IsDefault || l2.Columns != 12 || l2.Version != 1 {
			t.Fatalf("defaults: %v %v %v, columns %d", l1.IsDefault, l2.IsDefault, l3.IsDefault, l2.Columns)
		}
		created := take(f.events, func(e dsync.UserEvent) string { return string(e.Name) + " " + e.Layout.Name })
		if !slices.Equal(created, []string{"layout.created two", "layout.created three"}) {
			t.Errorf("events %v", created)
		}
		bobs, err := f.svc.CreateLayout(ctx, "bob", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("bob's")}})
		if err != nil || !bobs.IsDefault {
			t.Fatalf("bob's first layout: %+v, %v; want his default", bobs, err)
		}
		if _, err := f.svc.UpdateAccess(ctx, "bob", bobs.ID, map[string]*dsync.Role{"alice": role(dsync.RoleEditor)}, nil); err != nil {
			t.Fatal(err)
		}
		list := func(shared bool) string {
			t.Helper()
			ls, err := f.svc.Layouts(ctx, "alice", shared)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, l := range ls {
				out = append(out, fmt.Sprintf("%s:%v:%s:%s", l.Name, l.IsDefault, l.Owner, l.Role))
			}
			return strings.Join(out, " ")
		}
		if got := list(false); got != "Ops:true:: two:false:: three:false::" {
			t.Errorf("own layouts: %s", got)
		}
		if got := list(true); got != "Ops:true:alice:owner two:false:alice:owner three:false:alice:owner bob's:true:bob:editor" {
			t.Errorf("with shared: %s", got)
		}

		// SetDefault.
		d, err := f.svc.SetDefault(ctx, "alice", l2.ID, "alice")
		if err != nil || !d.IsDefault || d.Version != 2 {
			t.Fatalf("SetDefault: %+v, %v", d, err)
		}
		if got := list(false); got != "Ops:false:: two:true:: three:false::" {
			t.Errorf("after SetDefault: %s", got)
		}
		if l, _ := f.svc.Layout(ctx, "alice", l1.ID); l.Version != 2 || l.IsDefault {
			t.Errorf("the old default: v%d default %v, want v2 not default", l.Version, l.IsDefault)
		}
		if d, err := f.svc.SetDefault(ctx, "alice", l2.ID, "alice"); err != nil || d.Version != 2 {
			t.Fatalf("SetDefault of the default: %+v, %v; want no new version", d, err)
		}
		_, err = f.svc.SetDefault(ctx, "alice", bobs.ID, "alice")
		wantCode(t, err, dsync.CodeForbidden)
		_, err = f.svc.SetDefault(ctx, "alice", "nope", "alice")
		wantCode(t, err, dsync.CodeNotFound)
		var updated []string
		for _, e := range take(f.events, func(e dsync.UserEvent) dsync.UserEvent { return e }) {
			if e.Name == dsync.EventLayoutUpdated {
				updated = append(updated, fmt.Sprintf("%s %s %v", e.Name, e.Layout.Name, e.Layout.IsDefault))
			}
		}
		if !slices.Equal(updated, []string{"layout.updated Ops false", "layout.updated two true"}) {
			t.Errorf("SetDefault events: %v", updated)
		}

		// Delete: the default goes, the most recently updated other one (Ops, edited
		// after three was made) takes it.
		f.now.Add(int64(time.Second))
		f.edit(t, 2, rep("/columns", 24))
		if err := f.svc.DeleteLayout(ctx, "alice", l2.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if got := list(false); got != "Ops:true:: three:false::" {
			t.Errorf("after deleting the default: %s", got)
		}
		evs := take(f.events, func(e dsync.Event) string {
			switch e := e.(type) {
			case dsync.UserEvent:
				return string(e.Name)
			case dsync.LayoutDeleted:
				return "deleted " + e.Layout.Name
			}
			return ""
		})
		if !slices.Contains(evs, "layout.deleted") || !slices.Contains(evs, "deleted two") || !slices.Contains(evs, "layout.updated") {
			t.Errorf("delete events: %v", evs)
		}
		if _, err := f.svc.Layout(ctx, "alice", l2.ID); dsync.ErrorCode(err) != dsync.CodeNotFound {
			t.Errorf("deleted layout: %v", err)
		}
		// Deleting one that is not the default leaves the default alone.
		if err := f.svc.DeleteLayout(ctx, "alice", l3.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if got := list(false); got != "Ops:true::" {
			t.Errorf("after deleting three: %s", got)
		}
		wantCode(t, f.svc.DeleteLayout(ctx, "alice", l1.ID, "alice"), dsync.CodeConflict)
		wantCode(t, f.svc.DeleteLayout(ctx, "alice", bobs.ID, "alice"), dsync.CodeForbidden)
		wantCode(t, f.svc.DeleteLayout(ctx, "alice", "nope", "alice"), dsync.CodeNotFound)
	})
}

// TestLayouts_DeletingTheDefaultPicksTheMostRecentlyUpdated: of the other layouts, the
// one updated last becomes the default, whatever order they were made in.
func TestLayouts_DeletingTheDefaultPicksTheMostRecentlyUpdated(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		var ids []string
		for i := range 3 {
			f.now.Add(int64(time.Second))
			l, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr(fmt.Sprint("l", i))}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, l.ID)
		}
		// l0 is updated last.
		f.now.Add(int64(time.Second))
		if _, _, err := f.svc.EditLayout(ctx, "alice", ids[0], dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "l0 again")}}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteLayout(ctx, "alice", f.layout.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		l, err := f.svc.Layout(ctx, "alice", ids[0])
		if err != nil || !l.IsDefault || l.Version != 3 {
			t.Fatalf("l0 after deleting the default: %+v, %v; want it the default at v3", l, err)
		}
		for _, id := range ids[1:] {
			if l, _ := f.svc.Layout(ctx, "alice", id); l.IsDefault {
				t.Errorf("%s is a default too", l.Name)
			}
		}
		// Then l2, the newest of the rest.
		if err := f.svc.DeleteLayout(ctx, "alice", ids[0], "alice"); err != nil {
			t.Fatal(err)
		}
		if l, _ := f.svc.Layout(ctx, "alice", ids[2]); !l.IsDefault {
			t.Errorf("l2 is not the default after l0 went")
		}
	})
}

// TestLayouts_Clone: a clone is a new layout, not the default, named "<name> (copy)"
// within 100 characters or as asked; cloning a layout shared with you copies its
// widgets for you; a link may not clone.
func TestLayouts_Clone(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		c, err := f.svc.CloneLayout(ctx, "alice", f.layout.ID, nil, "alice")
		if err != nil || c.Name != "Ops (copy)" || c.IsDefault || c.ID == f.layout.ID || c.Version != 1 || len(c.Items) != 2 {
			t.Fatalf("clone: %+v, %v", c, err)
		}
		if _, ok := c.Items[f.w1]; !ok {
			t.Errorf("the owner's clone places other widgets: %v", c.Items)
		}
		long := strings.Repeat("é", 98) + " x"
		if _, _, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", long)}}); err != nil {
			t.Fatal(err)
		}
		c, err = f.svc.CloneLayout(ctx, "alice", f.layout.ID, nil, "alice")
		if want := strings.Repeat("é", 93) + " (copy)"; err != nil || c.Name != want {
			t.Fatalf("clone of a long name: %q, %v; want %q", c.Name, err, want)
		}
		if c, err := f.svc.CloneLayout(ctx, "alice", f.layout.ID, ptr("Mine"), "alice"); err != nil || c.Name != "Mine" {
			t.Fatalf("named clone: %q, %v", c.Name, err)
		}
		// Bob clones alice's layout shared with him: he gets his own widgets.
		if _, err := f.svc.UpdateAccess(ctx, "alice", f.layout.ID, map[string]*dsync.Role{"bob": role(dsync.RoleViewer)}, nil); err != nil {
			t.Fatal(err)
		}
		c, err = f.svc.CloneLayout(ctx, "bob", f.layout.ID, ptr("Bob's"), "bob")
		if err != nil || !c.IsDefault || c.Owner != "bob" || len(c.Items) != 2 {
			t.Fatalf("bob's clone: %+v, %v; want his default with 2 items", c, err)
		}
		ws, _ := f.svc.Widgets(ctx, "bob")
		if len(ws) != 2 {
			t.Fatalf("bob has %d widgets, want the 2 copies", len(ws))
		}
		for _, w := range ws {
			it, ok := c.Items[w.ID]
			if !ok || w.ID == f.w1 || w.ID == f.w2 {
				t.Errorf("bob's widget %s is not placed by his clone (%v)", w.ID, c.Items)
			}
			if w.Title == "one" && it != f.layout.Items[f.w1] || w.Title == "two" && it != f.layout.Items[f.w2] {
				t.Errorf("copy %q placed at %+v", w.Title, it)
			}
		}
		_, err = f.svc.CloneLayout(ctx, "carol", f.layout.ID, nil, "carol")
		wantCode(t, err, dsync.CodeNotFound)
		_, err = f.svc.CloneLayout(ctx, dsync.LinkUserPrefix+"x", f.layout.ID, nil, "x")
		wantCode(t, err, dsync.CodeForbidden)
	})
}

// TestLayouts_HistoryPages: history is newest first, limit 50 by default and at most
// 100, paged by before; a before past the head starts at the head.
func TestLayouts_HistoryPages(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		for v := int64(1); v < 120; v++ {
			f.edit(t, v, rep("/name", fmt.Sprint("n", v)))
		}
		// v120 is the head.
		versions := func(cs []dsync.Change) (first, last int64, n int) {
			return cs[0].Version, cs[len(cs)-1].Version, len(cs)
		}
		for _, c := range []struct {
			before      int64
			limit       int
			first, last int64
			n           int
			next        int64
		}{
			{0, 0, 120, 71, 50, 71},
			{0, -5, 120, 71, 50, 71},
			{0, 500, 120, 21, 100, 21},
			{0, 100, 120, 21, 100, 21},
			{0, 1, 120, 120, 1, 120},
			{121, 10, 120, 111, 10, 111},
			{1000, 10, 120, 111, 10, 111},
			{-1, 10, 120, 111, 10, 111},
			{120, 10, 119, 110, 10, 110},
			{11, 10, 10, 1, 10, 0},
			{12, 10, 11, 2, 10, 2},
			{5, 10, 4, 1, 4, 0},
		} {
			cs, next, err := f.svc.History(ctx, "alice", id, c.before, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			first, last, n := versions(cs)
			if first != c.first || last != c.last || n != c.n || next != c.next {
				t.Errorf("before %d limit %d: %d..%d (%d), next %d; want %d..%d (%d), next %d",
					c.before, c.limit, first, last, n, next, c.first, c.last, c.n, c.next)
			}
		}
		_, _, err := f.svc.History(ctx, "carol", id, 0, 10)
		wantCode(t, err, dsync.CodeNotFound)
	})
}

// TestLayouts_ChangesSince: a resume reads every version after..upTo in order, across
// pages, without snapshots; it is incomplete when the log lost one or the ops pass
// the byte bound, and complete at exactly the bound.
func TestLayouts_ChangesSince(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 150)
		id := f.layout.ID
		for v := int64(1); v < 160; v++ {
			f.edit(t, v, rep("/name", fmt.Sprint("n", v)))
		}
		// v160 is the head; the log keeps 11..160.
		cs, complete, err := f.svc.ChangesSince(ctx, id, 10, 160, 1<<30)
		if err != nil || !complete || len(cs) != 150 {
			t.Fatalf("10..160: %d changes, complete %v, %v", len(cs), complete, err)
		}
		for i, c := range cs {
			if c.Version != int64(11+i) || c.Doc != nil || len(c.Ops) != 1 {
				t.Fatalf("change %d: v%d doc %d bytes ops %v", i, c.Version, len(c.Doc), c.Ops)
			}
		}
		if _, complete, err := f.svc.ChangesSince(ctx, id, 9, 160, 1<<30); err != nil || complete {
			t.Errorf("from a trimmed version: complete %v, %v; want incomplete", complete, err)
		}
		if cs, complete, err := f.svc.ChangesSince(ctx, id, 160, 160, 0); err != nil || !complete || len(cs) != 0 {
			t.Errorf("nothing to resume: %v, %v, %v", cs, complete, err)
		}
		// At exactly the bound complete; one byte less, not.
		exact, _, _ := f.svc.ChangesSince(ctx, id, 90, 160, 1<<30)
		size := dsync.OpsSize(exact)
		if cs, complete, err := f.svc.ChangesSince(ctx, id, 90, 160, size); err != nil || !complete || len(cs) != 70 {
			t.Errorf("at the bound (%d bytes): %d changes, complete %v, %v", size, len(cs), complete, err)
		}
		if _, complete, err := f.svc.ChangesSince(ctx, id, 90, 160, size-1); err != nil || complete {
			t.Errorf("a byte under the bound: complete %v, %v; want incomplete", complete, err)
		}
		if cs, complete, _ := f.svc.ChangesSince(ctx, id, 150, 155, 1<<30); !complete || len(cs) != 5 || cs[0].Version != 151 || cs[4].Version != 155 {
			t.Errorf("150..155: %d changes, complete %v", len(cs), complete)
		}
	})
}

// TestOpsSize_IsAtLeastTheJSON: the size that bounds edits, resumes and history pages
// is never less than the ops' JSON, and an edit's ops are refused just past 64 KiB of
// it and taken just under.
func TestOpsSize_IsAtLeastTheJSON(t *testing.T) {
	t.Parallel()
	ops := func(valueLen int) []dsync.Op {
		return []dsync.Op{
			{Op: "replace", Path: "/name", Value: json.RawMessage(`"n"`)},
			{Op: "add", Path: "/settings/pad", Value: json.RawMessage(`"` + strings.Repeat("x", valueLen) + `"`)},
		}
	}
	for _, n := range []int{0, 10, 1000} {
		o := ops(n)
		b, _ := json.Marshal(o)
		cs := []dsync.Change{{Version: 1, Ops: o}, {Version: 2, Ops: o}}
		if got := dsync.OpsSize(cs); got < 2*len(b) {
			t.Errorf("OpsSize of 2 changes of %d bytes of ops: %d", len(b), got)
		}
	}
	if dsync.OpsSize(nil) != 0 {
		t.Errorf("OpsSize(nil) = %d", dsync.OpsSize(nil))
	}
	// The JSON of ops(n) is len(`[{"op":"replace","path":"/name","value":"n"},{"op":"add","path":"/settings/pad","value":""}]`)+n.
	fixed := len(`[{"op":"replace","path":"/name","value":"n"},{"op":"add","path":"/settings/pad","value":""}]`)
	under, over := ops(dsync.MaxOpsBytes-fixed-1), ops(dsync.MaxOpsBytes-fixed+1)
	if b, _ := json.Marshal(under); len(b) != dsync.MaxOpsBytes-1 {
		t.Fatalf("the test's ops are %d bytes of JSON", len(b))
	}
	if err := dsync.CheckOps(under); err != nil {
		t.Errorf("%d bytes of ops: %v, want them taken", dsync.MaxOpsBytes-1, err)
	}
	wantCode(t, dsync.CheckOps(over), dsync.CodeTooLarge)
	many := make([]dsync.Op, dsync.MaxOps)
	for i := range many {
		many[i] = dsync.Op{Op: "remove", Path: "/settings/a"}
	}
	if err := dsync.CheckOps(many); err != nil {
		t.Errorf("%d ops: %v", dsync.MaxOps, err)
	}
	wantCode(t, dsync.CheckOps(append(many, many[0])), dsync.CodeValidation)
}

// TestLayouts_ARenameIsAnnouncedToTheOwner: an edit that renames a layout is told on
// the owner's channel (layout.updated, with the new name); other edits are not.
func TestLayouts_ARenameIsAnnouncedToTheOwner(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		f := newClockFixture(t, open(t), 0)
		updates := func() []string {
			var out []string
			for _, e := range take(f.events, func(e dsync.UserEvent) dsync.UserEvent { return e }) {
				if e.Name == dsync.EventLayoutUpdated {
					out = append(out, e.Owner+" "+e.Layout.Name)
				}
			}
			return out
		}
		f.edit(t, 1, rep("/columns", 24), rep("/items/"+f.w1+"/x", 1))
		if got := updates(); len(got) != 0 {
			t.Errorf("an edit of columns and items announced %v", got)
		}
		f.edit(t, 2, rep("/items/"+f.w1+"/y", 1), rep("/name", "Renamed"))
		if got := updates(); !slices.Equal(got, []string{"alice Renamed"}) {
			t.Errorf("a rename announced %v, want alice Renamed", got)
		}
		if _, _, err := f.svc.PutLayout(context.Background(), "alice", f.layout.ID, 3, dsync.LayoutDoc{Name: ptr("Put")}, dsync.Edit{}); err != nil {
			t.Fatal(err)
		}
		if got := updates(); !slices.Equal(got, []string{"alice Put"}) {
			t.Errorf("a renaming PUT announced %v, want alice Put", got)
		}
		// A rename that changes nothing is not announced.
		f.edit(t, 4, rep("/name", "Put"))
		if got := updates(); len(got) != 0 {
			t.Errorf("a rename to the same name announced %v", got)
		}
	})
}

// TestLayouts_APutKeepsTheFieldsItDoesNotSend: a PUT's absent fields keep their
// value; present ones, even empty, replace it.
func TestLayouts_APutKeepsTheFieldsItDoesNotSend(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		f.edit(t, 1, dsync.Op{Op: "add", Path: "/settings/a", Value: json.RawMessage(`1`)}, rep("/columns", 24))
		put := func(base int64, doc dsync.LayoutDoc) dsync.Layout {
			t.Helper()
			l, _, err := f.svc.PutLayout(ctx, "alice", id, base, doc, dsync.Edit{})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		if l := put(2, dsync.LayoutDoc{Name: ptr("n")}); l.Name != "n" || l.Columns != 24 || len(l.Items) != 2 || string(l.Settings["a"]) != "1" {
			t.Errorf("name only: %+v", l)
		}
		if l := put(3, dsync.LayoutDoc{Columns: ptr(20)}); l.Name != "n" || l.Columns != 20 || len(l.Items) != 2 || len(l.Settings) != 1 {
			t.Errorf("columns only: %+v", l)
		}
		if l := put(4, dsync.LayoutDoc{Settings: dsync.Settings{}}); l.Columns != 20 || len(l.Items) != 2 || len(l.Settings) != 0 {
			t.Errorf("empty settings: %+v", l)
		}
		if l := put(5, dsync.LayoutDoc{Items: map[string]dsync.Item{}}); l.Name != "n" || len(l.Items) != 0 || l.Version != 6 {
			t.Errorf("empty items: %+v", l)
		}
	})
}

// TestLayouts_ATieForTheNewDefaultGoesToTheGreaterID: when the other layouts were
// last updated at the same instant, the one with the greatest id becomes the default,
// whatever order they were made in.
func TestLayouts_ATieForTheNewDefaultGoesToTheGreaterID(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, order := range [][]string{{"m", "z", "a"}, {"z", "a", "m"}, {"a", "m", "z"}} {
		next := append([]string{"first"}, order...)
		svc := dsync.NewService(openSQLite(t), dsync.Options{Now: func() time.Time { return at },
			NewID: func() string { id := next[0]; next = next[1:]; return id }})
		for _, name := range append([]string{"first"}, order...) {
			if _, err := svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr(name)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := svc.DeleteLayout(ctx, "alice", "first", "alice"); err != nil {
			t.Fatal(err)
		}
		ls, _ := svc.Layouts(ctx, "alice", false)
		var def []string
		for _, l := range ls {
			if l.IsDefault {
				def = append(def, l.ID)
			}
		}
		if !slices.Equal(def, []string{"z"}) {
			t.Errorf("made in order %v: default %v, want z", order, def)
		}
	}
}

// TestLayouts_AHistoryPageHoldsExactly1MiB: a page takes entries while their ops fit
// in MaxReplyOpsBytes, the bound included.
func TestLayouts_AHistoryPageHoldsExactly1MiB(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		v := int64(1)
		commit := func(ops []dsync.Op) {
			t.Helper()
			if _, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: v, Ops: ops, Author: "alice"}); err != nil {
				t.Fatal(err)
			}
			v++
		}
		commit([]dsync.Op{rep("/name", "filler")}) // v2: the entry past the bound
		for i := range 17 {
			commit(addRemove(10, 5900, fmt.Sprint("big", i)))
		}
		page, _, err := f.svc.History(ctx, "alice", id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		size := dsync.OpsSize(page[:17])
		// The last entry brings the page to exactly the bound.
		rest := dsync.MaxReplyOpsBytes - size
		pad := rest - dsync.OpsSize([]dsync.Change{{Ops: addRemove(1, 0, "last")}})
		if pad < 0 || pad > 60000 {
			t.Fatalf("the test's entries leave %d bytes", rest)
		}
		commit(addRemove(1, pad, "last"))
		page, next, err := f.svc.History(ctx, "alice", id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := dsync.OpsSize(page); len(page) != 18 || got != dsync.MaxReplyOpsBytes || next != page[17].Version {
			t.Fatalf("page of %d entries, %d bytes, next %d; want 18 entries of exactly %d bytes, next %d",
				len(page), got, next, dsync.MaxReplyOpsBytes, page[len(page)-1].Version)
		}
	})
}
