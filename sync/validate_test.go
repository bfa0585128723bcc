package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// wantField checks that err is a *dsync.Error with code on field ("" for nil).
func wantField(t *testing.T, what string, err error, code dsync.Code, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("%s: got %v, want it accepted", what, err)
		}
		return
	}
	de, ok := err.(*dsync.Error)
	if !ok || de.Code != code || len(de.Details) == 0 || de.Details[0].Field != field {
		t.Errorf("%s: got %v, want %s on %s", what, err, code, field)
	}
}

// settingsOfSize returns settings with one key whose size, as ValidateLayout counts
// it (the braces, then per key its bytes, its value's and 4), is n.
func settingsOfSize(n int) dsync.Settings {
	v := `"` + strings.Repeat("x", n-2-1-4-2) + `"`
	return dsync.Settings{"k": json.RawMessage(v)}
}

// TestValidateLayout_EveryBoundIsInclusive: each bound of SPEC §2 takes its limit and
// refuses one past it, on the field that broke it.
func TestValidateLayout_EveryBoundIsInclusive(t *testing.T) {
	t.Parallel()
	ok := func() dsync.Layout {
		return dsync.Layout{Name: "Ops", Columns: 12, Items: map[string]dsync.Item{"w1": {X: 0, Y: 0, W: 6, H: 4}}}
	}
	items := func(n int) map[string]dsync.Item {
		m := map[string]dsync.Item{}
		for i := range n {
			m[fmt.Sprintf("w%03d", i)] = dsync.Item{X: 0, Y: i, W: 1, H: 1}
		}
		return m
	}
	cases := []struct {
		name  string
		edit  func(*dsync.Layout)
		code  dsync.Code
		field string
	}{
		{"a name of 100 runes", func(l *dsync.Layout) { l.Name = strings.Repeat("é", 100) }, "", ""},
		{"a name of 101 runes", func(l *dsync.Layout) { l.Name = strings.Repeat("é", 101) }, dsync.CodeValidation, "name"},
		{"a name of one rune", func(l *dsync.Layout) { l.Name = "x" }, "", ""},
		{"a name with NUL", func(l *dsync.Layout) { l.Name = "a\x00" }, dsync.CodeValidation, "name"},
		{"one column", func(l *dsync.Layout) { l.Columns = 1; l.Items = map[string]dsync.Item{"w1": {W: 1, H: 1}} }, "", ""},
		{"48 columns", func(l *dsync.Layout) { l.Columns = 48 }, "", ""},
		{"200 items", func(l *dsync.Layout) { l.Items = items(200) }, "", ""},
		{"201 items", func(l *dsync.Layout) { l.Items = items(201) }, dsync.CodeValidation, "items"},
		{"an item to the last column", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 6, Y: 0, W: 6, H: 1} }, "", ""},
		{"an item one past the last column", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 7, Y: 0, W: 6, H: 1} }, dsync.CodeValidation, "items.w1.w"},
		{"an item at the last column", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 11, Y: 0, W: 1, H: 1} }, "", ""},
		{"an item at x 0", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 0, Y: 0, W: 12, H: 1} }, "", ""},
		{"y 0", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 0, Y: 0, W: 1, H: 1} }, "", ""},
		{"y -1", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 0, Y: -1, W: 1, H: 1} }, dsync.CodeValidation, "items.w1.y"},
		{"y 10000", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 0, Y: 10000, W: 1, H: 1} }, "", ""},
		{"h 100", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 0, Y: 0, W: 1, H: 100} }, "", ""},
		{"w 1, h 1", func(l *dsync.Layout) { l.Items["w1"] = dsync.Item{X: 0, Y: 0, W: 1, H: 1} }, "", ""},
		{"an empty item key", func(l *dsync.Layout) { l.Items[""] = dsync.Item{W: 1, H: 1} }, dsync.CodeValidation, "items"},
		{"an item key of 64 bytes", func(l *dsync.Layout) { l.Items[strings.Repeat("k", 64)] = dsync.Item{Y: 5, W: 1, H: 1} }, "", ""},
		{"an item key of 65 bytes", func(l *dsync.Layout) { l.Items[strings.Repeat("k", 65)] = dsync.Item{Y: 5, W: 1, H: 1} }, dsync.CodeValidation, "items"},
		{"an item key with NUL", func(l *dsync.Layout) { l.Items["k\x00"] = dsync.Item{Y: 5, W: 1, H: 1} }, dsync.CodeValidation, "items"},
		{"settings of 16 KiB", func(l *dsync.Layout) { l.Settings = settingsOfSize(dsync.MaxSettingsSize) }, "", ""},
		{"settings one byte past 16 KiB", func(l *dsync.Layout) { l.Settings = settingsOfSize(dsync.MaxSettingsSize + 1) }, dsync.CodeTooLarge, "settings"},
		{"many small settings past 16 KiB", func(l *dsync.Layout) {
			l.Settings = dsync.Settings{}
			for i := range 1000 { // 1000 × (4 + 10 + 4) bytes
				l.Settings[fmt.Sprintf("k%03d", i)] = json.RawMessage(`"12345678"`)
			}
		}, dsync.CodeTooLarge, "settings"},
		{"a settings key with NUL", func(l *dsync.Layout) { l.Settings = dsync.Settings{"a\x00": json.RawMessage(`1`)} }, dsync.CodeValidation, "settings"},
		{"a settings value with an escaped NUL", func(l *dsync.Layout) { l.Settings = dsync.Settings{"a": json.RawMessage(`"\u0000"`)} }, dsync.CodeValidation, "settings"},
	}
	for _, c := range cases {
		l := ok()
		c.edit(&l)
		wantField(t, c.name, dsync.ValidateLayout(l), c.code, c.field)
	}
	// With x past the grid, the error names x and its bound, not w.
	l := ok()
	l.Items["w1"] = dsync.Item{X: 12, Y: 0, W: 1, H: 1}
	if de, _ := dsync.ValidateLayout(l).(*dsync.Error); de == nil || de.Details[0].Param != "11" || de.Message != "items.w1.x must be at most 11" {
		t.Errorf("x past the grid: %v, want items.w1.x at most 11", de)
	}
	// With room for one column left, the error names w and its bound 1.
	l = ok()
	l.Items["w1"] = dsync.Item{X: 11, Y: 0, W: 2, H: 1}
	if de, _ := dsync.ValidateLayout(l).(*dsync.Error); de == nil || de.Details[0].Field != "items.w1.w" || de.Details[0].Param != "1" {
		t.Errorf("w past the grid at the last column: %v, want items.w1.w at most 1", de)
	}
	// The first error, by item key, is the one reported.
	l = ok()
	l.Items = map[string]dsync.Item{"b": {X: 0, Y: -1, W: 1, H: 1}, "a": {X: 0, Y: 0, W: 0, H: 1}, "c": {X: -1, W: 1, H: 1}}
	for range 5 {
		wantField(t, "two bad items", dsync.ValidateLayout(l), dsync.CodeValidation, "items.a.w")
	}
}

// TestValidateWidget_EveryBoundIsInclusive: the same for a widget's definition.
func TestValidateWidget_EveryBoundIsInclusive(t *testing.T) {
	t.Parallel()
	ok := func() dsync.Widget {
		return dsync.Widget{Type: "stat", Title: "t", Source: dsync.Source{Kind: "http", URL: "https://example.com/x",
			RefreshSeconds: 60, TTLSeconds: 3600}}
	}
	cases := []struct {
		name  string
		edit  func(*dsync.Widget)
		code  dsync.Code
		field string
	}{
		{"the usual", func(*dsync.Widget) {}, "", ""},
		{"a type of 32", func(w *dsync.Widget) { w.Type = strings.Repeat("a", 32) }, "", ""},
		{"a type of 33", func(w *dsync.Widget) { w.Type = strings.Repeat("a", 33) }, dsync.CodeValidation, "type"},
		{"an upper-case type", func(w *dsync.Widget) { w.Type = "Stat" }, dsync.CodeValidation, "type"},
		{"no type", func(w *dsync.Widget) { w.Type = "" }, dsync.CodeValidation, "type"},
		{"a title of 200 runes", func(w *dsync.Widget) { w.Title = strings.Repeat("é", 200) }, "", ""},
		{"a title of 201 runes", func(w *dsync.Widget) { w.Title = strings.Repeat("é", 201) }, dsync.CodeValidation, "title"},
		{"no title", func(w *dsync.Widget) { w.Title = "" }, "", ""},
		{"a title with NUL", func(w *dsync.Widget) { w.Title = "a\x00" }, dsync.CodeValidation, "title"},
		{"no kind", func(w *dsync.Widget) { w.Source.Kind = "" }, dsync.CodeValidation, "source.kind"},
		{"a kind with NUL", func(w *dsync.Widget) { w.Source.Kind = "a\x00" }, dsync.CodeValidation, "source.kind"},
		{"refresh 1", func(w *dsync.Widget) { w.Source.RefreshSeconds = 1 }, "", ""},
		{"refresh 0", func(w *dsync.Widget) { w.Source.RefreshSeconds = 0 }, dsync.CodeValidation, "source.refreshSeconds"},
		{"ttl 1", func(w *dsync.Widget) { w.Source.TTLSeconds = 1 }, "", ""},
		{"ttl 0", func(w *dsync.Widget) { w.Source.TTLSeconds = 0 }, dsync.CodeValidation, "source.ttlSeconds"},
		{"a url with NUL", func(w *dsync.Widget) { w.Source.URL = "https://a\x00" }, dsync.CodeValidation, "source.url"},
		{"an ftp url", func(w *dsync.Widget) { w.Source.URL = "ftp://example.com/x" }, dsync.CodeValidation, "source.url"},
		{"an http url", func(w *dsync.Widget) { w.Source.URL = "http://example.com/x" }, "", ""},
		{"a url without host", func(w *dsync.Widget) { w.Source.URL = "https:///x" }, dsync.CodeValidation, "source.url"},
		{"a url that does not parse", func(w *dsync.Widget) { w.Source.URL = "https://a b/%zz" }, dsync.CodeValidation, "source.url"},
		{"no url", func(w *dsync.Widget) { w.Source.URL = "" }, "", ""},
		{"data with an escaped NUL", func(w *dsync.Widget) { w.Source.Data = json.RawMessage(`"\u0000"`) }, dsync.CodeValidation, "source.data"},
		{"data of 256 KiB", func(w *dsync.Widget) {
			w.Source.Data = json.RawMessage(`"` + strings.Repeat("x", dsync.MaxDataSize-2) + `"`)
		}, "", ""},
		{"data one byte past 256 KiB", func(w *dsync.Widget) {
			w.Source.Data = json.RawMessage(`"` + strings.Repeat("x", dsync.MaxDataSize-1) + `"`)
		}, dsync.CodeTooLarge, "source.data"},
		{"settings of 16 KiB", func(w *dsync.Widget) { w.Settings = settingsOfSize(dsync.MaxSettingsSize) }, "", ""},
		{"settings past 16 KiB", func(w *dsync.Widget) { w.Settings = settingsOfSize(dsync.MaxSettingsSize + 1) }, dsync.CodeTooLarge, "settings"},
	}
	for _, c := range cases {
		w := ok()
		c.edit(&w)
		wantField(t, c.name, dsync.ValidateWidget(w), c.code, c.field)
	}
}

// TestBasicSources: static needs its data, push needs nothing, any other kind is
// unknown.
func TestBasicSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var b dsync.BasicSources
	wantField(t, "static with data", b.CheckSource(ctx, dsync.Source{Kind: "static", Data: json.RawMessage(`1`)}), "", "")
	wantField(t, "static without data", b.CheckSource(ctx, dsync.Source{Kind: "static"}), dsync.CodeValidation, "source.data")
	wantField(t, "push", b.CheckSource(ctx, dsync.Source{Kind: "push"}), "", "")
	wantField(t, "http", b.CheckSource(ctx, dsync.Source{Kind: "http", URL: "https://example.com"}), dsync.CodeValidation, "source.kind")
}
