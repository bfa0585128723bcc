package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// lossyStore is a store whose next transaction, once armed, ends with an unknown
// outcome: committed (the answer lost), or rolled back, the store having seen the
// transaction end (ended) or not.
type lossyStore struct {
	dsync.Store
	armed     atomic.Bool
	commit    bool
	ended     bool
	duplicate atomic.Int64 // how many layout commits to refuse with ErrDuplicateEdit
}

var errRollback = errors.New("test rollback")

func (s *lossyStore) InTx(ctx context.Context, fn func(dsync.Tx) error) error {
	wrap := func(t dsync.Tx) error { return fn(lossyTx{Tx: t, s: s}) }
	if !s.armed.CompareAndSwap(true, false) {
		return s.Store.InTx(ctx, wrap)
	}
	cause := dsync.ErrOutcomeUnknown
	if s.ended {
		cause = errors.Join(dsync.ErrOutcomeUnknown, dsync.ErrTxEnded)
	}
	lost := &dsync.Error{Code: dsync.CodeUnavailable, Message: "connection lost", Err: cause}
	if s.commit {
		if err := s.Store.InTx(ctx, wrap); err != nil {
			return err
		}
		return lost
	}
	err := s.Store.InTx(ctx, func(t dsync.Tx) error {
		if err := wrap(t); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return err
	}
	return lost
}

type lossyTx struct {
	dsync.Tx
	s *lossyStore
}

func (t lossyTx) UpdateLayout(ctx context.Context, l dsync.Layout, c dsync.Change) error {
	if t.s.duplicate.Add(-1) >= 0 {
		return fmt.Errorf("race: %w", dsync.ErrDuplicateEdit)
	}
	return t.Tx.UpdateLayout(ctx, l, c)
}

func newLossy(t *testing.T) (*lossyStore, fixture, *dsync.Service, *recorder) {
	t.Helper()
	st := openSQLite(t)
	f := newFixture(t, st, 0)
	lossy := &lossyStore{Store: st}
	rec := &recorder{}
	svc := dsync.NewService(lossy, dsync.Options{Announcer: rec, ResolveTimeout: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	return lossy, f, svc, rec
}

// TestOutcome_ACommitWhoseAnswerWasLostIsFoundAgain: when the store cannot tell
// whether a commit happened, the service looks its edits up by editId: found, the
// edit succeeds (and is announced); not found once the store saw the transaction end,
// it is unavailable with nothing written; not found otherwise, the outcome is unknown.
func TestOutcome_ACommitWhoseAnswerWasLostIsFoundAgain(t *testing.T) {
	ctx := context.Background()
	t.Run("committed", func(t *testing.T) {
		lossy, f, svc, rec := newLossy(t)
		lossy.commit = true
		lossy.armed.Store(true)
		l, res, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}})
		if err != nil || res != (dsync.Result{Version: 2, Committed: true}) || l.Name != "x" {
			t.Fatalf("layout edit: %+v, %v; want it committed", res, err)
		}
		if got := take(rec, func(e dsync.LayoutCommitted) int64 { return e.Change.Version }); len(got) != 1 || got[0] != 2 {
			t.Errorf("announced %v, want version 2", got)
		}
		lossy.armed.Store(true)
		w, res, err := svc.UpdateWidget(ctx, "alice", f.w1, 1, dsync.WidgetDoc{Title: ptr("t")}, dsync.Edit{})
		if err != nil || res.Version != 2 || w.Title != "t" {
			t.Fatalf("widget edit: %+v, %v; want it committed", res, err)
		}
		// Two layouts edited in one transaction (a new default): both are found.
		l2, err := svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("two")}})
		if err != nil {
			t.Fatal(err)
		}
		lossy.armed.Store(true)
		if d, err := svc.SetDefault(ctx, "alice", l2.ID, "alice"); err != nil || !d.IsDefault {
			t.Fatalf("SetDefault: %+v, %v", d, err)
		}
	})
	t.Run("rolled back, ended", func(t *testing.T) {
		lossy, f, svc, rec := newLossy(t)
		lossy.ended = true
		lossy.armed.Store(true)
		_, _, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}})
		de := wantCode(t, err, dsync.CodeUnavailable)
		if de.Outcome != "" {
			t.Errorf("outcome %q, want known (nothing written)", de.Outcome)
		}
		if l, _ := svc.Layout(ctx, "alice", f.layout.ID); l.Version != 1 {
			t.Errorf("version %d, want 1", l.Version)
		}
		if got := take(rec, func(e dsync.LayoutCommitted) int64 { return e.Change.Version }); len(got) != 0 {
			t.Errorf("announced %v, want nothing", got)
		}
	})
	t.Run("rolled back, not known to have ended", func(t *testing.T) {
		lossy, f, svc, _ := newLossy(t)
		lossy.armed.Store(true)
		e := dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}, EditID: "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e71"}
		_, _, err := svc.EditLayout(ctx, "alice", f.layout.ID, e)
		de := wantCode(t, err, dsync.CodeUnavailable)
		if de.Outcome != dsync.OutcomeUnknown || !errors.Is(de, dsync.ErrOutcomeUnknown) {
			t.Errorf("outcome %q (%v), want unknown", de.Outcome, err)
		}
		if l, _ := svc.Layout(ctx, "alice", f.layout.ID); l.Version != 1 {
			t.Errorf("version %d, want 1", l.Version)
		}
		// A resend with the same editId is safe: it is applied once.
		for range 2 {
			if _, res, err := svc.EditLayout(ctx, "alice", f.layout.ID, e); err != nil || res.Version != 2 {
				t.Fatalf("resend: %+v, %v; want version 2", res, err)
			}
		}
	})
	t.Run("no edit to look up", func(t *testing.T) {
		lossy, _, svc, _ := newLossy(t)
		lossy.ended = true
		lossy.armed.Store(true)
		_, err := svc.UpdateDashboard(ctx, "alice", dsync.DashboardPatch{SetCurrent: true})
		de := wantCode(t, err, dsync.CodeUnavailable)
		if de.Outcome != dsync.OutcomeUnknown {
			t.Errorf("outcome %q, want unknown: a dashboard write has no editId to look up", de.Outcome)
		}
	})
}

// TestOutcome_ARacingResendOfTheSameEditIDIsRetried: when the store refuses a commit
// because its editId is already in the log (a resend racing the original), the edit
// is run again.
func TestOutcome_ARacingResendOfTheSameEditIDIsRetried(t *testing.T) {
	ctx := context.Background()
	lossy, f, svc, _ := newLossy(t)
	lossy.duplicate.Store(1)
	l, res, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")},
		EditID: "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e70"})
	if err != nil || res.Version != 2 || !res.Committed || l.Name != "x" {
		t.Fatalf("edit after a refused commit: %+v, %v", res, err)
	}
}

// TestOutcome_TheDefaultResolveTimeoutLooksTheCommitUp: with no ResolveTimeout set, a
// commit whose answer was lost is still looked up, and found.
func TestOutcome_TheDefaultResolveTimeoutLooksTheCommitUp(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	f := newFixture(t, st, 0)
	lossy := &lossyStore{Store: st, commit: true}
	svc := dsync.NewService(lossy, dsync.Options{Logger: slog.New(slog.DiscardHandler)})
	lossy.armed.Store(true)
	if _, res, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}}); err != nil || res.Version != 2 {
		t.Fatalf("lost answer, default timeout: %+v, %v; want version 2", res, err)
	}
}
