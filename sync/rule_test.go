package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/store/postgres"
	"github.com/dashsync/dashsync/store/sqlite"
	dsync "github.com/dashsync/dashsync/sync"
)

// backends runs fn once per store implementation.
func backends(t *testing.T, fn func(t *testing.T, open func(t testing.TB) dsync.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openSQLite)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, openPostgres)
	})
}

func openSQLite(t testing.TB) dsync.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dashsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openPostgres(t testing.TB) dsync.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), testpg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fixture is a service with one user's layout placing two widgets.
type fixture struct {
	svc    *dsync.Service
	store  dsync.Store
	layout dsync.Layout
	w1, w2 string
}

func newFixture(t testing.TB, st dsync.Store, retention int) fixture {
	t.Helper()
	return newFixtureWith(t, st, dsync.Options{Retention: retention})
}

// newFixtureWith is newFixture with the service's options given.
func newFixtureWith(t testing.TB, st dsync.Store, o dsync.Options) fixture {
	t.Helper()
	ctx := context.Background()
	svc := dsync.NewService(st, o)
	mk := func(title string) string {
		w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: &title,
			Source: &dsync.Source{Kind: "static", Data: json.RawMessage(`{"value":1}`)}}, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return w.ID
	}
	w1, w2 := mk("one"), mk("two")
	l, err := svc.CreateLayout(ctx, "alice", dsync.NewLayout{Author: "alice", Doc: dsync.LayoutDoc{Name: ptr("Ops"), Columns: ptr(12),
		Items: map[string]dsync.Item{w1: {X: 0, Y: 0, W: 6, H: 4}, w2: {X: 6, Y: 0, W: 6, H: 4}}}})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, store: st, layout: l, w1: w1, w2: w2}
}

func ptr[T any](v T) *T { return &v }

func rep(path string, v any) dsync.Op {
	b, _ := json.Marshal(v)
	return dsync.Op{Op: "replace", Path: path, Value: b}
}

func TestEditRule(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		type step struct {
			base    int64 // 0: the layout's first version
			ops     func(f fixture) []dsync.Op
			force   bool
			code    dsync.Code // "" = commits
			rebased bool
		}
		cases := []struct {
			name      string
			retention int
			steps     []step
			check     func(t *testing.T, f fixture, l dsync.Layout)
		}{
			{
				name: "non-overlapping edits on one base both commit, the second rebased",
				steps: []step{
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 1)} }},
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/y", 2)} }, rebased: true},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if it := l.Items[f.w1]; it.X != 1 || it.Y != 2 || l.Version != 3 {
						t.Fatalf("got %+v at v%d, want x=1 y=2 at v3", it, l.Version)
					}
				},
			},
			{
				name: "the same edits in the other order give the same document",
				steps: []step{
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/y", 2)} }},
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 1)} }, rebased: true},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if it := l.Items[f.w1]; it.X != 1 || it.Y != 2 || l.Version != 3 {
						t.Fatalf("got %+v at v%d, want x=1 y=2 at v3", it, l.Version)
					}
				},
			},
			{
				name: "overlapping edits: the second is a version_conflict",
				steps: []step{
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 1)} }},
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 5)} }, code: dsync.CodeVersionConflict},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if it := l.Items[f.w1]; it.X != 1 || l.Version != 2 {
						t.Fatalf("got %+v at v%d, want x=1 at v2", it, l.Version)
					}
				},
			},
			{
				name: "removing an item conflicts with a later move of it",
				steps: []step{
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{{Op: "remove", Path: "/items/" + f.w1}} }},
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 5)} }, code: dsync.CodeVersionConflict},
				},
			},
			{
				name: "an edit overlapping an older version than the newest after its base conflicts",
				steps: []step{
					{base: 1, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 1)} }},
					{base: 2, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w2+"/y", 3)} }},
					{base: 3, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/name", "n")} }},
					{base: 1, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 5)} }, code: dsync.CodeVersionConflict},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if it := l.Items[f.w1]; it.X != 1 || l.Version != 4 {
						t.Fatalf("got %+v at v%d, want x=1 at v4", it, l.Version)
					}
				},
			},
			{
				name: "an edit past several non-overlapping versions is rebased",
				steps: []step{
					{base: 1, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 1)} }},
					{base: 2, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w2+"/y", 3)} }},
					{base: 3, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/name", "n")} }},
					{base: 1, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/y", 5)} }, rebased: true},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if it := l.Items[f.w1]; it.X != 1 || it.Y != 5 || l.Version != 5 {
						t.Fatalf("got %+v at v%d, want x=1 y=5 at v5", it, l.Version)
					}
				},
			},
			{
				name: "force overwrites an overlapping change",
				steps: []step{
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 1)} }},
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/items/"+f.w1+"/x", 5)} }, force: true},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if it := l.Items[f.w1]; it.X != 5 || l.Version != 3 {
						t.Fatalf("got %+v at v%d, want x=5 at v3", it, l.Version)
					}
				},
			},
			{
				name:      "a base older than the log keeps is base_too_old",
				retention: 2,
				steps: []step{
					{base: 1, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/name", "a")} }},
					{base: 2, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/name", "b")} }},
					{base: 3, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/name", "c")} }},
					{base: 1, ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/columns", 24)} }, code: dsync.CodeVersionConflict},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if l.Columns != 12 || l.Name != "c" {
						t.Fatalf("got %+v, want the base_too_old edit not applied", l)
					}
				},
			},
			{
				name: "an invalid result changes nothing",
				steps: []step{
					{ops: func(f fixture) []dsync.Op {
						return []dsync.Op{rep("/name", "ok"), rep("/items/"+f.w1+"/w", 13)}
					}, code: dsync.CodeValidation},
					{ops: func(f fixture) []dsync.Op {
						return []dsync.Op{{Op: "add", Path: "/items/not-a-widget", Value: json.RawMessage(`{"x":0,"y":0,"w":1,"h":1}`)}}
					}, code: dsync.CodeValidation},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if l.Version != 1 || l.Name != "Ops" {
						t.Fatalf("got %+v, want version 1 untouched", l)
					}
				},
			},
			{
				name: "an edit that changes nothing commits nothing",
				steps: []step{
					{ops: func(f fixture) []dsync.Op { return []dsync.Op{rep("/name", "Ops")} }},
				},
				check: func(t *testing.T, f fixture, l dsync.Layout) {
					if l.Version != 1 {
						t.Fatalf("got version %d, want 1", l.Version)
					}
				},
			},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, open(t), c.retention)
				ctx := context.Background()
				for i, s := range c.steps {
					b := s.base
					if b == 0 {
						b = f.layout.Version
					}
					_, res, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: b, Ops: s.ops(f), Force: s.force, Author: "alice"})
					if got := dsync.ErrorCode(err); got != s.code {
						t.Fatalf("step %d: got code %q (%v), want %q", i, got, err, s.code)
					}
					if err == nil && res.Rebased != s.rebased {
						t.Fatalf("step %d: rebased %v, want %v", i, res.Rebased, s.rebased)
					}
					var de *dsync.Error
					if s.code == dsync.CodeVersionConflict && errors.As(err, &de) {
						if len(de.Conflicts) == 0 || de.Current == nil {
							t.Fatalf("step %d: conflict without current/conflicts: %+v", i, de)
						}
					}
				}
				l, err := f.svc.Layout(ctx, "alice", f.layout.ID)
				if err != nil {
					t.Fatal(err)
				}
				if c.check != nil {
					c.check(t, f, l)
				}
				assertLogMatches(t, f.store, l)
			})
		}
	})
}

// assertLogMatches checks the op log has no gap up to l's version and that,
// replayed from its newest checkpoint, it gives l.
func assertLogMatches(t *testing.T, st dsync.Store, l dsync.Layout) {
	t.Helper()
	cs, err := st.LayoutChanges(context.Background(), l.ID, 0, l.Version)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(cs); i++ {
		if cs[i].Version != cs[i-1].Version+1 {
			t.Fatalf("op log gap: %d then %d", cs[i-1].Version, cs[i].Version)
		}
	}
	if len(cs) == 0 || cs[len(cs)-1].Version != l.Version {
		t.Fatalf("op log does not end at version %d", l.Version)
	}
	// Replayed from its newest checkpoint, the log gives the layout.
	start := len(cs) - 1
	for start > 0 && cs[start].Doc == nil {
		start--
	}
	var last dsync.Layout
	if err := json.Unmarshal(cs[start].Doc, &last); err != nil {
		t.Fatalf("version %d: %v", cs[start].Version, err)
	}
	for _, c := range cs[start+1:] {
		var err error
		if last, err = dsync.ApplyLayoutOps(last, c.Ops, true); err != nil {
			t.Fatalf("replaying version %d: %v", c.Version, err)
		}
	}
	if !dsync.SameLayoutDoc(last, l) {
		t.Fatalf("the log replayed from version %d gives %+v, the layout is %+v", cs[start].Version, last, l)
	}
}

func TestEdit_ResentEditIDIsAppliedOnce(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		f := newFixture(t, open(t), 0)
		ctx := context.Background()
		e := dsync.Edit{Base: 1, EditID: "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e6f", Author: "alice",
			Ops: []dsync.Op{{Op: "add", Path: "/settings/n", Value: json.RawMessage(`1`)}}}
		_, first, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, e)
		if err != nil {
			t.Fatal(err)
		}
		// Another edit lands in between; the resend must not apply again.
		if _, _, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, dsync.Edit{Base: 2, Ops: []dsync.Op{rep("/name", "x")}}); err != nil {
			t.Fatal(err)
		}
		_, again, err := f.svc.EditLayout(ctx, "alice", f.layout.ID, e)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.Version != first.Version {
			t.Fatalf("resend: got %+v, want the original ack version %d", again, first.Version)
		}
		l, _ := f.svc.Layout(ctx, "alice", f.layout.ID)
		if l.Version != 3 {
			t.Fatalf("version %d, want 3", l.Version)
		}
	})
}

func TestPut_WholeDocumentsChangingDifferentFieldsOfOneItemBothCommit(t *testing.T) {
	backends(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		f := newFixture(t, open(t), 0)
		ctx := context.Background()
		doc := func(mut func(it *dsync.Item)) dsync.LayoutDoc {
			l := f.layout.Clone()
			it := l.Items[f.w1]
			mut(&it)
			l.Items[f.w1] = it
			return dsync.LayoutDoc{Name: &l.Name, Columns: &l.Columns, Items: l.Items, Settings: l.Settings}
		}
		if _, _, err := f.svc.PutLayout(ctx, "alice", f.layout.ID, 1, doc(func(it *dsync.Item) { it.X = 3 }), dsync.Edit{}); err != nil {
			t.Fatal(err)
		}
		_, res, err := f.svc.PutLayout(ctx, "alice", f.layout.ID, 1, doc(func(it *dsync.Item) { it.H = 7 }), dsync.Edit{})
		if err != nil {
			t.Fatal(err)
		}
		l, _ := f.svc.Layout(ctx, "alice", f.layout.ID)
		if it := l.Items[f.w1]; !res.Rebased || it.X != 3 || it.H != 7 {
			t.Fatalf("got %+v rebased=%v, want x=3 h=7 rebased", it, res.Rebased)
		}
		_, _, err = f.svc.PutLayout(ctx, "alice", f.layout.ID, 1, doc(func(it *dsync.Item) { it.X = 9 }), dsync.Edit{})
		if dsync.ErrorCode(err) != dsync.CodeVersionConflict {
			t.Fatalf("third PUT on the same field: got %v, want version_conflict", err)
		}
	})
}
