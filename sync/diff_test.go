package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	gosync "sync"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestDiffWidget_NamesExactlyWhatChangedAndReplaysToTheOther: each field of a widget's
// definition changed alone gives the one op that says so, and applying the diff to
// the first gives the second; equal definitions give no op.
func TestDiffWidget_NamesExactlyWhatChangedAndReplaysToTheOther(t *testing.T) {
	base := dsync.Widget{ID: "w", Owner: "alice", Type: "stat", Title: "CPU",
		Source:   dsync.Source{Kind: "http", URL: "http://127.0.0.1/x", RefreshSeconds: 60, TTLSeconds: 3600},
		Settings: dsync.Settings{"unit": json.RawMessage(`"%"`), "max": json.RawMessage(`100`)}}
	change := func(f func(w *dsync.Widget)) dsync.Widget {
		w := base.Clone()
		f(&w)
		return w
	}
	for name, c := range map[string]struct {
		to    dsync.Widget
		paths []string
	}{
		"same":            {base, nil},
		"title":           {change(func(w *dsync.Widget) { w.Title = "Load" }), []string{"/title"}},
		"type":            {change(func(w *dsync.Widget) { w.Type = "chart" }), []string{"/type"}},
		"kind":            {change(func(w *dsync.Widget) { w.Source.Kind = "push"; w.Source.URL = "" }), []string{"/source/kind", "/source/url"}},
		"url":             {change(func(w *dsync.Widget) { w.Source.URL = "http://127.0.0.1/y" }), []string{"/source/url"}},
		"refreshSeconds":  {change(func(w *dsync.Widget) { w.Source.RefreshSeconds = 5 }), []string{"/source/refreshSeconds"}},
		"ttlSeconds":      {change(func(w *dsync.Widget) { w.Source.TTLSeconds = 60 }), []string{"/source/ttlSeconds"}},
		"data added":      {change(func(w *dsync.Widget) { w.Source.Data = json.RawMessage(`{"v":1}`) }), []string{"/source/data"}},
		"setting changed": {change(func(w *dsync.Widget) { w.Settings["max"] = json.RawMessage(`200`) }), []string{"/settings/max"}},
		"setting removed": {change(func(w *dsync.Widget) { delete(w.Settings, "unit") }), []string{"/settings/unit"}},
		"setting added":   {change(func(w *dsync.Widget) { w.Settings["min"] = json.RawMessage(`0`) }), []string{"/settings/min"}},
	} {
		t.Run(name, func(t *testing.T) {
			ops := dsync.DiffWidget(base, c.to)
			var paths []string
			for _, op := range ops {
				paths = append(paths, op.Path)
			}
			if !slices.Equal(paths, c.paths) {
				t.Fatalf("DiffWidget paths = %v, want %v (ops %+v)", paths, c.paths, ops)
			}
			got, err := dsync.ApplyWidgetOps(base, ops)
			if err != nil {
				t.Fatalf("apply %+v: %v", ops, err)
			}
			if !dsync.SameWidgetDoc(got, c.to) {
				t.Errorf("apply(base, diff) = %+v, want %+v", got, c.to)
			}
			if back := dsync.DiffWidget(c.to, base); (len(back) == 0) != (len(c.paths) == 0) {
				t.Errorf("the diff back has %d ops, want none exactly when there is none forward", len(back))
			}
		})
	}
	// Data removed: the other way round.
	withData := change(func(w *dsync.Widget) { w.Source.Data = json.RawMessage(`{"v":1}`) })
	if ops := dsync.DiffWidget(withData, base); len(ops) != 1 || ops[0].Op != dsync.OpRemove || ops[0].Path != "/source/data" {
		t.Errorf("data removed: %+v, want one remove of /source/data", ops)
	}
	noURL := change(func(w *dsync.Widget) { w.Source.URL = "" })
	if ops := dsync.DiffWidget(base, noURL); len(ops) != 1 || ops[0].Op != dsync.OpRemove {
		t.Errorf("url removed: %+v, want one remove of /source/url", ops)
	}
}

// recorder is an Announcer that keeps every event it is told, in order; take returns
// those of one type announced since the last take, each as key makes it.
type recorder struct {
	mu     gosync.Mutex
	events []dsync.Event
}

func (r *recorder) Announce(_ context.Context, ev dsync.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func take[E dsync.Event, K any](r *recorder, key func(E) K) []K {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []K
	for _, ev := range r.events {
		if e, ok := ev.(E); ok {
			out = append(out, key(e))
		}
	}
	r.events = nil
	return out
}

// TestRetention_TrimsTheLogAndStillAnnouncesEveryCommit: past the retention, each
// commit trims the op log to the last retention versions and is announced as before.
func TestRetention_TrimsTheLogAndStillAnnouncesEveryCommit(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		st := open(t)
		f := newFixture(t, st, 3)
		rec := &recorder{}
		svc := dsync.NewService(st, dsync.Options{Retention: 3, Announcer: rec})
		for i := range 6 {
			if _, _, err := svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: int64(1 + i), Ops: []dsync.Op{rep("/name", fmt.Sprint("name ", i))}, Author: "alice"}); err != nil {
				t.Fatalf("edit %d: %v", i+1, err)
			}
		}
		got := take(rec, func(c dsync.LayoutCommitted) int64 { return c.Change.Version })
		if !slices.Equal(got, []int64{2, 3, 4, 5, 6, 7}) {
			t.Errorf("announced versions %v, want 2…7", got)
		}
		cs, _, err := svc.History(ctx, "alice", f.layout.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var kept []int64
		for _, c := range cs {
			kept = append(kept, c.Version)
		}
		if !slices.Equal(kept, []int64{7, 6, 5}) {
			t.Errorf("history keeps %v, want the last 3 (7, 6, 5)", kept)
		}
	})
}
