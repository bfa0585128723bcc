package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// clockFixture is newFixture's layout on a service with a clock the test sets and an
// event recorder.
type clockFixture struct {
	fixture
	now    *atomic.Int64
	events *recorder
}

// epoch is the test clock's start: after the real time newFixture's layout was made.
var epoch = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func newClockFixture(t *testing.T, st dsync.Store, retention int) clockFixture {
	t.Helper()
	f := newFixture(t, st, retention)
	now := &atomic.Int64{}
	now.Store(epoch.UnixNano())
	ev := &recorder{}
	f.svc = dsync.NewService(st, dsync.Options{Retention: retention, Announcer: ev,
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	return clockFixture{fixture: f, now: now, events: ev}
}

func (f clockFixture) edit(t *testing.T, base int64, ops ...dsync.Op) dsync.Result {
	t.Helper()
	_, res, err := f.svc.EditLayout(context.Background(), "alice", f.layout.ID, dsync.Edit{Base: base, Ops: ops, Author: "alice"})
	if err != nil {
		t.Fatalf("edit on %d: %v", base, err)
	}
	return res
}

func conflictOf(t *testing.T, err error) *dsync.Error {
	t.Helper()
	de := wantCode(t, err, dsync.CodeVersionConflict)
	if de.Current == nil {
		t.Fatalf("conflict without the current object: %+v", de)
	}
	return de
}

// TestPipeline_BaseVersionIsRequiredAndNotAhead: an edit names a base from 1 to the
// head (forced ones may name none); the error says which bound it broke.
func TestPipeline_BaseVersionIsRequiredAndNotAhead(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		f.edit(t, 1, rep("/name", "two"))
		for _, base := range []int64{0, -1} {
			_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: base, Ops: []dsync.Op{rep("/name", "x")}})
			de := wantCode(t, err, dsync.CodeValidation)
			if de.Details[0].Field != "version" || de.Details[0].Rule != "required" {
				t.Errorf("base %d: %+v, want version required", base, de.Details)
			}
			_, _, err = f.svc.PutLayout(ctx, "alice", id, base, dsync.LayoutDoc{Name: ptr("x")}, dsync.Edit{})
			de = wantCode(t, err, dsync.CodeValidation)
			if de.Details[0].Field != "version" || de.Details[0].Rule != "required" {
				t.Errorf("PUT on base %d: %+v, want version required", base, de.Details)
			}
		}
		_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 3, Ops: []dsync.Op{rep("/name", "x")}})
		de := wantCode(t, err, dsync.CodeValidation)
		if de.Details[0].Field != "version" || de.Details[0].Rule != "max" || de.Details[0].Param != "2" {
			t.Errorf("base ahead: %+v, want version max 2", de.Details)
		}
		_, _, err = f.svc.PutLayout(ctx, "alice", id, 3, dsync.LayoutDoc{Name: ptr("x")}, dsync.Edit{})
		de = wantCode(t, err, dsync.CodeValidation)
		if de.Details[0].Field != "version" || de.Details[0].Rule != "max" || de.Details[0].Param != "2" {
			t.Errorf("PUT on a base ahead: %+v, want version max 2", de.Details)
		}
		if l, _ := f.svc.Layout(ctx, "alice", id); l.Version != 2 || l.Name != "two" {
			t.Fatalf("refused edits committed: %q v%d", l.Name, l.Version)
		}
		// The head itself is a base; a forced edit needs none.
		if _, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 2, Ops: []dsync.Op{rep("/name", "three")}}); err != nil || res.Version != 3 || res.Rebased || !res.Committed {
			t.Fatalf("edit on the head: %+v, %v; want version 3, committed, not rebased", res, err)
		}
		if l, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Force: true, Ops: []dsync.Op{rep("/name", "four")}}); err != nil || res.Version != 4 || l.Name != "four" {
			t.Fatalf("forced edit without a base: %+v, %v", res, err)
		}
		if l, res, err := f.svc.PutLayout(ctx, "alice", id, 0, dsync.LayoutDoc{Name: ptr("five")}, dsync.Edit{Force: true}); err != nil || res.Version != 5 || l.Name != "five" {
			t.Fatalf("forced PUT without a base: %+v, %v", res, err)
		}
	})
}

// TestPipeline_ConflictsNameEachOverlappingOpAndTheLatestVersion: a version_conflict
// carries the head, its version and, for each op that overlaps a later version, that
// op's index, path and the latest version it overlaps; ops that overlap nothing are not
// listed.
func TestPipeline_ConflictsNameEachOverlappingOpAndTheLatestVersion(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		x1, y2 := "/items/"+f.w1+"/x", "/items/"+f.w2+"/y"
		f.edit(t, 1, rep(x1, 1))          // v2
		f.edit(t, 2, rep(y2, 1))          // v3
		f.edit(t, 3, rep(x1, 2))          // v4
		f.edit(t, 4, rep("/columns", 24)) // v5
		_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1,
			Ops: []dsync.Op{rep("/name", "n"), rep(x1, 3), rep(y2, 3), {Op: "remove", Path: "/items/" + f.w2}}})
		de := conflictOf(t, err)
		want := []dsync.Conflict{
			{Op: 1, Path: x1, Version: 4, Reason: dsync.ReasonOverlap},
			{Op: 2, Path: y2, Version: 3, Reason: dsync.ReasonOverlap},
			{Op: 3, Path: "/items/" + f.w2, Version: 3, Reason: dsync.ReasonOverlap},
		}
		if fmt.Sprint(de.Conflicts) != fmt.Sprint(want) || de.Version != 5 {
			t.Errorf("conflicts %+v at v%d, want %+v at v5", de.Conflicts, de.Version, want)
		}
		if cur, ok := de.Current.(dsync.Layout); !ok || cur.Version != 5 || cur.Columns != 24 || cur.Items[f.w1].X != 2 {
			t.Errorf("current %+v, want the head at v5", de.Current)
		}
		// From a later base only the later versions count.
		_, _, err = f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 3, Ops: []dsync.Op{rep(y2, 3), rep(x1, 3)}})
		de = conflictOf(t, err)
		if want := []dsync.Conflict{{Op: 1, Path: x1, Version: 4, Reason: dsync.ReasonOverlap}}; fmt.Sprint(de.Conflicts) != fmt.Sprint(want) {
			t.Errorf("from v3: conflicts %+v, want %+v", de.Conflicts, want)
		}
		// Nothing overlapping: rebased onto the head.
		l, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 4, Ops: []dsync.Op{rep(y2, 7)}})
		if err != nil || !res.Rebased || res.Version != 6 || l.Items[f.w2].Y != 7 || l.Columns != 24 {
			t.Fatalf("rebased edit: %+v, %v", res, err)
		}
	})
}

// TestPipeline_FarBehindConflictsAreTheSameAsNear: an edit more than 16 versions
// behind is checked outside the transaction, with the same conflicts as one near the
// head, and commits rebased when nothing overlaps.
func TestPipeline_FarBehindConflictsAreTheSameAsNear(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		x1 := "/items/" + f.w1 + "/x"
		f.edit(t, 1, rep(x1, 1)) // v2
		for v := int64(2); v < 21; v++ {
			f.edit(t, v, rep("/name", fmt.Sprint("n", v)))
		}
		// v21 is the head: 20 versions after 1, 19 after 2.
		for _, base := range []int64{1, 2, 4, 5, 6} {
			_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: base, Ops: []dsync.Op{rep(x1, 5), rep("/name", "z")}})
			de := conflictOf(t, err)
			want := []dsync.Conflict{{Op: 1, Path: "/name", Version: 21, Reason: dsync.ReasonOverlap}}
			if base < 2 {
				want = append([]dsync.Conflict{{Op: 0, Path: x1, Version: 2, Reason: dsync.ReasonOverlap}}, want...)
			}
			if fmt.Sprint(de.Conflicts) != fmt.Sprint(want) || de.Version != 21 {
				t.Errorf("base %d: conflicts %+v at v%d, want %+v at v21", base, de.Conflicts, de.Version, want)
			}
		}
		l, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 2, Ops: []dsync.Op{rep(x1, 5)}})
		if err != nil || !res.Rebased || res.Version != 22 || l.Items[f.w1].X != 5 || l.Name != "n20" {
			t.Fatalf("far-behind edit overlapping nothing: %+v, %v", res, err)
		}
	})
}

// TestPipeline_BaseTooOldNamesEveryOp: past the retention, an edit (near or far
// behind) and a PUT on a version the log no longer keeps are version_conflicts whose
// conflicts say base_too_old, one per op (the base alone for a PUT, whose ops are not
// known); a base still kept works.
func TestPipeline_BaseTooOldNamesEveryOp(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 3)
		id := f.layout.ID
		for v := int64(1); v < 22; v++ {
			f.edit(t, v, rep("/name", fmt.Sprint("n", v)))
		}
		// v22 is the head; the log keeps 20, 21, 22.
		for _, base := range []int64{1, 10, 18} {
			_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: base, Ops: []dsync.Op{rep("/columns", 24), rep("/items/"+f.w1+"/y", 9)}})
			de := conflictOf(t, err)
			want := []dsync.Conflict{
				{Op: 0, Path: "/columns", Version: base, Reason: dsync.ReasonBaseTooOld},
				{Op: 1, Path: "/items/" + f.w1 + "/y", Version: base, Reason: dsync.ReasonBaseTooOld},
			}
			if fmt.Sprint(de.Conflicts) != fmt.Sprint(want) || de.Version != 22 {
				t.Errorf("base %d: %+v at v%d, want %+v at v22", base, de.Conflicts, de.Version, want)
			}
			_, _, err = f.svc.PutLayout(ctx, "alice", id, base, dsync.LayoutDoc{Columns: ptr(24)}, dsync.Edit{})
			de = conflictOf(t, err)
			if want := []dsync.Conflict{{Version: base, Reason: dsync.ReasonBaseTooOld}}; fmt.Sprint(de.Conflicts) != fmt.Sprint(want) || de.Version != 22 {
				t.Errorf("PUT on %d: %+v at v%d, want %+v at v22", base, de.Conflicts, de.Version, want)
			}
		}
		// The oldest kept version is a base still, for edits and PUTs.
		if _, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 20, Ops: []dsync.Op{rep("/columns", 24)}}); err != nil || !res.Rebased || res.Version != 23 {
			t.Fatalf("edit on the oldest kept version: %+v, %v", res, err)
		}
		l, res, err := f.svc.PutLayout(ctx, "alice", id, 21, dsync.LayoutDoc{Name: ptr("n20"), Settings: dsync.Settings{"a": json.RawMessage(`1`)}}, dsync.Edit{})
		if err != nil || !res.Rebased || res.Version != 24 || l.Columns != 24 || string(l.Settings["a"]) != "1" || l.Name != "n21" {
			t.Fatalf("PUT on a kept version: %+v %+v, %v", l, res, err)
		}
	})
}

// TestPipeline_PutDiffsAgainstItsBase: a PUT turns the document sent into the ops
// from its base's document, so what it did not change is not an overlap, what it
// changed back is one, and a forced PUT diffs against the head.
func TestPipeline_PutDiffsAgainstItsBase(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		f.edit(t, 1, rep("/name", "renamed")) // v2
		// Based on v1, the PUT keeps the v1 name: not a change, not an overlap.
		l, res, err := f.svc.PutLayout(ctx, "alice", id, 1, dsync.LayoutDoc{Name: ptr("Ops"), Columns: ptr(24), Items: f.layout.Items}, dsync.Edit{})
		if err != nil || !res.Rebased || res.Version != 3 || l.Name != "renamed" || l.Columns != 24 {
			t.Fatalf("PUT on v1: %+v %+v, %v; want v3 renamed with 24 columns", l, res, err)
		}
		hist, _, err := f.svc.History(ctx, "alice", id, 0, 1)
		if err != nil || len(hist) != 1 || fmt.Sprint(hist[0].Ops) != fmt.Sprint([]dsync.Op{rep("/columns", 24)}) {
			t.Fatalf("PUT recorded %+v, %v; want only the columns", hist, err)
		}
		// A PUT on v1 that renames overlaps v2.
		_, _, err = f.svc.PutLayout(ctx, "alice", id, 1, dsync.LayoutDoc{Name: ptr("mine")}, dsync.Edit{})
		de := conflictOf(t, err)
		if want := []dsync.Conflict{{Op: 0, Path: "/name", Version: 2, Reason: dsync.ReasonOverlap}}; fmt.Sprint(de.Conflicts) != fmt.Sprint(want) {
			t.Fatalf("PUT renaming on v1: %+v, want %+v", de.Conflicts, want)
		}
		// Forced, the same PUT wins, diffed against the head.
		l, res, err = f.svc.PutLayout(ctx, "alice", id, 1, dsync.LayoutDoc{Name: ptr("mine")}, dsync.Edit{Force: true})
		if err != nil || res.Rebased || res.Version != 4 || l.Name != "mine" || l.Columns != 24 {
			t.Fatalf("forced PUT: %+v %+v, %v", l, res, err)
		}
		// A PUT of the head's document is a no-op.
		l, res, err = f.svc.PutLayout(ctx, "alice", id, 4, dsync.LayoutDoc{Name: ptr("mine"), Columns: ptr(24)}, dsync.Edit{})
		if err != nil || res.Committed || res.Version != 4 || l.Version != 4 {
			t.Fatalf("PUT of the head: %+v, %v; want version 4, nothing committed", res, err)
		}
	})
}

// TestPipeline_ACommitIsRecordedAsSent: each commit is one op-log entry with the
// version, ops, author, client, editId and time, and is announced once; a no-op is
// neither recorded nor announced.
func TestPipeline_ACommitIsRecordedAsSent(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		at := epoch.Add(90 * time.Minute)
		f.now.Store(at.UnixNano())
		const editID = "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e61"
		ops := []dsync.Op{rep("/items/"+f.w1+"/h", 5), {Op: "add", Path: "/settings/theme", Value: json.RawMessage(`"dark"`)}}
		l, res, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: ops, Author: "bob", Client: "c1", EditID: editID})
		if err != nil || res != (dsync.Result{Version: 2, Committed: true}) {
			t.Fatalf("edit: %+v, %v", res, err)
		}
		if l.Version != 2 || !l.UpdatedAt.Equal(at) || l.Items[f.w1].H != 5 {
			t.Errorf("layout after the edit: v%d updated %v, want v2 at %v", l.Version, l.UpdatedAt, at)
		}
		hist, _, err := f.svc.History(ctx, "alice", id, 0, 10)
		if err != nil || len(hist) != 2 {
			t.Fatalf("history: %+v, %v", hist, err)
		}
		c := hist[0]
		if c.Version != 2 || c.Author != "bob" || c.Client != "c1" || c.EditID != editID || !c.Time.Equal(at) ||
			fmt.Sprint(c.Ops) != fmt.Sprint(ops) || c.RestoredFrom != nil {
			t.Errorf("recorded %+v", c)
		}
		commits := take(f.events, func(e dsync.LayoutCommitted) dsync.Change { return e.Change })
		if len(commits) != 1 || commits[0].Version != 2 || commits[0].EditID != editID || commits[0].Author != "bob" {
			t.Errorf("announced %+v, want the one commit", commits)
		}
		// Without an editId the server makes one, so the commit can be found again.
		f.edit(t, 2, rep("/name", "x"))
		hist, _, _ = f.svc.History(ctx, "alice", id, 0, 1)
		if len(hist) != 1 || hist[0].EditID == "" || hist[0].EditID == editID {
			t.Errorf("an edit without an editId recorded %q", hist[0].EditID)
		}
		take(f.events, func(e dsync.LayoutCommitted) int64 { return e.Change.Version })
		// A no-op.
		_, res, err = f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 3, Ops: []dsync.Op{rep("/name", "x")}})
		if err != nil || res != (dsync.Result{Version: 3}) {
			t.Errorf("no-op: %+v, %v; want version 3, nothing committed", res, err)
		}
		if got := take(f.events, func(e dsync.LayoutCommitted) int64 { return e.Change.Version }); len(got) != 0 {
			t.Errorf("a no-op announced %v", got)
		}
		if hist, _, _ := f.svc.History(ctx, "alice", id, 0, 10); len(hist) != 3 {
			t.Errorf("a no-op was recorded: %d entries", len(hist))
		}
	})
}

// TestPipeline_EditIDs: an editId is a UUID; resent, it is answered with the first
// acknowledgement (its version and whether it was rebased) and applies nothing, for
// layouts and widgets alike.
func TestPipeline_EditIDs(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, EditID: "not-a-uuid", Ops: []dsync.Op{rep("/name", "x")}})
		if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "editId" {
			t.Errorf("a bad editId: %+v", de.Details)
		}
		f.edit(t, 1, rep("/columns", 24)) // v2
		const e1 = "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e62"
		e := dsync.Edit{Base: 1, EditID: e1, Ops: []dsync.Op{rep("/name", "x")}}
		if _, res, err := f.svc.EditLayout(ctx, "alice", id, e); err != nil || res != (dsync.Result{Version: 3, Rebased: true, Committed: true}) {
			t.Fatalf("first send: %+v, %v", res, err)
		}
		f.edit(t, 3, rep("/name", "y")) // v4
		l, res, err := f.svc.EditLayout(ctx, "alice", id, e)
		if err != nil || res != (dsync.Result{Version: 3, Rebased: true, Duplicate: true}) || l.Version != 4 || l.Name != "y" {
			t.Fatalf("resend: %+v %q v%d, %v; want the first acknowledgement, nothing applied", res, l.Name, l.Version, err)
		}

		// Widgets.
		_, _, err = f.svc.UpdateWidget(ctx, "alice", f.w1, 1, dsync.WidgetDoc{Title: ptr("x")}, dsync.Edit{EditID: "nope"})
		if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "editId" {
			t.Errorf("a bad widget editId: %+v", de.Details)
		}
		const e2 = "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e63"
		w, res, err := f.svc.UpdateWidget(ctx, "alice", f.w1, 1, dsync.WidgetDoc{Title: ptr("renamed")}, dsync.Edit{EditID: e2, Author: "alice"})
		if err != nil || res != (dsync.Result{Version: 2, Committed: true}) || w.Title != "renamed" {
			t.Fatalf("widget edit: %+v %+v, %v", w, res, err)
		}
		if _, _, err := f.svc.UpdateWidget(ctx, "alice", f.w1, 2, dsync.WidgetDoc{Title: ptr("again")}, dsync.Edit{}); err != nil {
			t.Fatal(err)
		}
		w, res, err = f.svc.UpdateWidget(ctx, "alice", f.w1, 1, dsync.WidgetDoc{Title: ptr("renamed")}, dsync.Edit{EditID: e2})
		if err != nil || res != (dsync.Result{Version: 2, Duplicate: true}) || w.Title != "again" || w.Version != 3 {
			t.Fatalf("widget resend: %+v %+v, %v", w, res, err)
		}
	})
}

// TestPipeline_WidgetEditsFollowTheRule: widget updates are rebased past versions that
// changed other fields, conflict with ones that changed the same, and are refused when
// their base is no longer kept.
func TestPipeline_WidgetEditsFollowTheRule(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 3)
		up := func(base int64, doc dsync.WidgetDoc, force bool) (dsync.Widget, dsync.Result, error) {
			return f.svc.UpdateWidget(ctx, "alice", f.w1, base, doc, dsync.Edit{Force: force, Author: "alice"})
		}
		if _, res, err := up(1, dsync.WidgetDoc{Title: ptr("a")}, false); err != nil || res.Version != 2 || res.Rebased {
			t.Fatalf("on the head: %+v, %v", res, err)
		}
		w, res, err := up(1, dsync.WidgetDoc{Settings: dsync.Settings{"k": json.RawMessage(`1`)}}, false)
		if err != nil || res.Version != 3 || !res.Rebased || w.Title != "a" || string(w.Settings["k"]) != "1" {
			t.Fatalf("rebased: %+v %+v, %v", w, res, err)
		}
		_, _, err = up(1, dsync.WidgetDoc{Title: ptr("b")}, false)
		de := conflictOf(t, err)
		if want := []dsync.Conflict{{Op: 0, Path: "/title", Version: 2, Reason: dsync.ReasonOverlap}}; fmt.Sprint(de.Conflicts) != fmt.Sprint(want) || de.Version != 3 {
			t.Errorf("overlap: %+v at v%d, want %+v at v3", de.Conflicts, de.Version, want)
		}
		if cur, ok := de.Current.(dsync.Widget); !ok || cur.Version != 3 || cur.Title != "a" {
			t.Errorf("current %+v, want the widget at v3", de.Current)
		}
		if w, res, err := up(1, dsync.WidgetDoc{Title: ptr("b")}, true); err != nil || res.Version != 4 || w.Title != "b" {
			t.Fatalf("forced: %+v %+v, %v", w, res, err)
		}
		for v := int64(4); v < 8; v++ {
			if _, _, err := up(v, dsync.WidgetDoc{Title: ptr(fmt.Sprint("t", v))}, false); err != nil {
				t.Fatal(err)
			}
		}
		// v8 is the head; the log keeps 6, 7, 8.
		_, _, err = up(5, dsync.WidgetDoc{Type: ptr("chart")}, false)
		de = conflictOf(t, err)
		if want := []dsync.Conflict{{Version: 5, Reason: dsync.ReasonBaseTooOld}}; fmt.Sprint(de.Conflicts) != fmt.Sprint(want) {
			t.Errorf("base too old: %+v, want %+v", de.Conflicts, want)
		}
		if w, res, err := up(6, dsync.WidgetDoc{Type: ptr("chart")}, false); err != nil || res.Version != 9 || !res.Rebased || w.Type != "chart" || w.Title != "t7" {
			t.Fatalf("on the oldest kept: %+v %+v, %v", w, res, err)
		}
		// The kept history is the last 3 (the store trims a checkpoint interval at a
		// time, so it may hold more, never less).
		cs, err := f.store.WidgetChanges(ctx, f.w1, 6, 9)
		if err != nil || len(cs) != 3 || cs[0].Version != 7 {
			t.Fatalf("kept %d changes (%v), want 7..9", len(cs), err)
		}
		if got := take(f.events, func(e dsync.WidgetChanged) int64 { return e.Widget.Version }); fmt.Sprint(got) != "[2 3 4 5 6 7 8 9]" {
			t.Errorf("announced versions %v, want 2..9", got)
		}
	})
}

// TestPipeline_RestoreCommitsAnOldDocument: a restore is a new version with the old
// document (not its default flag), recorded with restoredFrom; a version that does not
// exist or is no longer kept is not_found, and restoring the head's document commits
// nothing.
func TestPipeline_RestoreCommitsAnOldDocument(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 4)
		id := f.layout.ID
		f.edit(t, 1, rep("/name", "two"))         // v2
		f.edit(t, 2, rep("/columns", 24))         // v3
		f.edit(t, 3, rep("/items/"+f.w1+"/y", 8)) // v4
		l, res, err := f.svc.Restore(ctx, "alice", id, 2, "carol")
		if err != nil || res.Version != 5 || !res.Committed || l.Name != "two" || l.Columns != 12 || l.Items[f.w1].Y != 0 || !l.IsDefault {
			t.Fatalf("restore of v2: %+v %+v, %v", l, res, err)
		}
		hist, _, _ := f.svc.History(ctx, "alice", id, 0, 1)
		if len(hist) != 1 || hist[0].RestoredFrom == nil || *hist[0].RestoredFrom != 2 || hist[0].Author != "carol" {
			t.Fatalf("recorded %+v", hist)
		}
		for _, v := range []int64{0, -1, 6, 1} { // 1: trimmed (the log keeps 2..5)
			_, _, err := f.svc.Restore(ctx, "alice", id, v, "alice")
			wantCode(t, err, dsync.CodeNotFound)
		}
		if _, res, err := f.svc.Restore(ctx, "alice", id, 5, "alice"); err != nil || res.Committed || res.Version != 5 {
			t.Fatalf("restore of the head: %+v, %v", res, err)
		}
		if l, res, err := f.svc.Restore(ctx, "alice", id, 3, "alice"); err != nil || res.Version != 6 || l.Columns != 24 || l.Name != "two" {
			t.Fatalf("restore of v3: %+v, %v", res, err)
		}
		// Bob may read but not restore.
		if _, err := f.svc.UpdateAccess(ctx, "alice", id, map[string]*dsync.Role{"bob": role(dsync.RoleViewer)}, nil); err != nil {
			t.Fatal(err)
		}
		_, _, err = f.svc.Restore(ctx, "alice", id, 3, "bob")
		if err != nil {
			t.Fatal(err) // alice restores, bob authors: allowed
		}
		_, _, err = f.svc.Restore(ctx, "bob", id, 3, "bob")
		wantCode(t, err, dsync.CodeForbidden)
	})
}

// staleStore is a store whose layout commits always lose their compare-and-swap.
type staleStore struct {
	dsync.Store
	tries atomic.Int64
}

type staleTx struct {
	dsync.Tx
	s *staleStore
}

func (s *staleStore) InTx(ctx context.Context, fn func(dsync.Tx) error) error {
	return s.Store.InTx(ctx, func(t dsync.Tx) error { return fn(staleTx{Tx: t, s: s}) })
}

func (t staleTx) UpdateLayout(ctx context.Context, l dsync.Layout, c dsync.Change) error {
	t.s.tries.Add(1)
	return fmt.Errorf("lost: %w", dsync.ErrStale)
}

// WriteLayouts is how a group commits its layout edits: it loses too.
func (t staleTx) WriteLayouts(ctx context.Context, ws []dsync.LayoutWrite) error {
	t.s.tries.Add(1)
	return fmt.Errorf("lost: %w", dsync.ErrStale)
}

// TestPipeline_EndlessContentionGivesUp: an edit that loses every compare-and-swap is
// tried a bounded number of times, then fails unavailable with nothing written.
func TestPipeline_EndlessContentionGivesUp(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	f := newFixture(t, st, 0)
	stale := &staleStore{Store: st}
	svc := dsync.NewService(stale, dsync.Options{})
	_, _, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}})
	de := wantCode(t, err, dsync.CodeUnavailable)
	if !errors.Is(de, dsync.ErrStale) {
		t.Errorf("error %v, want the lost compare-and-swap as its cause", err)
	}
	if n := stale.tries.Load(); n < 2 || n > 1000 {
		t.Errorf("%d tries, want a few and a bound", n)
	}
	if l, _ := svc.Layout(ctx, "alice", f.layout.ID); l.Version != 1 {
		t.Errorf("version %d after giving up, want 1", l.Version)
	}
	// A cancelled request stops trying at once.
	stale.tries.Store(0)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = svc.EditLayout(cctx, "alice", f.layout.ID, dsync.Edit{Base: 1, Ops: []dsync.Op{rep("/name", "x")}})
	if err == nil || stale.tries.Load() > 1 {
		t.Errorf("cancelled: %v after %d tries, want an error after at most one", err, stale.tries.Load())
	}
}

// TestPipeline_DefaultRetentionKeepsHistory: a service with no retention set keeps
// every version of a short history.
func TestPipeline_DefaultRetentionKeepsHistory(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	f := newFixture(t, st, 0)
	svc := dsync.NewService(st, dsync.Options{})
	for v := int64(1); v <= 5; v++ {
		if _, _, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: v, Ops: []dsync.Op{rep("/name", fmt.Sprint("n", v))}}); err != nil {
			t.Fatal(err)
		}
	}
	hist, _, err := svc.History(ctx, "alice", f.layout.ID, 0, 100)
	if err != nil || len(hist) != 6 || hist[5].Version != 1 {
		t.Fatalf("history of 6 versions: %d entries, %v", len(hist), err)
	}
	if l, _, err := svc.Restore(ctx, "alice", f.layout.ID, 1, "alice"); err != nil || l.Name != "Ops" {
		t.Fatalf("restore of v1: %+v, %v", l, err)
	}
}

// onSQLite runs fn on SQLite alone, in parallel with other tests: for behaviour of the
// service that does not depend on the store (backends runs both).
func onSQLite(t *testing.T, fn func(t *testing.T, open func(t testing.TB) dsync.Store)) {
	t.Parallel()
	fn(t, openSQLite)
}

// TestPipeline_FarBehindConflictsFoundBeforeAndAfterARaceAreAllReported: an edit far
// behind is checked outside the transaction, then against what committed since; the
// conflicts of both checks are reported together, one per op naming the latest
// version, even when the versions committed in between overlap nothing.
func TestPipeline_FarBehindConflictsFoundBeforeAndAfterARaceAreAllReported(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		race func(w1x string) []dsync.Op // committed between the two checks
		want func(w1x string) []dsync.Conflict
	}{
		{"the race overlaps nothing", func(string) []dsync.Op { return []dsync.Op{rep("/columns", 24)} },
			func(w1x string) []dsync.Conflict {
				return []dsync.Conflict{{Op: 1, Path: w1x, Version: 6, Reason: dsync.ReasonOverlap}}
			}},
		{"the race overlaps another op and the same", func(w1x string) []dsync.Op { return []dsync.Op{rep("/name", "raced"), rep(w1x, 5)} },
			func(w1x string) []dsync.Conflict {
				return []dsync.Conflict{{Op: 1, Path: w1x, Version: 32, Reason: dsync.ReasonOverlap},
					{Op: 2, Path: "/name", Version: 32, Reason: dsync.ReasonOverlap}}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &racer{Store: openSQLite(t)}
			f := newFixture(t, r, 0)
			id := f.layout.ID
			w1x, w1y, w2x := "/items/"+f.w1+"/x", "/items/"+f.w1+"/y", "/items/"+f.w2+"/x"
			for i := range 30 { // versions 2…31; version 6 moves w1 in x, the others in y
				op := rep(w1y, i+1)
				if i == 4 {
					op = rep(w1x, 4)
				}
				if _, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: int64(i + 1), Ops: []dsync.Op{op}}); err != nil {
					t.Fatal(err)
				}
			}
			race := c.race(w1x)
			r.race = func() {
				if _, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 31, Ops: race}); err != nil {
					t.Error(err)
				}
			}
			_, _, err := f.svc.EditLayout(ctx, "alice", id, dsync.Edit{Base: 1, Ops: []dsync.Op{rep(w2x, 1), rep(w1x, 1), rep("/name", "mine")}})
			de := conflictOf(t, err)
			want := c.want(w1x)
			if fmt.Sprint(de.Conflicts) != fmt.Sprint(want) || de.Version != 32 {
				t.Fatalf("conflicts %+v at v%d, want %+v at v32", de.Conflicts, de.Version, want)
			}
			if l, _ := f.svc.Layout(ctx, "alice", id); l.Version != 32 || l.Name == "mine" {
				t.Fatalf("the conflicting edit committed: %+v", l)
			}
		})
	}
}
