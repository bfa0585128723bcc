package sync_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestDashboard_ShowsTheCurrentElseTheDefaultLayoutAndItsWidgets: the view holds the
// current layout (one shared with the user included), else the default, and exactly
// the widgets that layout places, ordered by id.
func TestDashboard_ShowsTheCurrentElseTheDefaultLayoutAndItsWidgets(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		w3, err := f.svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("three"), Source: &dsync.Source{Kind: "push"}}, "alice")
		if err != nil {
			t.Fatal(err)
		}
		ids := func(ws []dsync.Widget) string {
			var out []string
			for _, w := range ws {
				out = append(out, w.ID)
			}
			return strings.Join(out, ",")
		}
		v, err := f.svc.Dashboard(ctx, "alice")
		if err != nil || v.Layout == nil || v.Layout.ID != f.layout.ID || v.Dashboard.CurrentLayoutID != nil {
			t.Fatalf("no current layout: %+v, %v; want the default", v, err)
		}
		if got, want := ids(v.Widgets), f.w1+","+f.w2; got != want {
			t.Errorf("widgets %s, want %s", got, want)
		}
		// A second layout, placing w3 and w1, made current.
		l2, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Author: "alice", Doc: dsync.LayoutDoc{Name: ptr("two"),
			Items: map[string]dsync.Item{w3.ID: {W: 1, H: 1}, f.w1: {Y: 1, W: 1, H: 1}}}})
		if err != nil || l2.IsDefault {
			t.Fatalf("second layout: %+v, %v", l2, err)
		}
		if v, _ := f.svc.Dashboard(ctx, "alice"); v.Layout == nil || v.Layout.ID != f.layout.ID {
			t.Errorf("a second layout that is not current: the view shows %v, want the default", v.Layout)
		}
		d, err := f.svc.UpdateDashboard(ctx, "alice", dsync.DashboardPatch{SetCurrent: true, CurrentLayoutID: &l2.ID})
		if err != nil || d.Version != 1 || d.CurrentLayoutID == nil || *d.CurrentLayoutID != l2.ID {
			t.Fatalf("set current: %+v, %v", d, err)
		}
		v, err = f.svc.Dashboard(ctx, "alice")
		if err != nil || v.Layout == nil || v.Layout.ID != l2.ID {
			t.Fatalf("current layout: %+v, %v; want l2", v.Layout, err)
		}
		if got, want := ids(v.Widgets), strings.Join(sorted(w3.ID, f.w1), ","); got != want {
			t.Errorf("widgets of l2: %s, want %s", got, want)
		}
		// Bob's dashboard shows alice's layout shared with him, and her widgets on it.
		if _, err := f.svc.UpdateAccess(ctx, "alice", l2.ID, map[string]*dsync.Role{"bob": role(dsync.RoleViewer)}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateDashboard(ctx, "bob", dsync.DashboardPatch{SetCurrent: true, CurrentLayoutID: &l2.ID}); err != nil {
			t.Fatal(err)
		}
		v, err = f.svc.Dashboard(ctx, "bob")
		if err != nil || v.Layout == nil || v.Layout.ID != l2.ID || len(v.Widgets) != 2 {
			t.Fatalf("bob's dashboard: %+v, %v; want alice's l2 and its 2 widgets", v, err)
		}
		// Once it is no longer shared, bob's dashboard shows no layout.
		if _, err := f.svc.UpdateAccess(ctx, "alice", l2.ID, map[string]*dsync.Role{"bob": nil}, nil); err != nil {
			t.Fatal(err)
		}
		v, err = f.svc.Dashboard(ctx, "bob")
		if err != nil || v.Layout != nil || len(v.Widgets) != 0 || v.Widgets == nil {
			t.Fatalf("bob's dashboard after unsharing: %+v, %v; want no layout, no widgets", v, err)
		}
		// Clearing the current layout goes back to the default.
		if d, err := f.svc.UpdateDashboard(ctx, "alice", dsync.DashboardPatch{SetCurrent: true}); err != nil || d.CurrentLayoutID != nil || d.Version != 2 {
			t.Fatalf("clear current: %+v, %v", d, err)
		}
		if v, _ := f.svc.Dashboard(ctx, "alice"); v.Layout == nil || v.Layout.ID != f.layout.ID {
			t.Errorf("after clearing: %v, want the default", v.Layout)
		}
		_, err = f.svc.Dashboard(ctx, dsync.LinkUserPrefix+"x")
		wantCode(t, err, dsync.CodeForbidden)
	})
}

func sorted(ss ...string) []string {
	out := append([]string(nil), ss...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestDashboard_Updates: preferences merge (null removes) or are replaced whole, the
// version counts real changes only and is checked when sent, the current layout must
// be one the user may read, and preferences are bounded.
func TestDashboard_Updates(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		up := func(p dsync.DashboardPatch) (dsync.Dashboard, error) { return f.svc.UpdateDashboard(ctx, "alice", p) }
		d, err := up(dsync.DashboardPatch{Preferences: json.RawMessage(`{"theme":"dark","grid":{"snap":true,"size":8}}`)})
		if err != nil || d.Version != 1 || string(d.Preferences) != `{"grid":{"size":8,"snap":true},"theme":"dark"}` {
			t.Fatalf("first preferences: %s v%d, %v", d.Preferences, d.Version, err)
		}
		d, err = up(dsync.DashboardPatch{Preferences: json.RawMessage(`{"grid":{"size":null},"lang":"fr","theme":null}`)})
		if err != nil || d.Version != 2 || string(d.Preferences) != `{"grid":{"snap":true},"lang":"fr"}` {
			t.Fatalf("merge: %s v%d, %v", d.Preferences, d.Version, err)
		}
		d, err = up(dsync.DashboardPatch{Preferences: json.RawMessage(`{"only":1}`), Replace: true})
		if err != nil || d.Version != 3 || string(d.Preferences) != `{"only":1}` {
			t.Fatalf("replace: %s v%d, %v", d.Preferences, d.Version, err)
		}
		// The same preferences again: no new version, no event.
		take(f.events, func(e dsync.UserEvent) dsync.EventName { return e.Name })
		if d, err := up(dsync.DashboardPatch{Preferences: json.RawMessage(`{ "only" : 1 }`), Replace: true}); err != nil || d.Version != 3 {
			t.Fatalf("same preferences: v%d, %v; want 3", d.Version, err)
		}
		if d, err := up(dsync.DashboardPatch{Preferences: json.RawMessage(`{"only":1}`)}); err != nil || d.Version != 3 {
			t.Fatalf("merge changing nothing: v%d, %v; want 3", d.Version, err)
		}
		if got := take(f.events, func(e dsync.UserEvent) dsync.EventName { return e.Name }); len(got) != 0 {
			t.Errorf("updates changing nothing announced %v", got)
		}
		d, err = up(dsync.DashboardPatch{Preferences: json.RawMessage(`{"two":2}`)})
		if err != nil || d.Version != 4 {
			t.Fatal(d, err)
		}
		if got := take(f.events, func(e dsync.UserEvent) string { return string(e.Name) + " " + string(e.Dashboard.Preferences) }); len(got) != 1 ||
			got[0] != `dashboard.updated {"only":1,"two":2}` {
			t.Errorf("announced %v, want one dashboard.updated with the new preferences", got)
		}
		// Version check.
		stale, cur := int64(3), int64(4)
		_, err = up(dsync.DashboardPatch{Preferences: json.RawMessage(`{"x":1}`), Version: &stale})
		de := wantCode(t, err, dsync.CodeVersionConflict)
		if c, ok := de.Current.(dsync.Dashboard); !ok || c.Version != 4 || de.Version != 4 {
			t.Errorf("stale version: current %+v v%d, want the dashboard at 4", de.Current, de.Version)
		}
		if d, err := up(dsync.DashboardPatch{Preferences: json.RawMessage(`{"x":1}`), Version: &cur}); err != nil || d.Version != 5 {
			t.Fatalf("current version: v%d, %v", d.Version, err)
		}
		// Bad preferences.
		for _, bad := range []string{`[1]`, `"s"`, `{`, `null`} {
			_, err := up(dsync.DashboardPatch{Preferences: json.RawMessage(bad)})
			if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "preferences" {
				t.Errorf("%s: %+v", bad, de.Details)
			}
		}
		big := `{"k":"` + strings.Repeat("x", dsync.MaxSettingsSize) + `"}`
		_, err = up(dsync.DashboardPatch{Preferences: json.RawMessage(big), Replace: true})
		wantCode(t, err, dsync.CodeTooLarge)
		fits := `{"k":"` + strings.Repeat("x", dsync.MaxSettingsSize-8) + `"}`
		if d, err := up(dsync.DashboardPatch{Preferences: json.RawMessage(fits), Replace: true}); err != nil || len(d.Preferences) != dsync.MaxSettingsSize {
			t.Fatalf("preferences of exactly %d bytes: %d bytes, %v", dsync.MaxSettingsSize, len(d.Preferences), err)
		}
		// The current layout must be readable by the user.
		nope := "no-such-layout"
		_, err = up(dsync.DashboardPatch{SetCurrent: true, CurrentLayoutID: &nope})
		if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "currentLayoutId" {
			t.Errorf("unknown current layout: %+v", de.Details)
		}
		_, err = f.svc.UpdateDashboard(ctx, "bob", dsync.DashboardPatch{SetCurrent: true, CurrentLayoutID: &f.layout.ID})
		wantCode(t, err, dsync.CodeValidation)
		_, err = f.svc.UpdateDashboard(ctx, dsync.LinkUserPrefix+"x", dsync.DashboardPatch{Preferences: json.RawMessage(`{}`)})
		wantCode(t, err, dsync.CodeForbidden)
		if v, _ := f.svc.Dashboard(ctx, "alice"); v.Dashboard.Version != 6 || v.Dashboard.CurrentLayoutID != nil {
			t.Errorf("after the refused updates: %+v, want version 6, no current layout", v.Dashboard)
		}
	})
}

// TestDashboard_SaveIsAtomic: a save writes the layout and the dashboard together; if
// the layout conflicts, neither is written.
func TestDashboard_SaveIsAtomic(t *testing.T) {
	onSQLite(t, func(t *testing.T, open func(testing.TB) dsync.Store) {
		ctx := context.Background()
		f := newClockFixture(t, open(t), 0)
		id := f.layout.ID
		v, res, err := f.svc.Save(ctx, "alice", dsync.SaveDashboard{LayoutID: id, Base: 1, Layout: &dsync.LayoutDoc{Name: ptr("saved")},
			Patch: dsync.DashboardPatch{Preferences: json.RawMessage(`{"a":1}`), SetCurrent: true, CurrentLayoutID: &id}}, dsync.Edit{Author: "alice"})
		if err != nil || res.Version != 2 || !res.Committed || v.Layout == nil || v.Layout.Name != "saved" || v.Dashboard.Version != 1 ||
			string(v.Dashboard.Preferences) != `{"a":1}` || len(v.Widgets) != 2 {
			t.Fatalf("save: %+v %+v, %v", v, res, err)
		}
		f.edit(t, 2, rep("/name", "elsewhere")) // v3
		_, _, err = f.svc.Save(ctx, "alice", dsync.SaveDashboard{LayoutID: id, Base: 2, Layout: &dsync.LayoutDoc{Name: ptr("mine")},
			Patch: dsync.DashboardPatch{Preferences: json.RawMessage(`{"a":2}`)}}, dsync.Edit{Author: "alice"})
		wantCode(t, err, dsync.CodeVersionConflict)
		v, err = f.svc.Dashboard(ctx, "alice")
		if err != nil || v.Layout.Name != "elsewhere" || v.Layout.Version != 3 || string(v.Dashboard.Preferences) != `{"a":1}` || v.Dashboard.Version != 1 {
			t.Fatalf("after the conflicting save: %+v, %v; nothing of it written", v, err)
		}
		// A bad dashboard patch undoes the layout part.
		_, _, err = f.svc.Save(ctx, "alice", dsync.SaveDashboard{LayoutID: id, Base: 3, Layout: &dsync.LayoutDoc{Name: ptr("mine")},
			Patch: dsync.DashboardPatch{Preferences: json.RawMessage(`[]`)}}, dsync.Edit{Author: "alice"})
		wantCode(t, err, dsync.CodeValidation)
		if l, _ := f.svc.Layout(ctx, "alice", id); l.Version != 3 {
			t.Fatalf("the layout of a refused save committed: v%d", l.Version)
		}
		// Without a layout, only the dashboard.
		v, res, err = f.svc.Save(ctx, "alice", dsync.SaveDashboard{Patch: dsync.DashboardPatch{Preferences: json.RawMessage(`{"a":3}`)}}, dsync.Edit{})
		if err != nil || res.Committed || v.Dashboard.Version != 2 || v.Layout.Version != 3 {
			t.Fatalf("dashboard-only save: %+v %+v, %v", v, res, err)
		}
		_, _, err = f.svc.Save(ctx, dsync.LinkUserPrefix+"x", dsync.SaveDashboard{}, dsync.Edit{})
		wantCode(t, err, dsync.CodeForbidden)
	})
}

// TestMergePatch_RFC7396: a merge patch sets, replaces and (with null) removes keys,
// recursively; a non-object patch replaces the target whole.
func TestMergePatch_RFC7396(t *testing.T) {
	t.Parallel()
	dec := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	} {
		got, _ := json.Marshal(dsync.MergePatch(dec(c.target), dec(c.patch)))
		if string(got) != c.want {
			t.Errorf("merge %s into %s: %s, want %s", c.patch, c.target, got, c.want)
		}
	}
	// The target is not modified.
	target := dec(`{"a":{"b":1}}`)
	dsync.MergePatch(target, dec(`{"a":{"b":null},"c":2}`))
	if got, _ := json.Marshal(target); string(got) != `{"a":{"b":1}}` {
		t.Errorf("the target became %s", got)
	}
}

// TestDashboard_SwitchingTheCurrentLayout: moving from one current layout to another
// is a new version; setting the same one again is not.
func TestDashboard_SwitchingTheCurrentLayout(t *testing.T) {
	ctx := context.Background()
	f := newClockFixture(t, openSQLite(t), 0)
	l2, err := f.svc.CreateLayout(ctx, "alice", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("two")}})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		id      string
		version int64
	}{{l2.ID, 1}, {f.layout.ID, 2}, {f.layout.ID, 2}, {l2.ID, 3}, {l2.ID, 3}} {
		id := c.id
		d, err := f.svc.UpdateDashboard(ctx, "alice", dsync.DashboardPatch{SetCurrent: true, CurrentLayoutID: &id})
		if err != nil || d.Version != c.version || d.CurrentLayoutID == nil || *d.CurrentLayoutID != id {
			t.Fatalf("step %d: %+v, %v; want version %d current %s", i, d, err, c.version, id)
		}
		if v, _ := f.svc.Dashboard(ctx, "alice"); v.Layout == nil || v.Layout.ID != id {
			t.Fatalf("step %d: the view shows %v, want %s", i, v.Layout, id)
		}
	}
}

// TestDashboard_ASharedCurrentLayoutWinsOverTheUsersDefault: a user with layouts of
// their own whose current layout is one shared with them sees the shared one.
func TestDashboard_ASharedCurrentLayoutWinsOverTheUsersDefault(t *testing.T) {
	ctx := context.Background()
	f := newClockFixture(t, openSQLite(t), 0)
	own, err := f.svc.CreateLayout(ctx, "bob", dsync.NewLayout{Doc: dsync.LayoutDoc{Name: ptr("bob's")}})
	if err != nil || !own.IsDefault {
		t.Fatalf("bob's layout: %+v, %v", own, err)
	}
	if _, err := f.svc.UpdateAccess(ctx, "alice", f.layout.ID, map[string]*dsync.Role{"bob": role(dsync.RoleEditor)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UpdateDashboard(ctx, "bob", dsync.DashboardPatch{SetCurrent: true, CurrentLayoutID: &f.layout.ID}); err != nil {
		t.Fatal(err)
	}
	v, err := f.svc.Dashboard(ctx, "bob")
	if err != nil || v.Layout == nil || v.Layout.ID != f.layout.ID || v.Layout.Owner != "alice" || len(v.Widgets) != 2 {
		t.Fatalf("bob's dashboard: %+v, %v; want alice's layout and its widgets", v.Layout, err)
	}
	if _, err := f.svc.UpdateAccess(ctx, "alice", f.layout.ID, map[string]*dsync.Role{"bob": nil}, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.svc.Dashboard(ctx, "bob"); v.Layout == nil || v.Layout.ID != own.ID || len(v.Widgets) != 0 {
		t.Fatalf("once unshared: %+v, want bob's own default", v.Layout)
	}
}
