package sync_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// countingStore counts the op-log rows its reads of layout changes return, in and
// out of transactions.
type countingStore struct {
	dsync.Store
	rows *atomic.Int64
}

func (c countingStore) LayoutChanges(ctx context.Context, id string, after, upTo int64) ([]dsync.Change, error) {
	cs, err := c.Store.LayoutChanges(ctx, id, after, upTo)
	c.rows.Add(int64(len(cs)))
	return cs, err
}

func (c countingStore) InTx(ctx context.Context, fn func(dsync.Tx) error) error {
	return c.Store.InTx(ctx, func(t dsync.Tx) error { return fn(countingTx{Tx: t, rows: c.rows}) })
}

type countingTx struct {
	dsync.Tx
	rows *atomic.Int64
}

func (c countingTx) LayoutChanges(ctx context.Context, id string, after, upTo int64) ([]dsync.Change, error) {
	cs, err := c.Tx.LayoutChanges(ctx, id, after, upTo)
	c.rows.Add(int64(len(cs)))
	return cs, err
}

// TestOldVersions_ReplayAtMostOneCheckpointInterval: the op log keeps the whole
// document only every CheckpointEvery versions; the document at any kept version
// (what a restore commits) is exact, and reading it reads at most CheckpointEvery
// rows of the log (the checkpoint and the versions replayed on it). A version past the
// kept history is not_found.
func TestOldVersions_ReplayAtMostOneCheckpointInterval(t *testing.T) {
	const (
		retention = 250
		every     = 100
		edits     = 330
	)
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		rows := &atomic.Int64{}
		st := countingStore{Store: open(t), rows: rows}
		f := newFixtureWith(t, st, dsync.Options{Retention: retention, CheckpointEvery: every})
		docs := map[int64]dsync.Layout{1: f.layout}
		head := f.layout
		for i := range edits {
			ops := []dsync.Op{rep("/items/"+f.w1+"/y", i)}
			if i%3 == 0 {
				ops = append(ops, rep("/name", fmt.Sprint("name ", i)))
			}
			if i%7 == 0 {
				ops = append(ops, dsync.Op{Op: "add", Path: "/settings/k" + fmt.Sprint(i%5), Value: rep("", i).Value})
			}
			l, _, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: head.Version, Ops: ops, Author: "alice"})
			if err != nil {
				t.Fatalf("edit %d: %v", i, err)
			}
			head, docs[l.Version] = l, l
		}
		check := func(v int64) {
			t.Helper()
			rows.Store(0)
			l, _, err := f.svc.Restore(ctx, "alice", f.layout.ID, v, "alice")
			if err != nil {
				t.Fatalf("restore version %d (head %d): %v", v, head.Version, err)
			}
			if n := rows.Load(); n > every {
				t.Errorf("restoring version %d read %d rows of the log, want at most %d", v, n, every)
			}
			if !dsync.SameLayoutDoc(l, docs[v]) {
				t.Fatalf("restoring version %d gives %+v, version %d was %+v", v, l, v, docs[v])
			}
			head, docs[l.Version] = l, l
		}
		oldest := head.Version - retention + 1
		for _, v := range []int64{oldest, 100, 101, 199, 200, 201, 299, 300, 301, head.Version - 1} {
			check(v)
		}
		for v := oldest + 10; v < edits; v += 17 {
			check(v)
		}
		if _, _, err := f.svc.Restore(ctx, "alice", f.layout.ID, head.Version-retention, "alice"); dsync.ErrorCode(err) != dsync.CodeNotFound {
			t.Errorf("restoring the version just past the kept history: %v, want not_found", err)
		}
	})
}
