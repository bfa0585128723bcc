package sync_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// gatedSources accepts sources until closed, then refuses every one (a host that
// stopped resolving), counting the checks.
type gatedSources struct {
	closed atomic.Bool
	checks atomic.Int64
}

func (g *gatedSources) CheckSource(_ context.Context, src dsync.Source) error {
	g.checks.Add(1)
	if g.closed.Load() {
		return dsync.Invalid("source.url", "ssrf", "", "source.url is not allowed")
	}
	return nil
}

// TestWidgets_CreateFillsDefaultsAndChecksTheSource: a new widget needs a type and a
// source, gets the source's default periods and canonical data, and its source is
// checked.
func TestWidgets_CreateFillsDefaultsAndChecksTheSource(t *testing.T) {
	ctx := context.Background()
	g := &gatedSources{}
	rec := &recorder{}
	svc := dsync.NewService(openSQLite(t), dsync.Options{Sources: g, Announcer: rec})
	_, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Source: &dsync.Source{Kind: "push"}}, "alice")
	if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "type" {
		t.Errorf("no type: %+v", de.Details)
	}
	_, err = svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat")}, "alice")
	if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "source" {
		t.Errorf("no source: %+v", de.Details)
	}
	_, err = svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Source: &dsync.Source{Kind: "static", Data: json.RawMessage(`{`)}}, "alice")
	if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "source.data" {
		t.Errorf("bad data: %+v", de.Details)
	}
	w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("t"),
		Source: &dsync.Source{Kind: "static", Data: json.RawMessage(`{ "b": 1, "a": [ 2 ] }`)}}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if w.Version != 1 || w.Owner != "alice" || w.Source.RefreshSeconds != dsync.DefaultRefreshSeconds ||
		w.Source.TTLSeconds != dsync.DefaultTTLSeconds || string(w.Source.Data) != `{"a":[2],"b":1}` || w.Settings == nil {
		t.Errorf("created %+v", w)
	}
	if g.checks.Load() != 1 {
		t.Errorf("%d source checks on create, want 1", g.checks.Load())
	}
	kept, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"),
		Source: &dsync.Source{Kind: "push", RefreshSeconds: 5, TTLSeconds: 7}}, "alice")
	if err != nil || kept.Source.RefreshSeconds != 5 || kept.Source.TTLSeconds != 7 {
		t.Errorf("periods given: %+v, %v", kept.Source, err)
	}
	created := take(rec, func(e dsync.UserEvent) string { return string(e.Name) + " " + e.Widget.ID })
	if len(created) != 2 || created[0] != "widget.created "+w.ID {
		t.Errorf("events %v", created)
	}
	g.closed.Store(true)
	_, err = svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Source: &dsync.Source{Kind: "push"}}, "alice")
	wantCode(t, err, dsync.CodeValidation)
	_, err = svc.CreateWidget(ctx, dsync.LinkUserPrefix+"x", dsync.WidgetDoc{Type: ptr("stat"), Source: &dsync.Source{Kind: "push"}}, "x")
	wantCode(t, err, dsync.CodeForbidden)
	_, err = svc.Widgets(ctx, dsync.LinkUserPrefix+"x")
	wantCode(t, err, dsync.CodeForbidden)
	if ws, err := svc.Widgets(ctx, "alice"); err != nil || len(ws) != 2 {
		t.Errorf("alice's widgets: %d, %v", len(ws), err)
	}
}

// TestWidgets_UpdateKeepsWhatIsAbsentAndChecksOnlyAChangedSource: an update changes
// the fields it sends; a source is checked again only when its kind, URL or data
// change, so a widget whose source is no longer allowed can still be renamed.
func TestWidgets_UpdateKeepsWhatIsAbsentAndChecksOnlyAChangedSource(t *testing.T) {
	ctx := context.Background()
	g := &gatedSources{}
	svc := dsync.NewService(openSQLite(t), dsync.Options{Sources: g})
	w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("t"),
		Source:   &dsync.Source{Kind: "http", URL: "https://example.com/a", RefreshSeconds: 30},
		Settings: dsync.Settings{"color": json.RawMessage(`"red"`)}}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	g.closed.Store(true)
	w, res, err := svc.UpdateWidget(ctx, "alice", w.ID, 1, dsync.WidgetDoc{Title: ptr("renamed")}, dsync.Edit{})
	if err != nil || res.Version != 2 || w.Title != "renamed" || w.Type != "stat" || w.Source.URL != "https://example.com/a" ||
		w.Source.RefreshSeconds != 30 || string(w.Settings["color"]) != `"red"` {
		t.Fatalf("rename with the source refused: %+v, %v", w, err)
	}
	// The same source sent again (its defaults filled) is not a change.
	w, res, err = svc.UpdateWidget(ctx, "alice", w.ID, 2, dsync.WidgetDoc{Type: ptr("chart"),
		Source: &dsync.Source{Kind: "http", URL: "https://example.com/a", RefreshSeconds: 30}}, dsync.Edit{})
	if err != nil || res.Version != 3 || w.Type != "chart" || w.Source.TTLSeconds != dsync.DefaultTTLSeconds {
		t.Fatalf("same source, new type: %+v, %v", w, err)
	}
	for name, src := range map[string]dsync.Source{
		"url":  {Kind: "http", URL: "https://example.com/b", RefreshSeconds: 30},
		"kind": {Kind: "feed", URL: "https://example.com/a", RefreshSeconds: 30},
		"data": {Kind: "http", URL: "https://example.com/a", RefreshSeconds: 30, Data: json.RawMessage(`1`)},
	} {
		_, _, err := svc.UpdateWidget(ctx, "alice", w.ID, 3, dsync.WidgetDoc{Source: &src}, dsync.Edit{})
		if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Rule != "ssrf" {
			t.Errorf("a new %s: %+v, want the source refused", name, de.Details)
		}
	}
	// A changed period alone is not checked.
	w, _, err = svc.UpdateWidget(ctx, "alice", w.ID, 3, dsync.WidgetDoc{Source: &dsync.Source{Kind: "http", URL: "https://example.com/a", RefreshSeconds: 90}}, dsync.Edit{})
	if err != nil || w.Source.RefreshSeconds != 90 {
		t.Fatalf("a new period: %+v, %v", w.Source, err)
	}
	// Settings sent replace the settings; empty ones clear them.
	w, _, err = svc.UpdateWidget(ctx, "alice", w.ID, 4, dsync.WidgetDoc{Settings: dsync.Settings{}}, dsync.Edit{})
	if err != nil || len(w.Settings) != 0 || w.Version != 5 {
		t.Fatalf("cleared settings: %+v, %v", w, err)
	}
	got, err := svc.Widget(ctx, "alice", w.ID)
	if err != nil || got.Version != 5 || got.Title != "renamed" || got.Type != "chart" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	_, _, err = svc.UpdateWidget(ctx, "bob", w.ID, 5, dsync.WidgetDoc{Title: ptr("x")}, dsync.Edit{})
	wantCode(t, err, dsync.CodeNotFound)
}

// TestWidgets_RemoveTakesItOffEveryLayout: removing a widget removes its item from
// each layout that places it (a new version of each, announced), leaves other layouts
// alone, and the widget is gone.
func TestWidgets_RemoveTakesItOffEveryLayout(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	f := newFixture(t, st, 0)
	rec := &recorder{}
	svc := dsync.NewService(st, dsync.Options{Announcer: rec})
	l2, err := svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("two"),
		Items: map[string]dsync.Item{f.w1: {W: 1, H: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	l3, err := svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("three"),
		Items: map[string]dsync.Item{f.w2: {W: 1, H: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	take(rec, func(e dsync.Event) int { return 0 })
	if err := svc.RemoveWidget(ctx, "alice", f.w1, "carol"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id      string
		version int64
		items   int
	}{{f.layout.ID, 2, 1}, {l2.ID, 2, 0}, {l3.ID, 1, 1}} {
		l, err := svc.Layout(ctx, "alice", c.id)
		if err != nil || l.Version != c.version || len(l.Items) != c.items {
			t.Errorf("layout %s: v%d with %d items, %v; want v%d with %d", l.Name, l.Version, len(l.Items), err, c.version, c.items)
		}
		if _, ok := l.Items[f.w1]; ok {
			t.Errorf("layout %s still places the removed widget", l.Name)
		}
	}
	hist, _, _ := svc.History(ctx, "alice", l2.ID, 0, 1)
	if len(hist) != 1 || hist[0].Author != "carol" || len(hist[0].Ops) != 1 || hist[0].Ops[0].Op != dsync.OpRemove {
		t.Errorf("recorded %+v, want carol's removal of the item", hist)
	}
	if got := take(rec, func(e dsync.LayoutCommitted) string { return e.LayoutID }); len(got) != 2 {
		t.Errorf("%d layout commits announced, want 2", len(got))
	}
	if _, err := svc.Widget(ctx, "alice", f.w1); dsync.ErrorCode(err) != dsync.CodeNotFound {
		t.Errorf("removed widget: %v", err)
	}
	wantCode(t, svc.RemoveWidget(ctx, "alice", f.w1, "alice"), dsync.CodeNotFound)
}

// TestWidgets_ALinkReachesTheWidgetsOfItsLayoutOnly: a link reads the widgets its
// layout places, in a batch too, and nothing once revoked.
func TestWidgets_ALinkReachesTheWidgetsOfItsLayoutOnly(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	f := newFixture(t, st, 0)
	off, err := f.svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Source: &dsync.Source{Kind: "push"}}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	lk, err := f.svc.CreateLink(ctx, "alice", f.layout.ID, dsync.RoleViewer, dsync.DefaultLinkSeconds)
	if err != nil {
		t.Fatal(err)
	}
	who := dsync.LinkUserPrefix + lk.ID
	if w, r, err := f.svc.WidgetWithRole(ctx, who, f.w1); err != nil || r != dsync.RoleViewer || w.ID != f.w1 {
		t.Errorf("the link's widget: %q, %v", r, err)
	}
	rs, err := f.svc.WidgetsFor(ctx, who, []string{f.w2, off.ID, f.w1}, dsync.ActReadData)
	if err != nil || len(rs) != 3 || rs[0].Err != nil || rs[0].Widget.ID != f.w2 || dsync.ErrorCode(rs[1].Err) != dsync.CodeNotFound ||
		rs[2].Err != nil || rs[2].Widget.ID != f.w1 {
		t.Fatalf("the link's batch: %+v, %v", rs, err)
	}
	// Alice's batch reads her own widgets without any layout.
	rs, err = f.svc.WidgetsFor(ctx, "alice", []string{off.ID, f.w1, "nope"}, dsync.ActOwnWidget)
	if err != nil || rs[0].Err != nil || rs[0].Widget.ID != off.ID || rs[1].Widget.ID != f.w1 || dsync.ErrorCode(rs[2].Err) != dsync.CodeNotFound {
		t.Fatalf("alice's batch: %+v, %v", rs, err)
	}
	if err := f.svc.RevokeLink(ctx, "alice", f.layout.ID, lk.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.WidgetWithRole(ctx, who, f.w1)
	wantCode(t, err, dsync.CodeNotFound)
	rs, err = f.svc.WidgetsFor(ctx, who, []string{f.w1}, dsync.ActReadData)
	if err != nil || dsync.ErrorCode(rs[0].Err) != dsync.CodeNotFound {
		t.Fatalf("a revoked link's batch: %+v, %v", rs, err)
	}
	// A link whose layout is gone reaches nothing either.
	l2, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("two"), Items: map[string]dsync.Item{off.ID: {W: 1, H: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	lk2, err := f.svc.CreateLink(ctx, "alice", l2.ID, dsync.RoleViewer, dsync.DefaultLinkSeconds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Widget(ctx, dsync.LinkUserPrefix+lk2.ID, off.ID); err != nil {
		t.Fatalf("the second link's widget: %v", err)
	}
	if err := f.svc.DeleteLayout(ctx, "alice", l2.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Widget(ctx, dsync.LinkUserPrefix+lk2.ID, off.ID)
	wantCode(t, err, dsync.CodeNotFound)
}
