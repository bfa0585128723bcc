package sync

import (
	"encoding/json"
	"testing"
)

func widgetBase() Widget {
	return Widget{ID: "w1", Type: "stat", Title: "t", Version: 2,
		Source:   Source{Kind: "http", URL: "https://example.com/a", RefreshSeconds: 60, TTLSeconds: 3600},
		Settings: Settings{"color": json.RawMessage(`"red"`)}}
}

// TestApplyWidgetOps: every path a widget op may target, with RFC 6902's rules
// (replace and remove need their target), and the input left alone.
func TestApplyWidgetOps(t *testing.T) {
	t.Parallel()
	withData := func(w *Widget) { w.Source.Data = json.RawMessage(`{"v":1}`) }
	noURL := func(w *Widget) { w.Source.URL = "" }
	cases := []struct {
		name  string
		setup func(*Widget)
		ops   []Op
		check func(Widget) bool
	}{
		{"title", nil, []Op{op("replace", "/title", `"new"`)}, func(w Widget) bool { return w.Title == "new" && w.Type == "stat" }},
		{"type", nil, []Op{op("add", "/type", `"chart"`)}, func(w Widget) bool { return w.Type == "chart" && w.Title == "t" }},
		{"whole source", nil, []Op{op("replace", "/source", `{"kind":"push","refreshSeconds":5,"ttlSeconds":6}`)},
			func(w Widget) bool {
				s := w.Source
				return s.Kind == "push" && s.URL == "" && s.RefreshSeconds == 5 && s.TTLSeconds == 6 && s.Data == nil
			}},
		{"source kind", nil, []Op{op("replace", "/source/kind", `"feed"`)}, func(w Widget) bool { return w.Source.Kind == "feed" && w.Source.URL != "" }},
		{"replace url", nil, []Op{op("replace", "/source/url", `"https://example.com/b"`)}, func(w Widget) bool { return w.Source.URL == "https://example.com/b" }},
		{"add url", noURL, []Op{op("add", "/source/url", `"https://example.com/c"`)}, func(w Widget) bool { return w.Source.URL == "https://example.com/c" }},
		{"remove url", nil, []Op{op("remove", "/source/url", "")}, func(w Widget) bool { return w.Source.URL == "" && w.Source.Kind == "http" }},
		{"refresh", nil, []Op{op("replace", "/source/refreshSeconds", "30")}, func(w Widget) bool { return w.Source.RefreshSeconds == 30 && w.Source.TTLSeconds == 3600 }},
		{"ttl", nil, []Op{op("replace", "/source/ttlSeconds", "40")}, func(w Widget) bool { return w.Source.TTLSeconds == 40 && w.Source.RefreshSeconds == 60 }},
		{"add data, canonical", nil, []Op{op("add", "/source/data", `{ "b":1, "a":2 }`)}, func(w Widget) bool { return string(w.Source.Data) == `{"a":2,"b":1}` }},
		{"replace data", withData, []Op{op("replace", "/source/data", `[1]`)}, func(w Widget) bool { return string(w.Source.Data) == `[1]` }},
		{"remove data", withData, []Op{op("remove", "/source/data", "")}, func(w Widget) bool { return w.Source.Data == nil }},
		{"whole settings", nil, []Op{op("replace", "/settings", `{"size": 2}`)}, func(w Widget) bool { return len(w.Settings) == 1 && string(w.Settings["size"]) == "2" }},
		{"add setting", nil, []Op{op("add", "/settings/size", `2`)}, func(w Widget) bool { return len(w.Settings) == 2 }},
		{"replace setting", nil, []Op{op("replace", "/settings/color", `"blue"`)}, func(w Widget) bool { return string(w.Settings["color"]) == `"blue"` }},
		{"remove setting", nil, []Op{op("remove", "/settings/color", "")}, func(w Widget) bool { return len(w.Settings) == 0 }},
		{"ops in order", nil, []Op{op("replace", "/title", `"a"`), op("replace", "/title", `"b"`)}, func(w Widget) bool { return w.Title == "b" }},

		{"title not a string", nil, []Op{op("replace", "/title", `1`)}, nil},
		{"title null", nil, []Op{op("replace", "/title", `null`)}, nil},
		{"remove title", nil, []Op{op("remove", "/title", "")}, nil},
		{"source with an unknown field", nil, []Op{op("replace", "/source", `{"kind":"push","x":1}`)}, nil},
		{"source with trailing data", nil, []Op{op("replace", "/source", `{"kind":"push"} {}`)}, nil},
		{"remove source", nil, []Op{op("remove", "/source", "")}, nil},
		{"unknown source key", nil, []Op{op("replace", "/source/nope", `1`)}, nil},
		{"remove kind", nil, []Op{op("remove", "/source/kind", "")}, nil},
		{"remove refresh", nil, []Op{op("remove", "/source/refreshSeconds", "")}, nil},
		{"kind not a string", nil, []Op{op("replace", "/source/kind", `1`)}, nil},
		{"kind null", nil, []Op{op("replace", "/source/kind", `null`)}, nil},
		{"replace a missing url", noURL, []Op{op("replace", "/source/url", `"https://example.com/c"`)}, nil},
		{"remove a missing url", noURL, []Op{op("remove", "/source/url", "")}, nil},
		{"refresh not an integer", nil, []Op{op("replace", "/source/refreshSeconds", `"30"`)}, nil},
		{"ttl null", nil, []Op{op("replace", "/source/ttlSeconds", `null`)}, nil},
		{"replace missing data", nil, []Op{op("replace", "/source/data", `1`)}, nil},
		{"remove missing data", nil, []Op{op("remove", "/source/data", "")}, nil},
		{"data not JSON", nil, []Op{op("add", "/source/data", `{`)}, nil},
		{"settings not an object", nil, []Op{op("replace", "/settings", `[]`)}, nil},
		{"settings null", nil, []Op{op("replace", "/settings", `null`)}, nil},
		{"replace a missing setting", nil, []Op{op("replace", "/settings/nope", `1`)}, nil},
		{"remove a missing setting", nil, []Op{op("remove", "/settings/nope", "")}, nil},
		{"a setting not JSON", nil, []Op{op("add", "/settings/x", `{`)}, nil},
		{"path outside", nil, []Op{op("replace", "/id", `"x"`)}, nil},
		{"too deep", nil, []Op{op("replace", "/settings/color/x", `1`)}, nil},
		{"a good op then a bad one", nil, []Op{op("replace", "/title", `"a"`), op("remove", "/title", "")}, nil},
	}
	for _, c := range cases {
		in := widgetBase()
		if c.setup != nil {
			c.setup(&in)
		}
		before := in.Clone()
		got, err := ApplyWidgetOps(in, c.ops)
		if c.check == nil {
			if ErrorCode(err) != CodeValidation {
				t.Errorf("%s: got %v, want validation_failed", c.name, err)
			}
			if !SameWidgetDoc(got, before) {
				t.Errorf("%s: a refused edit returned %+v, want the input", c.name, got)
			}
		} else if err != nil || !c.check(got) {
			t.Errorf("%s: got %+v, %v", c.name, got, err)
		}
		if !SameWidgetDoc(in, before) {
			t.Errorf("%s: the input was modified: %+v", c.name, in)
		}
	}
}

// TestApplyLayoutOps_ValuesAndServerPaths: null is no value of any field, /isDefault
// is the server's alone and takes only a boolean, and a whole settings object replaces
// the settings in canonical form.
func TestApplyLayoutOps_ValuesAndServerPaths(t *testing.T) {
	t.Parallel()
	bad := [][]Op{
		{op("replace", "/name", `null`)},
		{op("replace", "/columns", `null`)},
		{op("replace", "/items/w1/x", `null`)},
		{op("replace", "/items/w1", `null`)},
		{op("add", "/items/w3", `{"x":0,"y":0,"w":1,"h":1} {}`)},
		{op("replace", "/settings", `null`)},
		{op("add", "/settings/k", `1 2`)},
		{op("remove", "/columns", "")},
		{op("remove", "/settings", "")},
		{op("remove", "/items/w1/x", "")},
		{op("replace", "/items", `{}`)},
		{op("replace", "/items/w1/x/y", `1`)},
		{op("replace", "", `1`)},
		{op("replace", "/name", "\"\xff\"")},
		{{Op: "replace", Path: "/settings/a\xff", Value: json.RawMessage(`1`)}},
	}
	for _, ops := range bad {
		if _, err := ApplyLayoutOps(base(), ops, true); ErrorCode(err) != CodeValidation {
			t.Errorf("%v: got %v, want validation_failed", ops, err)
		}
	}
	for _, v := range []string{`null`, `1`, `"true"`} {
		if _, err := ApplyLayoutOps(base(), []Op{op("replace", "/isDefault", v)}, true); ErrorCode(err) != CodeValidation {
			t.Errorf("isDefault %s: got %v, want validation_failed", v, err)
		}
	}
	l, err := ApplyLayoutOps(base(), []Op{op("replace", "/isDefault", `true`)}, true)
	if err != nil || !l.IsDefault {
		t.Fatalf("the server sets isDefault: %+v, %v", l, err)
	}
	if l, err = ApplyLayoutOps(l, []Op{op("replace", "/isDefault", `false`)}, true); err != nil || l.IsDefault {
		t.Fatalf("the server clears isDefault: %+v, %v", l, err)
	}
	if _, err := ApplyLayoutOps(base(), []Op{op("remove", "/isDefault", "")}, true); ErrorCode(err) != CodeValidation {
		t.Errorf("remove isDefault: %v", err)
	}
	l, err = ApplyLayoutOps(base(), []Op{op("replace", "/settings", `{"b": {"y":1, "x":2}, "a": 1.50}`)}, false)
	if err != nil || len(l.Settings) != 2 || string(l.Settings["b"]) != `{"x":2,"y":1}` || string(l.Settings["a"]) != `1.50` {
		t.Fatalf("whole settings: %v, %v", l.Settings, err)
	}
	l, err = ApplyLayoutOps(base(), []Op{op("add", "/settings/theme", `"light"`), op("replace", "/columns", `24`), op("replace", "/items/w2/h", `9`), op("replace", "/items/w2/w", `3`)}, false)
	if err != nil || string(l.Settings["theme"]) != `"light"` || l.Columns != 24 || l.Items["w2"] != (Item{6, 0, 3, 9}) {
		t.Fatalf("add over a setting, columns, item fields: %+v, %v", l, err)
	}
	// A failing op leaves the whole edit unapplied.
	in := base()
	got, err := ApplyLayoutOps(in, []Op{op("replace", "/name", `"x"`), op("remove", "/items/nope", "")}, false)
	if err == nil || got.Name != "Ops" || !SameLayoutDoc(in, base()) {
		t.Fatalf("a failing edit: %+v, %v", got, err)
	}
	if de, _ := err.(*Error); de == nil || de.Details[0].Field != "ops[1]" {
		t.Errorf("the failing op is named: %v", err)
	}
}

// TestCanonical: one JSON value, compact with sorted keys and numbers as written;
// anything else is an error.
func TestCanonical(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		` { "b" : [1, 2.50, 1e3], "a": "<&>" } `: `{"a":"<&>","b":[1,2.50,1e3]}`,
		`"x"`:                                    `"x"`,
		`12345678901234567890`:                   `12345678901234567890`,
		`null`:                                   `null`,
	} {
		if got, err := Canonical(json.RawMessage(in)); err != nil || string(got) != want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{``, `{`, `1 2`, `{"a":1}x`, `nul`} {
		if got, err := Canonical(json.RawMessage(bad)); err == nil {
			t.Errorf("Canonical(%q) = %s, want an error", bad, got)
		}
	}
	s, err := CanonicalSettings(Settings{"a": json.RawMessage(` { "z":1, "y":2 } `)})
	if err != nil || string(s["a"]) != `{"y":2,"z":1}` {
		t.Errorf("CanonicalSettings: %v, %v", s, err)
	}
	_, err = CanonicalSettings(Settings{"ok": json.RawMessage(`1`), "bad": json.RawMessage(`{`)})
	if de, _ := err.(*Error); de == nil || de.Code != CodeValidation || de.Details[0].Field != "settings.bad" {
		t.Errorf("CanonicalSettings of bad JSON: %v", err)
	}
}
