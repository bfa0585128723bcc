package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// anySource accepts every source: widgets with long kinds and addresses.
type anySource struct{}

func (anySource) CheckSource(context.Context, dsync.Source) error { return nil }

// TestSoleWriter_EveryPartOfADefinitionCountsTowardTheBound: the memory the cache
// counts for a definition grows with each of its parts (id, owner, type, title, source
// kind, URL and data, settings), so no part of a big widget escapes the bound; and a
// definition exactly the size of the bound is kept.
func TestSoleWriter_EveryPartOfADefinitionCountsTowardTheBound(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	idPad := ""
	n := 0
	svc := dsync.NewService(st, dsync.Options{SoleWriter: true, Sources: anySource{},
		NewID: func() string { n++; return fmt.Sprintf("w%04d%s", n, idPad) }})
	const extra = 100
	pad := strings.Repeat("p", extra)
	type def struct {
		owner, typ, title, kind, url, data string
		settings                           dsync.Settings
	}
	base := def{owner: "alice", typ: "stat", title: "t", kind: "static", url: "https://example.com/", data: `"d"`}
	// size returns how many bytes the cache counts for one new widget of d.
	size := func(d def) int {
		t.Helper()
		_, before := svc.WidgetCacheStats()
		src := &dsync.Source{Kind: d.kind, URL: d.url, Data: json.RawMessage(d.data)}
		w, err := svc.CreateWidget(ctx, d.owner, dsync.WidgetDoc{Type: &d.typ, Title: &d.title, Source: src, Settings: d.settings}, d.owner)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := svc.Widget(ctx, d.owner, w.ID); err != nil || got.Title != d.title {
			t.Fatalf("read back %+v, %v", got, err)
		}
		_, after := svc.WidgetCacheStats()
		return after - before
	}
	small := size(base)
	if small <= 0 {
		t.Fatalf("a widget counts %d bytes, want more than 0", small)
	}
	for _, c := range []struct {
		part string
		def  func(d *def)
	}{
		{"owner", func(d *def) { d.owner += pad }},
		{"type", func(d *def) { d.typ = "stat" + pad[:28] }},
		{"title", func(d *def) { d.title += pad }},
		{"kind", func(d *def) { d.kind += pad }},
		{"url", func(d *def) { d.url += pad }},
		{"data", func(d *def) { d.data = `"d` + pad + `"` }},
		{"settings", func(d *def) { d.settings = dsync.Settings{"k" + pad: json.RawMessage(`"` + pad + `"`)} }},
	} {
		d := base
		c.def(&d)
		grown := len(d.owner+d.typ+d.title+d.kind+d.url+d.data) - len(base.owner+base.typ+base.title+base.kind+base.url+base.data)
		for k, v := range d.settings {
			grown += len(k) + len(v)
		}
		if got := size(d); got < small+grown {
			t.Errorf("a widget %d bytes bigger in its %s counts %d bytes, want at least %d", grown, c.part, got, small+grown)
		}
	}
	idPad = pad
	if got := size(base); got < small+extra {
		t.Errorf("a widget with an id %d bytes longer counts %d bytes, want at least %d", extra, got, small+extra)
	}

	// A definition exactly the size of the bound is kept; one byte over, not.
	idPad = ""
	for _, c := range []struct {
		bound int
		kept  int
	}{{small, 1}, {small - 1, 0}} {
		svc = dsync.NewService(st, dsync.Options{SoleWriter: true, Sources: anySource{},
			NewID: func() string { n++; return fmt.Sprintf("w%04d", n) }})
		svc.SetWidgetCacheBytes(c.bound)
		size(base)
		if got, bytes := svc.WidgetCacheStats(); got != c.kept || bytes > c.bound {
			t.Errorf("bound %d, a widget of %d bytes: %d kept in %d bytes, want %d", c.bound, small, got, bytes, c.kept)
		}
	}
}

// TestSoleWriter_TheCountFollowsUpdates: when a cached widget changes, the cache
// counts the new definition's size, not the old one's, nor both: what it counts for a
// widget is what a fresh cache would count after reading it.
func TestSoleWriter_TheCountFollowsUpdates(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	svc := dsync.NewService(st, dsync.Options{SoleWriter: true})
	w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("t"),
		Source: &dsync.Source{Kind: "static", Data: json.RawMessage(`"small"`)}}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() int {
		t.Helper()
		other := dsync.NewService(st, dsync.Options{SoleWriter: true})
		if _, err := other.Widget(ctx, "alice", w.ID); err != nil {
			t.Fatal(err)
		}
		_, b := other.WidgetCacheStats()
		return b
	}
	for i, data := range []string{`"` + strings.Repeat("x", 5000) + `"`, `"tiny"`, `"` + strings.Repeat("y", 300) + `"`} {
		if _, _, err := svc.UpdateWidget(ctx, "alice", w.ID, int64(i+1), dsync.WidgetDoc{
			Source: &dsync.Source{Kind: "static", Data: json.RawMessage(data)}}, dsync.Edit{}); err != nil {
			t.Fatal(err)
		}
		n, bytes := svc.WidgetCacheStats()
		if want := fresh(); n != 1 || bytes != want {
			t.Errorf("after update %d: %d definitions in %d bytes, want 1 in %d", i+1, n, bytes, want)
		}
	}
}
