package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/sync/storetest"
)

// panickyStore panics in the group read while armed.
type panickyStore struct {
	dsync.Store
	armed *atomic.Bool
}

func (p panickyStore) InTx(ctx context.Context, fn func(dsync.Tx) error) error {
	return p.Store.InTx(ctx, func(t dsync.Tx) error { return fn(panickyTx{Tx: t, armed: p.armed}) })
}

type panickyTx struct {
	dsync.Tx
	armed *atomic.Bool
}

func (p panickyTx) ReadForEdits(ctx context.Context, reads []dsync.EditRead) ([]dsync.EditState, error) {
	if p.armed.Load() {
		panic("boom")
	}
	return p.Tx.ReadForEdits(ctx, reads)
}

// TestGroup_PanicFailsItsGroupNotTheServer: a panic while a group commits answers its
// edits with internal errors, commits none of them, and the next edit commits.
func TestGroup_PanicFailsItsGroupNotTheServer(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		armed := &atomic.Bool{}
		f := newFixture(t, panickyStore{Store: open(t), armed: armed}, 0)
		armed.Store(true)
		_, _, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}, Author: "alice"})
		if dsync.ErrorCode(err) != dsync.CodeInternal {
			t.Fatalf("an edit whose group panicked: %v, want internal", err)
		}
		armed.Store(false)
		l, res, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "y")}, Author: "alice"})
		if err != nil || res.Version != 2 || l.Name != "y" {
			t.Fatalf("the next edit: %+v %+v %v, want version 2 named y", l, res, err)
		}
	})
}

// TestGroup_EditWhoseRequestEndsWhileQueuedIsNotCommitted: an edit whose context is
// done before its group commits is answered with the context's error or as unknown,
// and a group that waits for it never commits it.
func TestGroup_EditWhoseRequestEndsWhileQueuedIsNotCommitted(t *testing.T) {
	st := openSQLite(t)
	f := newFixtureWith(t, st, dsync.Options{GroupWindow: time.Second, GroupMax: 8})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}, Author: "alice"})
	if err == nil {
		t.Fatal("an edit with its context done committed")
	}
	// The next edit joins the same lane after it; when it is acknowledged, the
	// group that had the first has committed.
	l, res, err := f.svc.EditLayout(context.Background(), "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/columns", 24)}, Author: "alice"})
	if err != nil || res.Version != 2 {
		t.Fatalf("the next edit: %+v %v, want version 2", res, err)
	}
	cs, err := st.LayoutChanges(context.Background(), f.layout.ID, 0, 10)
	if err != nil || len(cs) != 2 || l.Name != "Ops" || l.Columns != 24 {
		t.Fatalf("after both: %d changes (%v), layout %+v; want the second edit alone", len(cs), err, l)
	}
}

// panickyAnnouncer panics on its first announcement.
type panickyAnnouncer struct{ done atomic.Bool }

func (p *panickyAnnouncer) Announce(context.Context, dsync.Event) {
	if p.done.CompareAndSwap(false, true) {
		panic("boom")
	}
}

// TestGroup_AnnouncerPanicIsContained: an announcer that panics while a committed
// group is published costs that edit its answer (internal; the edit is committed, and
// a resend with its editId gets the ack), not the server: the next edit commits and
// is announced.
func TestGroup_AnnouncerPanicIsContained(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	f := newFixture(t, st, 0)
	svc := dsync.NewService(st, dsync.Options{Announcer: &panickyAnnouncer{}})
	e := dsync.Edit{Base: 1, EditID: "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e60", Ops: []dsync.Op{rep("/name", "x")}, Author: "alice"}
	if _, _, err := svc.EditLayout(ctx, "alice", f.layout.ID, e); dsync.ErrorCode(err) != dsync.CodeInternal {
		t.Fatalf("the edit whose announcement panicked: %v, want internal", err)
	}
	if _, res, err := svc.EditLayout(ctx, "alice", f.layout.ID, e); err != nil || !res.Duplicate || res.Version != 2 {
		t.Fatalf("its resend: %+v %v, want the ack of version 2", res, err)
	}
	if _, res, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 2, Ops: []dsync.Op{rep("/name", "y")}, Author: "alice"}); err != nil || res.Version != 3 {
		t.Fatalf("the next edit: %+v %v, want version 3", res, err)
	}
}

// TestGroup_EditsWaitForAFullGroupWithinTheWindow: with a window, a group waits for
// more edits until it holds GroupMax of them, then commits at once (well before the
// window ends) in one transaction; each edit gets its own version.
func TestGroup_EditsWaitForAFullGroupWithinTheWindow(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	f := newFixture(t, st, 0)
	n := &atomic.Int64{}
	const edits = 4
	svc := dsync.NewService(storetest.TxCounter{Store: st, N: n}, dsync.Options{GroupMax: edits, GroupWindow: time.Hour, CommitLanes: 1})
	done := make(chan error, edits)
	for i := range edits {
		go func() {
			_, _, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Author: "alice",
				Ops: []dsync.Op{{Op: "add", Path: fmt.Sprintf("/settings/k%d", i), Value: json.RawMessage(`1`)}}})
			done <- err
		}()
	}
	for range edits {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d edits took %d transactions, want 1", edits, got)
	}
	l, err := svc.Layout(ctx, "alice", f.layout.ID)
	if err != nil || l.Version != 1+edits || len(l.Settings) != edits {
		t.Fatalf("after the group: %+v (%v), want version %d with every setting", l, err, 1+edits)
	}
}
