package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// addRemove returns n ops that add and remove one setting of size bytes in pairs,
// then one that renames the layout (so the edit commits): the shape of an edit whose
// ops are far bigger than what it changes.
func addRemove(pairs, size int, name string) []dsync.Op {
	v, _ := json.Marshal(strings.Repeat("x", size))
	var ops []dsync.Op
	for range pairs {
		ops = append(ops, dsync.Op{Op: "add", Path: "/settings/pad", Value: v}, dsync.Op{Op: "remove", Path: "/settings/pad"})
	}
	return append(ops, rep("/name", name))
}

func wantCode(t *testing.T, err error, code dsync.Code) *dsync.Error {
	t.Helper()
	de, ok := err.(*dsync.Error)
	if !ok || de.Code != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
	return de
}

// TestBounds_EditOps: an edit has at most 500 ops of at most 64 KiB of JSON (SPEC
// §12), over WebSocket and PATCH alike (both are EditLayout); a PUT's derived diff is
// not bound by it, since the document bounds it.
func TestBounds_EditOps(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newFixture(t, open(t), 0)
		id := f.layout.ID
		ops := func(n int) []dsync.Op {
			out := make([]dsync.Op, n)
			for i := range out {
				out[i] = rep("/items/"+f.w1+"/x", i%6)
			}
			return out
		}
		_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: ops(501), Author: "alice"})
		wantCode(t, err, dsync.CodeValidation)
		_, _, err = f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: addRemove(11, 6000, "big"), Author: "alice"})
		wantCode(t, err, dsync.CodeTooLarge)
		if l, _ := f.svc.Layout(ctx, "alice", id); l.Version != 1 {
			t.Fatalf("refused edits committed: version %d, want 1", l.Version)
		}
		if _, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: ops(500), Author: "alice"}); err != nil || res.Version != 2 {
			t.Fatalf("500 ops: got %+v, %v; want version 2", res, err)
		}
		// A PUT moving every field of many items derives more than 500 ops.
		items := map[string]dsync.Item{}
		for i := range 150 {
			w, err := f.svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"),
				Source: &dsync.Source{Kind: "static", Data: json.RawMessage(`1`)}}, "alice")
			if err != nil {
				t.Fatal(err)
			}
			items[w.ID] = dsync.Item{X: i % 12, Y: i, W: 1, H: 1}
		}
		l, _, err := f.svc.PutLayout(ctx, "alice", id, 2, dsync.LayoutDoc{Items: items}, dsync.Edit{Author: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		for k, it := range items {
			items[k] = dsync.Item{X: it.X/2 + 1, Y: it.Y + 1, W: 2, H: 2}
		}
		if _, _, err := f.svc.PutLayout(ctx, "alice", id, l.Version, dsync.LayoutDoc{Items: items}, dsync.Edit{Author: "alice"}); err != nil {
			t.Fatalf("PUT deriving 600 ops: %v", err)
		}
	})
}

// TestBounds_SourcePeriods: refreshSeconds is 1…86,400 and ttlSeconds 1…2,592,000
// (SPEC §12), on create and on update, and the largest values fit every store.
func TestBounds_SourcePeriods(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		svc := dsync.NewService(open(t), dsync.Options{})
		mk := func(refresh, ttl int) (dsync.Widget, error) {
			return svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"),
				Source: &dsync.Source{Kind: "push", RefreshSeconds: refresh, TTLSeconds: ttl}}, "alice")
		}
		for _, tc := range []struct {
			refresh, ttl int
			field        string
		}{
			{86_401, 0, "source.refreshSeconds"},
			{2305843009213693952, 0, "source.refreshSeconds"},
			{-1, 0, "source.refreshSeconds"},
			{0, 2_592_001, "source.ttlSeconds"},
			{0, 2147483648, "source.ttlSeconds"},
		} {
			_, err := mk(tc.refresh, tc.ttl)
			de := wantCode(t, err, dsync.CodeValidation)
			if len(de.Details) == 0 || de.Details[0].Field != tc.field {
				t.Errorf("refresh %d ttl %d: details %+v, want field %s", tc.refresh, tc.ttl, de.Details, tc.field)
			}
		}
		w, err := mk(86_400, 2_592_000)
		if err != nil {
			t.Fatalf("largest periods: %v", err)
		}
		got, err := svc.Widget(ctx, "alice", w.ID)
		if err != nil || got.Source.RefreshSeconds != 86_400 || got.Source.TTLSeconds != 2_592_000 {
			t.Fatalf("read back %+v, %v", got.Source, err)
		}
		_, _, err = svc.UpdateWidget(ctx, "alice", w.ID, 1, dsync.WidgetDoc{
			Source: &dsync.Source{Kind: "push", RefreshSeconds: 2305843009213693952, TTLSeconds: 60}}, dsync.Edit{Author: "alice"})
		wantCode(t, err, dsync.CodeValidation)
		if got, err := svc.Widget(ctx, "alice", w.ID); err != nil || got.Version != 1 || got.Source.RefreshSeconds != 86_400 {
			t.Fatalf("after the refused update: %+v, %v; want version 1 unchanged", got, err)
		}
	})
}

// TestBounds_Text: text with NUL or invalid UTF-8 is refused on every path into the
// domain, WebSocket edits included, and no store sees such an id (SPEC §12).
func TestBounds_Text(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newFixture(t, open(t), 0)
		id := f.layout.ID
		for _, op := range []dsync.Op{
			rep("/name", "a\x00b"),
			{Op: "replace", Path: "/name", Value: json.RawMessage("\"a\xffb\"")},
			{Op: "add", Path: "/settings/a\x00", Value: json.RawMessage(`1`)},
			{Op: "add", Path: "/settings/a", Value: json.RawMessage(`"\u0000"`)},
			{Op: "add", Path: "/items/\xff", Value: json.RawMessage(`{"x":0,"y":0,"w":1,"h":1}`)},
		} {
			_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: []dsync.Op{op}, Author: "alice"})
			wantCode(t, err, dsync.CodeValidation)
		}
		for _, bad := range []string{"a\x00b", "\xff\xfe"} {
			_, err := f.svc.Layout(ctx, "alice", bad)
			wantCode(t, err, dsync.CodeNotFound)
			_, _, err = f.svc.EditLayout(ctx, "alice", bad, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}, Author: "alice"})
			wantCode(t, err, dsync.CodeNotFound)
			_, err = f.svc.Widget(ctx, "alice", bad)
			wantCode(t, err, dsync.CodeNotFound)
			_, err = f.svc.Layout(ctx, bad, id)
			wantCode(t, err, dsync.CodeNotFound)
		}
		_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, EditID: "\x00", Ops: []dsync.Op{rep("/name", "x")}, Author: "alice"})
		wantCode(t, err, dsync.CodeValidation)
		if l, _ := f.svc.Layout(ctx, "alice", id); l.Version != 1 {
			t.Fatalf("refused edits committed: version %d, want 1", l.Version)
		}
	})
}

// TestBounds_HistoryPage: a history page holds at most 1 MiB of ops, and says where
// the next page starts (SPEC §12).
func TestBounds_HistoryPage(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newFixture(t, open(t), 0)
		id := f.layout.ID
		for i := range 24 {
			ops := addRemove(10, 6000, fmt.Sprint("n", i))
			if _, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: int64(i + 1), Ops: ops, Author: "alice"}); err != nil {
				t.Fatalf("edit %d: %v", i, err)
			}
		}
		seen := 0
		for before := int64(0); ; {
			page, next, err := f.svc.History(ctx, "alice", id, before, 100)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(page); len(b) > 1<<20+64<<10 {
				t.Fatalf("a page of %d entries is %d bytes, want at most about 1 MiB", len(page), len(b))
			}
			seen += len(page)
			if next == 0 {
				break
			}
			if next != page[len(page)-1].Version {
				t.Fatalf("next %d, want the last entry's version %d", next, page[len(page)-1].Version)
			}
			before = next
		}
		if seen != 25 {
			t.Fatalf("the pages hold %d versions, want all 25", seen)
		}
		// The same bound makes a resume from the start a reset.
		_, complete, err := f.svc.ChangesSince(ctx, id, 0, 25, dsync.MaxReplyOpsBytes)
		if err != nil || complete {
			t.Fatalf("ChangesSince 0: complete %v, %v; want incomplete (past 1 MiB)", complete, err)
		}
		cs, complete, err := f.svc.ChangesSince(ctx, id, 20, 25, dsync.MaxReplyOpsBytes)
		if err != nil || !complete || len(cs) != 5 {
			t.Fatalf("ChangesSince 20: %d changes, complete %v, %v; want 5, complete", len(cs), complete, err)
		}
	})
}

// gate is a store that, once armed, holds the first read of a layout's change paths after
// version after (the overlap check of an edit that far behind) until released; it
// reports whether that read ran inside a write transaction.
type gate struct {
	dsync.Store
	mu      sync.Mutex
	after   int64
	held    chan bool // receives inTx when the read is held
	release chan struct{}
	tripped bool
}

func (g *gate) hold(after int64, inTx bool) {
	g.mu.Lock()
	trip := !g.tripped && g.held != nil && after == g.after
	if trip {
		g.tripped = true
	}
	g.mu.Unlock()
	if trip {
		g.held <- inTx
		select {
		case <-g.release:
		case <-time.After(20 * time.Second): // do not hang a broken build forever
		}
	}
}

func (g *gate) LayoutPaths(ctx context.Context, id string, after, upTo int64) ([]dsync.Change, error) {
	g.hold(after, false)
	return g.Store.LayoutPaths(ctx, id, after, upTo)
}

func (g *gate) InTx(ctx context.Context, fn func(dsync.Tx) error) error {
	return g.Store.InTx(ctx, func(t dsync.Tx) error { return fn(gateTx{Tx: t, g: g}) })
}

type gateTx struct {
	dsync.Tx
	g *gate
}

func (t gateTx) LayoutPaths(ctx context.Context, id string, after, upTo int64) ([]dsync.Change, error) {
	t.g.hold(after, true)
	return t.Tx.LayoutPaths(ctx, id, after, upTo)
}

// TestOverlap_FarBehindEditDoesNotHoldOtherWrites: while the overlap check of an edit
// far behind its head runs, another layout's edit commits (SPEC §12: the check never
// holds up other layouts' writes). Shown by order: the check is held until the other
// edit has committed, which cannot happen if the check holds the store's writer.
func TestOverlap_FarBehindEditDoesNotHoldOtherWrites(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		g := &gate{Store: open(t), release: make(chan struct{})}
		f := newFixture(t, g, 0)
		id := f.layout.ID
		const behind = 40
		for i := range behind {
			ops := []dsync.Op{rep("/items/"+f.w1+"/y", i+1)}
			if _, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: int64(i + 1), Ops: ops, Author: "alice"}); err != nil {
				t.Fatal(err)
			}
		}
		name := "other"
		other, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: &name}, Author: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		g.mu.Lock()
		g.after, g.held = 1, make(chan bool, 1)
		g.mu.Unlock()
		far := make(chan error, 1)
		go func() {
			_, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/items/"+f.w2+"/x", 0)}, Author: "alice"})
			if err == nil && !res.Rebased {
				err = fmt.Errorf("got %+v, want a rebased commit", res)
			}
			far <- err
		}()
		if inTx := <-g.held; inTx {
			t.Errorf("the overlap check of an edit %d versions behind ran inside the write transaction", behind)
		}
		committed := make(chan error, 1)
		go func() {
			_, _, err := f.svc.EditLayout(ctx, "alice", other.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "renamed")}, Author: "alice"})
			committed <- err
		}()
		select {
		case err := <-committed:
			if err != nil {
				t.Fatalf("the other layout's edit: %v", err)
			}
		case <-time.After(15 * time.Second): // generous: it waits on one ordinary commit at most
			t.Errorf("the other layout's edit did not commit while the far-behind check ran")
		}
		close(g.release)
		if err := <-far; err != nil {
			t.Fatalf("the far-behind edit: %v", err)
		}
	})
}

// racer is a store that commits another edit right after the first plain read of a
// layout's change paths, as a concurrent writer would between a far-behind edit's check
// and its transaction.
type racer struct {
	dsync.Store
	once sync.Once
	race func()
}

func (r *racer) LayoutPaths(ctx context.Context, id string, after, upTo int64) ([]dsync.Change, error) {
	cs, err := r.Store.LayoutPaths(ctx, id, after, upTo)
	if after == 1 && r.race != nil {
		r.once.Do(r.race)
	}
	return cs, err
}

// TestOverlap_FarBehindEditIsCheckedAgainstEveryVersion: an edit far behind its head
// conflicts with the version that overlaps it whether that version was there for the
// check outside the transaction or committed just after it, and rebases otherwise.
func TestOverlap_FarBehindEditIsCheckedAgainstEveryVersion(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		r := &racer{Store: open(t)}
		f := newFixture(t, r, 0)
		id := f.layout.ID
		w1x, w1y, w2x := "/items/"+f.w1+"/x", "/items/"+f.w1+"/y", "/items/"+f.w2+"/x"
		for i := range 30 { // versions 2…31; version 6 moves w1 in x, the others in y
			op := rep(w1y, i+1)
			if i == 4 {
				op = rep(w1x, 4)
			}
			if _, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: int64(i + 1), Ops: []dsync.Op{op}, Author: "alice"}); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: []dsync.Op{rep(w2x, 1), rep(w1x, 1)}, Author: "bob"})
		de := wantCode(t, err, dsync.CodeVersionConflict)
		if len(de.Conflicts) != 1 || de.Conflicts[0].Op != 1 || de.Conflicts[0].Version != 6 {
			t.Fatalf("conflicts %+v, want op 1 against version 6", de.Conflicts)
		}
		// Version 32 moves w2 in x between the check and the transaction.
		r.race = func() {
			if _, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 31, Ops: []dsync.Op{rep(w2x, 2)}, Author: "alice"}); err != nil {
				t.Error(err)
			}
		}
		_, _, err = f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: []dsync.Op{rep(w2x, 3)}, Author: "bob"})
		de = wantCode(t, err, dsync.CodeVersionConflict)
		if len(de.Conflicts) != 1 || de.Conflicts[0].Version != 32 {
			t.Fatalf("conflicts %+v, want op 0 against version 32 (committed after the check)", de.Conflicts)
		}
		_, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/items/"+f.w2+"/y", 3)}, Author: "bob"})
		if err != nil || !res.Rebased || res.Version != 33 {
			t.Fatalf("non-overlapping edit 31 versions behind: %+v, %v; want rebased as version 33", res, err)
		}
	})
}
