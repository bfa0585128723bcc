package sync

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
)

// DiffLayout returns the ops that turn layout a's document (name, columns, items,
// settings) into b's, at leaf fields: /items/<id>/x for a moved item, /items/<id> for an
// added or removed one, /settings/<key> per key. Keys are visited in sorted order, so
// the same pair always gives the same ops.
func DiffLayout(a, b Layout) []Op {
	var ops []Op
	if a.Name != b.Name {
		ops = append(ops, Op{Op: OpReplace, Path: "/name", Value: jsonValue(b.Name)})
	}
	if a.Columns != b.Columns {
		ops = append(ops, Op{Op: OpReplace, Path: "/columns", Value: jsonValue(b.Columns)})
	}
	for _, id := range sortedKeys(a.Items, b.Items) {
		x, inA := a.Items[id]
		y, inB := b.Items[id]
		switch {
		case !inB:
			ops = append(ops, Op{Op: OpRemove, Path: PathOf("items", id)})
		case !inA:
			ops = append(ops, Op{Op: OpAdd, Path: PathOf("items", id), Value: jsonValue(y)})
		default:
			for _, f := range [...]struct {
				name string
				a, b int
			}{{"x", x.X, y.X}, {"y", x.Y, y.Y}, {"w", x.W, y.W}, {"h", x.H, y.H}} {
				if f.a != f.b {
					ops = append(ops, Op{Op: OpReplace, Path: PathOf("items", id, f.name), Value: jsonValue(f.b)})
				}
			}
		}
	}
	return append(ops, diffSettings(a.Settings, b.Settings)...)
}

// DiffWidget returns the ops that turn widget a's definition into b's: /title, /type,
// /source/<key> per source field, /settings/<key> per key.
func DiffWidget(a, b Widget) []Op {
	var ops []Op
	if a.Title != b.Title {
		ops = append(ops, Op{Op: OpReplace, Path: "/title", Value: jsonValue(b.Title)})
	}
	if a.Type != b.Type {
		ops = append(ops, Op{Op: OpReplace, Path: "/type", Value: jsonValue(b.Type)})
	}
	sa, sb := a.Source, b.Source
	if sa.Kind != sb.Kind {
		ops = append(ops, Op{Op: OpReplace, Path: "/source/kind", Value: jsonValue(sb.Kind)})
	}
	switch {
	case sa.URL == sb.URL:
	case sb.URL == "":
		ops = append(ops, Op{Op: OpRemove, Path: "/source/url"})
	default:
		ops = append(ops, Op{Op: OpAdd, Path: "/source/url", Value: jsonValue(sb.URL)})
	}
	if sa.RefreshSeconds != sb.RefreshSeconds {
		ops = append(ops, Op{Op: OpReplace, Path: "/source/refreshSeconds", Value: jsonValue(sb.RefreshSeconds)})
	}
	if sa.TTLSeconds != sb.TTLSeconds {
		ops = append(ops, Op{Op: OpReplace, Path: "/source/ttlSeconds", Value: jsonValue(sb.TTLSeconds)})
	}
	switch {
	case bytes.Equal(sa.Data, sb.Data):
	case len(sb.Data) == 0:
		ops = append(ops, Op{Op: OpRemove, Path: "/source/data"})
	default:
		ops = append(ops, Op{Op: OpAdd, Path: "/source/data", Value: sb.Data})
	}
	return append(ops, diffSettings(a.Settings, b.Settings)...)
}

func diffSettings(a, b Settings) []Op {
	var ops []Op
	for _, k := range sortedKeys(a, b) {
		x, inA := a[k]
		y, inB := b[k]
		switch {
		case !inB:
			ops = append(ops, Op{Op: OpRemove, Path: PathOf("settings", k)})
		case !inA:
			ops = append(ops, Op{Op: OpAdd, Path: PathOf("settings", k), Value: y})
		case !bytes.Equal(x, y):
			ops = append(ops, Op{Op: OpReplace, Path: PathOf("settings", k), Value: y})
		}
	}
	return ops
}

// SameLayoutDoc reports whether two layouts have the same document and default flag.
func SameLayoutDoc(a, b Layout) bool {
	return a.IsDefault == b.IsDefault && len(DiffLayout(a, b)) == 0
}

// SameWidgetDoc reports whether two widgets have the same definition.
func SameWidgetDoc(a, b Widget) bool { return len(DiffWidget(a, b)) == 0 }

func sortedKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func jsonValue(v any) json.RawMessage {
	switch x := v.(type) {
	case int:
		return json.RawMessage(strconv.Itoa(x))
	}
	b, _ := json.Marshal(v) // strings, items: cannot fail
	return b
}
