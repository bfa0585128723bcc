package sync_test

import (
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
