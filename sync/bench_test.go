package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// BenchmarkRule_CheckAndApply measures the CPU part of one rebased edit (SPEC §3): the
// overlap check against the 10 versions committed since its base, applying its ops to
// a 50-item layout, and validating the result. The store round trips are not in it.
func BenchmarkRule_CheckAndApply(b *testing.B) {
	l := dsync.Layout{ID: "l1", Name: "Ops overview", Columns: 12, Version: 30,
		Items:    map[string]dsync.Item{},
		Settings: dsync.Settings{"theme": json.RawMessage(`"dark"`), "refresh": json.RawMessage(`30`)}}
	for i := range 50 {
		l.Items[fmt.Sprintf("w%02d", i)] = dsync.Item{X: i % 2 * 6, Y: i / 2 * 4, W: 6, H: 4}
	}
	// Versions 21…30, each a drag of one of the first ten items by another tab.
	since := make([]dsync.Change, 10)
	for i := range since {
		id := fmt.Sprintf("w%02d", i)
		since[i] = dsync.Change{Version: int64(21 + i), Author: "alice", Client: "c-other", Ops: []dsync.Op{
			{Op: dsync.OpReplace, Path: dsync.PathOf("items", id, "x"), Value: json.RawMessage(`0`)},
			{Op: dsync.OpReplace, Path: dsync.PathOf("items", id, "y"), Value: json.RawMessage(`40`)},
		}}
	}
	// The edit, based on version 20: a resize of another item and a setting. It
	// overlaps none of them, so it is rebased: every step runs.
	ops := []dsync.Op{
		{Op: dsync.OpReplace, Path: "/items/w40/x", Value: json.RawMessage(`3`)},
		{Op: dsync.OpReplace, Path: "/items/w40/w", Value: json.RawMessage(`9`)},
		{Op: dsync.OpReplace, Path: "/items/w41/h", Value: json.RawMessage(`6`)},
		{Op: dsync.OpAdd, Path: "/settings/density", Value: json.RawMessage(`"compact"`)},
	}
	b.ReportAllocs()
	for b.Loop() {
		if cs := dsync.Overlaps(ops, since); len(cs) != 0 {
			b.Fatalf("conflicts %+v, want none", cs)
		}
		next, err := dsync.ApplyLayoutOps(l, ops, false)
		if err != nil {
			b.Fatal(err)
		}
		if err := dsync.ValidateLayout(next); err != nil {
			b.Fatal(err)
		}
	}
}

// farBehind returns 1,000 versions of 500 ops each (moves of 500 settings keys) and an
// edit of 500 ops on other paths: the worst case of the overlap check of SPEC §12,
// which still finds no overlap, so every op is looked up.
func farBehind() ([]dsync.Change, []dsync.Op) {
	since := make([]dsync.Change, 1000)
	for v := range since {
		ops := make([]dsync.Op, 500)
		for i := range ops {
			ops[i] = dsync.Op{Op: dsync.OpReplace, Path: dsync.PathOf("items", fmt.Sprintf("w%03d", i%200), "xywh"[i%4:i%4+1]), Value: json.RawMessage(`1`)}
		}
		since[v] = dsync.Change{Version: int64(v + 2), Ops: ops}
	}
	edit := make([]dsync.Op, 500)
	for i := range edit {
		edit[i] = dsync.Op{Op: dsync.OpAdd, Path: dsync.PathOf("settings", fmt.Sprintf("k%03d", i)), Value: json.RawMessage(`1`)}
	}
	return since, edit
}

// BenchmarkOverlap_500OpsBehind1000VersionsOf500 is the overlap check of an edit of 500
// ops whose base is 1,000 versions of 500 ops behind (SPEC §12: linear in both).
func BenchmarkOverlap_500OpsBehind1000VersionsOf500(b *testing.B) {
	since, ops := farBehind()
	b.ReportAllocs()
	for b.Loop() {
		if cs := dsync.Overlaps(ops, since); len(cs) != 0 {
			b.Fatalf("conflicts %+v, want none", cs)
		}
	}
}

// BenchmarkEdit_OneOpBehind1000Versions is a whole one-op edit whose base is 1,000
// versions of 500 ops behind the head, through the service on the embedded store:
// the check reads those versions outside the write transaction, then commits.
func BenchmarkEdit_OneOpBehind1000Versions(b *testing.B) {
	ctx := context.Background()
	svc := dsync.NewService(openSQLite(b), dsync.Options{Retention: 1 << 30})
	l, err := svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("far")}, Author: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	head := l.Version
	commit := func(ops []dsync.Op) {
		_, res, err := svc.EditLayout(ctx, "alice", l.ID, dsync.Edit{Base: head, Ops: ops, Author: "alice"})
		if err != nil {
			b.Fatal(err)
		}
		head = res.Version
	}
	for v := range 1000 {
		ops := make([]dsync.Op, 500)
		for i := range ops {
			ops[i] = dsync.Op{Op: dsync.OpAdd, Path: dsync.PathOf("settings", fmt.Sprintf("k%d", i%8)), Value: json.RawMessage(fmt.Sprint(v))}
		}
		commit(ops)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// A key of its own per edit, so that none overlaps the edits before it; run
		// with -benchtime of at most about 1000x (the settings would fill up).
		_, res, err := svc.EditLayout(ctx, "alice", l.ID, dsync.Edit{Base: head - 1000, Author: "alice",
			Ops: []dsync.Op{{Op: dsync.OpAdd, Path: fmt.Sprintf("/settings/b%d", i), Value: json.RawMessage(`1`)}}})
		if err != nil || !res.Rebased {
			b.Fatalf("got %+v, %v; want a rebased commit", res, err)
		}
		head = res.Version
	}
}
