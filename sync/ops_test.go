package sync

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestOverlap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b string
		want bool
	}{
		{"/items/a", "/items/a/x", true},
		{"/items/a/x", "/items/a", true},
		{"/items/a/x", "/items/a/x", true},
		{"/items/a/x", "/items/a/y", false},
		{"/items/a/x", "/items/b/x", false},
		{"/items/a", "/items/ab", false},
		{"/settings", "/settings/theme", true},
		{"/name", "/columns", false},
	}
	for _, c := range cases {
		if got := Overlap(c.a, c.b); got != c.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestParsePath_Escapes(t *testing.T) {
	t.Parallel()
	segs, err := ParsePath("/settings/a~1b~0c")
	if err != nil || len(segs) != 2 || segs[1] != "a/b~c" {
		t.Fatalf("got %q, %v; want [settings a/b~c]", segs, err)
	}
	if got := PathOf("settings", "a/b~c"); got != "/settings/a~1b~0c" {
		t.Fatalf("PathOf: got %q", got)
	}
	for _, bad := range []string{"", "name", "/a~2", "/a~"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q): got no error", bad)
		}
	}
}

func base() Layout {
	return Layout{ID: "l1", Name: "Ops", Columns: 12, Version: 3,
		Items:    map[string]Item{"w1": {0, 0, 6, 4}, "w2": {6, 0, 6, 4}},
		Settings: Settings{"theme": json.RawMessage(`"dark"`)}}
}

func op(o, path, value string) Op {
	var v json.RawMessage
	if value != "" {
		v = json.RawMessage(value)
	}
	return Op{Op: o, Path: path, Value: v}
}

func TestApplyLayoutOps(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		ops     []Op
		check   func(Layout) bool
		wantErr bool
	}{
		{"replace item field", []Op{op("replace", "/items/w1/x", "2")}, func(l Layout) bool { return l.Items["w1"].X == 2 }, false},
		{"add item", []Op{op("add", "/items/w3", `{"x":0,"y":4,"w":3,"h":2}`)}, func(l Layout) bool { return l.Items["w3"] == Item{0, 4, 3, 2} }, false},
		{"add replaces existing item", []Op{op("add", "/items/w1", `{"x":1,"y":1,"w":1,"h":1}`)}, func(l Layout) bool { return l.Items["w1"] == Item{1, 1, 1, 1} }, false},
		{"remove item", []Op{op("remove", "/items/w2", "")}, func(l Layout) bool { _, ok := l.Items["w2"]; return !ok }, false},
		{"rename", []Op{op("replace", "/name", `"New"`)}, func(l Layout) bool { return l.Name == "New" }, false},
		{"settings key canonical", []Op{op("add", "/settings/grid", `{ "b":1, "a":2 }`)}, func(l Layout) bool { return string(l.Settings["grid"]) == `{"a":2,"b":1}` }, false},
		{"remove settings key", []Op{op("remove", "/settings/theme", "")}, func(l Layout) bool { return len(l.Settings) == 0 }, false},
		{"replace missing item", []Op{op("replace", "/items/nope", `{"x":0,"y":0,"w":1,"h":1}`)}, nil, true},
		{"replace field of missing item", []Op{op("replace", "/items/nope/x", "1")}, nil, true},
		{"add field of missing item", []Op{op("add", "/items/nope/x", "1")}, nil, true},
		{"remove missing item", []Op{op("remove", "/items/nope", "")}, nil, true},
		{"replace missing settings key", []Op{op("replace", "/settings/nope", "1")}, nil, true},
		{"unknown item field", []Op{op("replace", "/items/w1/z", "1")}, nil, true},
		{"item with extra field", []Op{op("add", "/items/w3", `{"x":0,"y":0,"w":1,"h":1,"z":2}`)}, nil, true},
		{"item missing a field", []Op{op("add", "/items/w3", `{"x":0,"y":0,"w":1}`)}, nil, true},
		{"non-integer", []Op{op("replace", "/items/w1/x", "1.5")}, nil, true},
		{"string for int", []Op{op("replace", "/columns", `"12"`)}, nil, true},
		{"move op", []Op{op("move", "/name", "")}, nil, true},
		{"path outside", []Op{op("replace", "/id", `"x"`)}, nil, true},
		{"isDefault from a client", []Op{op("replace", "/isDefault", "true")}, nil, true},
		{"remove name", []Op{op("remove", "/name", "")}, nil, true},
		{"add without value", []Op{{Op: "add", Path: "/name"}}, nil, true},
		{"remove with value", []Op{op("remove", "/items/w1", "1")}, nil, true},
		{"settings not an object", []Op{op("replace", "/settings", "[1]")}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := base()
			got, err := ApplyLayoutOps(in, c.ops, false)
			if c.wantErr {
				if ErrorCode(err) != CodeValidation {
					t.Fatalf("got err %v, want validation_failed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(got) {
				t.Fatalf("result %+v does not hold", got)
			}
			if !SameLayoutDoc(in, base()) {
				t.Fatalf("input was modified: %+v", in)
			}
		})
	}
}

func TestValidateLayout(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edit  func(*Layout)
		field string
	}{
		{"ok", func(*Layout) {}, ""},
		{"w past columns", func(l *Layout) { l.Items["w1"] = Item{6, 0, 7, 1} }, "items.w1.w"},
		{"x past columns", func(l *Layout) { l.Items["w1"] = Item{12, 0, 1, 1} }, "items.w1.x"},
		{"negative x", func(l *Layout) { l.Items["w1"] = Item{-1, 0, 1, 1} }, "items.w1.x"},
		{"zero w", func(l *Layout) { l.Items["w1"] = Item{0, 0, 0, 1} }, "items.w1.w"},
		{"y too big", func(l *Layout) { l.Items["w1"] = Item{0, 10001, 1, 1} }, "items.w1.y"},
		{"h too big", func(l *Layout) { l.Items["w1"] = Item{0, 0, 1, 101} }, "items.w1.h"},
		{"zero h", func(l *Layout) { l.Items["w1"] = Item{0, 0, 1, 0} }, "items.w1.h"},
		{"columns 0", func(l *Layout) { l.Columns = 0; l.Items = nil }, "columns"},
		{"columns 49", func(l *Layout) { l.Columns = 49 }, "columns"},
		{"empty name", func(l *Layout) { l.Name = "" }, "name"},
		{"long name", func(l *Layout) { l.Name = string(make([]byte, 101)) }, "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := base().Clone()
			c.edit(&l)
			err := ValidateLayout(l)
			if c.field == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Code != CodeValidation || len(e.Details) == 0 || e.Details[0].Field != c.field {
				t.Fatalf("got %v, want validation_failed on %s", err, c.field)
			}
		})
	}
	l := base()
	l.Items["w1"] = Item{6, 0, 7, 1}
	if got := ValidateLayout(l).(*Error).Message; got != "items.w1.w must be at most 6" {
		t.Fatalf("message: got %q", got)
	}
}

func TestDiffLayout_RoundTrip(t *testing.T) {
	t.Parallel()
	a := base()
	b := base().Clone()
	b.Name = "Renamed"
	b.Items["w1"] = Item{1, 2, 3, 4}
	delete(b.Items, "w2")
	b.Items["w3"] = Item{0, 9, 1, 1}
	b.Settings["k/~"] = json.RawMessage(`1`)
	delete(b.Settings, "theme")
	ops := DiffLayout(a, b)
	got, err := ApplyLayoutOps(a, ops, false)
	if err != nil {
		t.Fatal(err)
	}
	if !SameLayoutDoc(got, b) {
		t.Fatalf("applying the diff: got %+v, want %+v", got, b)
	}
	want := []string{"/name", "/items/w1/x", "/items/w1/y", "/items/w1/w", "/items/w2", "/items/w3", "/settings/k~1~0", "/settings/theme"}
	if len(ops) != len(want) {
		t.Fatalf("ops %v, want paths %v", ops, want)
	}
	for i, p := range want {
		if ops[i].Path != p {
			t.Errorf("op %d path %q, want %q", i, ops[i].Path, p)
		}
	}
}

func TestOverlaps_NamesLatestVersion(t *testing.T) {
	t.Parallel()
	since := []Change{
		{Version: 4, Ops: []Op{op("replace", "/items/w1/x", "1")}},
		{Version: 5, Ops: []Op{op("remove", "/items/w1", "")}},
		{Version: 6, Ops: []Op{op("replace", "/name", `"x"`)}},
	}
	got := Overlaps([]Op{op("replace", "/items/w1/y", "1"), op("replace", "/items/w1/x", "2"), op("replace", "/items/w2/x", "2")}, since)
	want := []Conflict{{Op: 0, Path: "/items/w1/y", Version: 5, Reason: ReasonOverlap}, {Op: 1, Path: "/items/w1/x", Version: 5, Reason: ReasonOverlap}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestMergePatch(t *testing.T) {
	t.Parallel()
	cur := json.RawMessage(`{"a":{"b":1,"c":2},"d":3}`)
	got, err := applyPreferences(cur, json.RawMessage(`{"a":{"b":null,"e":4},"d":null,"f":[1]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"a":{"c":2,"e":4},"f":[1]}` {
		t.Fatalf("got %s", got)
	}
}

// TestOverlaps_IndexAgreesWithPairs: the indexed check (large edits far behind) finds
// exactly what comparing every pair finds.
func TestOverlaps_IndexAgreesWithPairs(t *testing.T) {
	paths := []string{"/name", "/columns", "/settings", "/settings/a", "/settings/a~1b", "/items/a", "/items/a/x",
		"/items/a/y", "/items/b", "/items/b/x", "/items/ab", "/items/a/x/deeper", "", "/", "//", "/items/"}
	var since []Change
	for v := 0; v < 40; v++ {
		var ops []Op
		for i := 0; i < 3; i++ {
			ops = append(ops, Op{Op: OpReplace, Path: paths[(v*7+i*5)%len(paths)]})
		}
		since = append(since, Change{Version: int64(v + 2), Ops: ops})
	}
	var edit []Op
	for _, p := range paths {
		edit = append(edit, Op{Op: OpReplace, Path: p})
	}
	for k := 1; k <= len(since); k++ {
		want, got := overlapsDirect(edit, since[:k]), Overlaps(edit, since[:k])
		if len(edit)*3*k <= smallOverlap {
			x := newPathIndex(since[:k])
			got = nil
			for i, op := range edit {
				if v, ok := x.touches(op.Path); ok {
					got = append(got, Conflict{Op: i, Path: op.Path, Version: v, Reason: ReasonOverlap})
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%d versions: index %v, pairs %v", k, got, want)
		}
	}
}
