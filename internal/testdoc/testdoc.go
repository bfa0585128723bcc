// Package testdoc is for tests: the client-side model of a layout document that a
// test's tabs keep, and a comparison of op lists.
package testdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	dsync "github.com/dashsync/dashsync/sync"
)

// Doc is a tab's client-side model of a layout: what a browser keeps and patches with
// every `op` it receives. It is written apart from the server's own apply, so that
// tests compare two implementations.
type Doc struct {
	Version  int64
	Name     string
	Columns  int
	Items    map[string]dsync.Item
	Settings map[string]string // canonical JSON by key
}

// Of is the model of a layout as the store has it.
func Of(l dsync.Layout) Doc {
	d := Doc{Version: l.Version, Name: l.Name, Columns: l.Columns, Items: maps.Clone(l.Items), Settings: map[string]string{}}
	if d.Items == nil {
		d.Items = map[string]dsync.Item{}
	}
	for k, v := range l.Settings {
		c, _ := dsync.Canonical(v)
		d.Settings[k] = string(c)
	}
	return d
}

// Clone returns a copy that shares no map with d.
func (d Doc) Clone() Doc {
	d.Items, d.Settings = maps.Clone(d.Items), maps.Clone(d.Settings)
	return d
}

// Equal reports whether d and o are the same document at the same version.
func (d Doc) Equal(o Doc) bool {
	return d.Version == o.Version && d.Name == o.Name && d.Columns == o.Columns &&
		maps.Equal(d.Items, o.Items) && maps.Equal(d.Settings, o.Settings)
}

// String is d as JSON.
func (d Doc) String() string {
	b, _ := json.Marshal(d)
	return string(b)
}

// Apply patches the model with one version's ops: the JSON Patch subset of SPEC §3
// that the tests produce (name, columns, whole items, item fields, settings keys).
func (d *Doc) Apply(ops []dsync.Op) error {
	for _, o := range ops {
		segs, err := dsync.ParsePath(o.Path)
		if err != nil {
			return err
		}
		set := o.Op == dsync.OpAdd || o.Op == dsync.OpReplace
		switch {
		case len(segs) == 1 && segs[0] == "name" && set:
			err = json.Unmarshal(o.Value, &d.Name)
		case len(segs) == 1 && segs[0] == "columns" && set:
			err = json.Unmarshal(o.Value, &d.Columns)
		case len(segs) == 2 && segs[0] == "settings" && set:
			var c json.RawMessage
			c, err = dsync.Canonical(o.Value)
			d.Settings[segs[1]] = string(c)
		case len(segs) == 2 && segs[0] == "settings" && o.Op == dsync.OpRemove:
			delete(d.Settings, segs[1])
		case len(segs) == 2 && segs[0] == "items" && o.Op == dsync.OpRemove:
			delete(d.Items, segs[1])
		case len(segs) == 2 && segs[0] == "items" && set:
			var it dsync.Item
			err = json.Unmarshal(o.Value, &it)
			d.Items[segs[1]] = it
		case len(segs) == 3 && segs[0] == "items" && set:
			it, ok := d.Items[segs[1]]
			if !ok {
				return fmt.Errorf("%s %s: no such item in the model", o.Op, o.Path)
			}
			f := map[string]*int{"x": &it.X, "y": &it.Y, "w": &it.W, "h": &it.H}[segs[2]]
			if f == nil {
				return fmt.Errorf("%s %s: unknown item field", o.Op, o.Path)
			}
			err = json.Unmarshal(o.Value, f)
			d.Items[segs[1]] = it
		default:
			return fmt.Errorf("%s %s: the test model does not apply this op", o.Op, o.Path)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.Op, o.Path, err)
		}
	}
	return nil
}

// SameOps reports whether a and b are the same ops: the same kind, path and value,
// values compared in canonical JSON.
func SameOps(a, b []dsync.Op) bool {
	return slices.EqualFunc(a, b, func(x, y dsync.Op) bool {
		if x.Op != y.Op || x.Path != y.Path || (len(x.Value) == 0) != (len(y.Value) == 0) {
			return false
		}
		if len(x.Value) == 0 {
			return true
		}
		cx, errx := dsync.Canonical(x.Value)
		cy, erry := dsync.Canonical(y.Value)
		return errx == nil && erry == nil && bytes.Equal(cx, cy)
	})
}
