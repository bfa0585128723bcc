package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	dsync "github.com/dashsync/dashsync/sync"
)

// base is the suite's clock origin; at(ms) counts from it so orderings are exact.
var base = time.Date(2024, 2, 29, 12, 34, 56, 789_000_000, time.UTC)

func at(ms int) dsync.Time { return dsync.NewTime(base.Add(time.Duration(ms) * time.Millisecond)) }

// newID returns a fresh id; every case uses its own, so stores may share a database.
func newID(kind string) string { return kind + "-" + strings.ToLower(rand.Text()) }

// settingsSample holds values whose bytes encoding/json would change (HTML escapes,
// number forms, escapes), and keys that need escaping in JSON Pointer.
func settingsSample() dsync.Settings {
	return dsync.Settings{
		"theme":  json.RawMessage(`"dark"`),
		"html":   json.RawMessage(`"<b>&amp;</b> & <i>"`),
		"nested": json.RawMessage(`{"a":[1,2.50,"é"],"b":null,"c":{"d":true}}`),
		"number": json.RawMessage(`1e3`),
		"escape": json.RawMessage(`"\u2028 \"q\" \\ \/"`),
		"a/b~c":  json.RawMessage(`false`),
		"ключ":   json.RawMessage(`[]`),
	}
}

func newLayout(owner string) dsync.Layout {
	return dsync.Layout{
		ID:      newID("layout"),
		Owner:   owner,
		Name:    "Ops overview",
		Columns: 12,
		Items: map[string]dsync.Item{
			"w1": {X: 0, Y: 0, W: 6, H: 4},
			"w2": {X: 6, Y: 10000, W: 6, H: 100},
		},
		Settings:  settingsSample(),
		Version:   1,
		CreatedAt: at(0),
		UpdatedAt: at(1),
	}
}

func newWidget(owner string) dsync.Widget {
	return dsync.Widget{
		ID:    newID("widget"),
		Owner: owner,
		Type:  "timeseries",
		Title: "CPU <busy>",
		Source: dsync.Source{
			Kind:           "static",
			URL:            "https://example.com/cpu?a=1&b=2",
			RefreshSeconds: 30,
			TTLSeconds:     3600,
			// Not canonical on purpose: spaces, key order, number form must survive.
			Data: json.RawMessage(`{ "b": [1, 2, {"c": "<&>"}], "a": 1.50 }`),
		},
		Settings:  settingsSample(),
		Version:   1,
		CreatedAt: at(0),
		UpdatedAt: at(1),
	}
}

// docOf returns v as JSON with a space inserted, so the suite sees whether the doc
// snapshot is stored as given.
func docOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return append(json.RawMessage(`{ "doc": `), append(b, '}')...)
}

// changeFor returns the change that records obj at version, with one op on key.
func changeFor(obj any, version int64, key string, t dsync.Time) dsync.Change {
	return dsync.Change{
		Version: version,
		Ops: []dsync.Op{
			{Op: dsync.OpReplace, Path: dsync.PathOf("settings", key), Value: json.RawMessage(fmt.Sprintf(`{"v":%d,"html":"<&>"}`, version))},
			{Op: dsync.OpRemove, Path: "/settings/gone"},
		},
		Author: "alice",
		Client: "c-7f3a",
		EditID: uuid.NewString(),
		Time:   t,
		Doc:    docOf(obj),
	}
}

// nextLayout returns l at the next version with settings[key] set, and its change.
func nextLayout(l dsync.Layout, key string) (dsync.Layout, dsync.Change) {
	n := l.Clone()
	n.Version++
	n.Settings[key] = json.RawMessage(fmt.Sprintf(`{"v":%d,"html":"<&>"}`, n.Version))
	n.UpdatedAt = at(int(n.Version) * 1000)
	return n, changeFor(n, n.Version, key, n.UpdatedAt)
}

// nextWidget is nextLayout for a widget.
func nextWidget(w dsync.Widget, key string) (dsync.Widget, dsync.Change) {
	n := w.Clone()
	n.Version++
	n.Settings[key] = json.RawMessage(fmt.Sprintf(`{"v":%d,"html":"<&>"}`, n.Version))
	n.UpdatedAt = at(int(n.Version) * 1000)
	return n, changeFor(n, n.Version, key, n.UpdatedAt)
}

// createLayout commits l at version 1 and returns its first change.
func createLayout(t testing.TB, s dsync.Store, l dsync.Layout) dsync.Change {
	t.Helper()
	c := changeFor(l, 1, "created", l.CreatedAt)
	c.Ops = []dsync.Op{{Op: dsync.OpAdd, Path: "/name", Value: json.RawMessage(`"` + l.Name + `"`)}}
	if err := s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.CreateLayout(t.Context(), l, c) }); err != nil {
		t.Fatalf("create layout %s: %v", l.ID, err)
	}
	return c
}

// createWidget commits w at version 1 and returns its first change.
func createWidget(t testing.TB, s dsync.Store, w dsync.Widget) dsync.Change {
	t.Helper()
	c := changeFor(w, 1, "created", w.CreatedAt)
	if err := s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.CreateWidget(t.Context(), w, c) }); err != nil {
		t.Fatalf("create widget %s: %v", w.ID, err)
	}
	return c
}

// layoutWithVersions creates a layout and commits versions 2..n; it returns the head
// and all n changes in version order.
func layoutWithVersions(t testing.TB, s dsync.Store, owner string, n int) (dsync.Layout, []dsync.Change) {
	t.Helper()
	l := newLayout(owner)
	changes := []dsync.Change{createLayout(t, s, l)}
	for range n - 1 {
		var c dsync.Change
		l, c = nextLayout(l, "k")
		updateLayout(t, s, l, c)
		changes = append(changes, c)
	}
	return l, changes
}

func updateLayout(t testing.TB, s dsync.Store, l dsync.Layout, c dsync.Change) {
	t.Helper()
	if err := s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.UpdateLayout(t.Context(), l, c) }); err != nil {
		t.Fatalf("update layout %s to version %d: %v", l.ID, l.Version, err)
	}
}

func updateWidget(t testing.TB, s dsync.Store, w dsync.Widget, c dsync.Change) {
	t.Helper()
	if err := s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.UpdateWidget(t.Context(), w, c) }); err != nil {
		t.Fatalf("update widget %s to version %d: %v", w.ID, w.Version, err)
	}
}

func wantCode(t testing.TB, what string, err error, code dsync.Code) {
	t.Helper()
	if got := dsync.ErrorCode(err); got != code {
		t.Errorf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

func wantIs(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func mustGetLayout(t testing.TB, r dsync.Reader, owner, id string) dsync.Layout {
	t.Helper()
	l, err := r.Layout(t.Context(), owner, id)
	if err != nil {
		t.Fatalf("read layout %s: %v", id, err)
	}
	return l
}

func mustGetWidget(t testing.TB, r dsync.Reader, owner, id string) dsync.Widget {
	t.Helper()
	w, err := r.Widget(t.Context(), owner, id)
	if err != nil {
		t.Fatalf("read widget %s: %v", id, err)
	}
	return w
}

func mustLayoutChanges(t testing.TB, r dsync.Reader, id string, after, upTo int64) []dsync.Change {
	t.Helper()
	cs, err := r.LayoutChanges(t.Context(), id, after, upTo)
	if err != nil {
		t.Fatalf("layout changes of %s (%d, %d]: %v", id, after, upTo, err)
	}
	return cs
}

func versionsOf(cs []dsync.Change) []int64 {
	v := make([]int64, 0, len(cs))
	for _, c := range cs {
		v = append(v, c.Version)
	}
	return v
}

func seq(from, to int64) []int64 {
	v := []int64{}
	for i := from; i <= to; i++ {
		v = append(v, i)
	}
	return v
}

func wantVersions(t testing.TB, what string, cs []dsync.Change, want []int64) {
	t.Helper()
	if got := versionsOf(cs); !slices.Equal(got, want) {
		t.Errorf("%s: got versions %v, want %v", what, got, want)
	}
}

// checkTime fails unless got is want exactly, in UTC.
func checkTime(t testing.TB, what string, got, want dsync.Time) {
	t.Helper()
	if !got.Equal(want.Time) || got.Location() != time.UTC {
		t.Errorf("%s: got %s (%s), want %s UTC", what, got.Format(time.RFC3339Nano), got.Location(), want.Format(time.RFC3339Nano))
	}
}

func checkSettings(t testing.TB, what string, got, want dsync.Settings) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil map, want an empty one at least", what)
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s[%q]: missing, want %s", what, k, want[k])
		case !bytes.Equal(g, want[k]):
			t.Errorf("%s[%q]: got bytes %q, want %q", what, k, g, want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s[%q]: got %s, want no such key", what, k, got[k])
		}
	}
}

func checkRaw(t testing.TB, what string, got, want json.RawMessage) {
	t.Helper()
	if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
		t.Errorf("%s: got bytes %q (nil %t), want %q (nil %t)", what, got, got == nil, want, want == nil)
	}
}

func checkLayout(t testing.TB, got, want dsync.Layout) {
	t.Helper()
	if got.ID != want.ID || got.Owner != want.Owner || got.Name != want.Name || got.IsDefault != want.IsDefault ||
		got.Columns != want.Columns || got.Version != want.Version {
		t.Errorf("layout: got {id %s owner %s name %q default %t columns %d version %d}, want {id %s owner %s name %q default %t columns %d version %d}",
			got.ID, got.Owner, got.Name, got.IsDefault, got.Columns, got.Version,
			want.ID, want.Owner, want.Name, want.IsDefault, want.Columns, want.Version)
	}
	wantItems := want.Items
	if wantItems == nil {
		wantItems = map[string]dsync.Item{}
	}
	if got.Items == nil || !reflect.DeepEqual(got.Items, wantItems) {
		t.Errorf("layout %s items: got %v (nil %t), want %v", want.ID, got.Items, got.Items == nil, wantItems)
	}
	checkSettings(t, "layout "+want.ID+" settings", got.Settings, want.Settings)
	checkTime(t, "layout "+want.ID+" createdAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "layout "+want.ID+" updatedAt", got.UpdatedAt, want.UpdatedAt)
}

func checkWidget(t testing.TB, got, want dsync.Widget) {
	t.Helper()
	if got.ID != want.ID || got.Owner != want.Owner || got.Type != want.Type || got.Title != want.Title ||
		got.Version != want.Version {
		t.Errorf("widget: got {id %s owner %s type %s title %q version %d}, want {id %s owner %s type %s title %q version %d}",
			got.ID, got.Owner, got.Type, got.Title, got.Version, want.ID, want.Owner, want.Type, want.Title, want.Version)
	}
	gs, ws := got.Source, want.Source
	if gs.Kind != ws.Kind || gs.URL != ws.URL || gs.RefreshSeconds != ws.RefreshSeconds || gs.TTLSeconds != ws.TTLSeconds {
		t.Errorf("widget %s source: got {%s %s %d %d}, want {%s %s %d %d}", want.ID,
			gs.Kind, gs.URL, gs.RefreshSeconds, gs.TTLSeconds, ws.Kind, ws.URL, ws.RefreshSeconds, ws.TTLSeconds)
	}
	checkRaw(t, "widget "+want.ID+" source data", gs.Data, ws.Data)
	checkSettings(t, "widget "+want.ID+" settings", got.Settings, want.Settings)
	checkTime(t, "widget "+want.ID+" createdAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "widget "+want.ID+" updatedAt", got.UpdatedAt, want.UpdatedAt)
}

func checkChange(t testing.TB, got, want dsync.Change) {
	t.Helper()
	what := fmt.Sprintf("change %d", want.Version)
	if got.Version != want.Version || got.Author != want.Author || got.Client != want.Client ||
		got.EditID != want.EditID || got.Rebased != want.Rebased {
		t.Errorf("%s: got {version %d author %q client %q editId %q rebased %t}, want {version %d author %q client %q editId %q rebased %t}",
			what, got.Version, got.Author, got.Client, got.EditID, got.Rebased,
			want.Version, want.Author, want.Client, want.EditID, want.Rebased)
	}
	if (got.RestoredFrom == nil) != (want.RestoredFrom == nil) ||
		(got.RestoredFrom != nil && *got.RestoredFrom != *want.RestoredFrom) {
		t.Errorf("%s restoredFrom: got %s, want %s", what, ptr(got.RestoredFrom), ptr(want.RestoredFrom))
	}
	if len(got.Ops) != len(want.Ops) || (got.Ops == nil) != (want.Ops == nil) {
		t.Errorf("%s ops: got %d ops (nil %t), want %d (nil %t)", what, len(got.Ops), got.Ops == nil, len(want.Ops), want.Ops == nil)
	} else {
		for i := range want.Ops {
			g, w := got.Ops[i], want.Ops[i]
			if g.Op != w.Op || g.Path != w.Path || !bytes.Equal(g.Value, w.Value) {
				t.Errorf("%s op %d: got {%s %s %q}, want {%s %s %q}", what, i, g.Op, g.Path, g.Value, w.Op, w.Path, w.Value)
			}
		}
	}
	checkRaw(t, what+" doc", got.Doc, want.Doc)
	checkTime(t, what+" time", got.Time, want.Time)
}

func checkChanges(t testing.TB, got, want []dsync.Change) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("changes: got versions %v, want %v", versionsOf(got), versionsOf(want))
		return
	}
	for i := range want {
		checkChange(t, got[i], want[i])
	}
}

func ptr(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}
