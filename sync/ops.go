package sync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Op is one JSON Patch (RFC 6902) operation, restricted to add, replace and remove on
// the paths the contract allows for the object it is applied to.
type Op struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Op kinds.
const (
	OpAdd     = "add"
	OpReplace = "replace"
	OpRemove  = "remove"
)

// Bounds of one edit's ops (SPEC §12). Ops the server derives itself (a PUT's diff, a
// restore) are kept within them by coarsening (see boundedDiff).
const (
	MaxOps      = 500
	MaxOpsBytes = 64 << 10
)

// CheckOps checks an edit's ops against the bounds of SPEC §12: at most MaxOps ops
// (validation_failed) of at most MaxOpsBytes of JSON (too_large).
func CheckOps(ops []Op) error {
	if len(ops) > MaxOps {
		return Invalid("ops", "max", fmt.Sprint(MaxOps), "an edit has at most %d ops", MaxOps)
	}
	if n := opsSize(ops); n > MaxOpsBytes {
		return &Error{Code: CodeTooLarge, Message: fmt.Sprintf("an edit's ops must be at most %d bytes of JSON", MaxOpsBytes),
			Details: []FieldError{{Field: "ops", Rule: "max", Param: fmt.Sprint(MaxOpsBytes)}}}
	}
	return nil
}

// opsSize is about the size of ops encoded as JSON (never less than it, for paths and
// values without characters JSON escapes).
func opsSize(ops []Op) int {
	n := 2
	for _, op := range ops {
		n += len(`{"op":"","path":"","value":},`) + len(op.Op) + len(op.Path) + len(op.Value)
	}
	return n
}

// OpsSize is about the size of the ops of changes encoded as JSON: what bounds a
// resume or a history page (SPEC §12).
func OpsSize(cs []Change) int {
	n := 0
	for _, c := range cs {
		n += opsSize(c.Ops) + 64
	}
	return n
}

// ParsePath splits a JSON Pointer into its unescaped segments. The empty pointer (the
// whole document) is not a path any op may target.
func ParsePath(p string) ([]string, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("path %q must start with /", p)
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if strings.Contains(s, "~") {
			var b strings.Builder
			for j := 0; j < len(s); j++ {
				if s[j] != '~' {
					b.WriteByte(s[j])
					continue
				}
				if j+1 == len(s) || (s[j+1] != '0' && s[j+1] != '1') {
					return nil, fmt.Errorf("path %q has a bad ~ escape", p)
				}
				if s[j+1] == '0' {
					b.WriteByte('~')
				} else {
					b.WriteByte('/')
				}
				j++
			}
			segs[i] = b.String()
		}
	}
	return segs, nil
}

// PathOf joins segments into a JSON Pointer, escaping ~ and /.
func PathOf(segs ...string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		if strings.ContainsAny(s, "~/") {
			s = strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Overlap reports whether two paths overlap: one is a segment-wise prefix of the other.
// Paths that do not parse are compared as raw strings.
func Overlap(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	// a is the shorter: it overlaps b when b is a, or b continues a with a new segment.
	return strings.HasPrefix(b, a) && (len(a) == len(b) || b[len(a)] == '/')
}

// Overlaps checks ops against the changes committed after their base and returns one
// Conflict per op that overlaps any of them (naming the latest such version). Its cost
// is linear in the ops of the edit plus the ops of the changes (SPEC §12): the
// changes' paths and their prefixes are indexed once, and each op looks up its own
// path and its prefixes.
func Overlaps(ops []Op, since []Change) []Conflict {
	if len(ops) == 0 || len(since) == 0 {
		return nil
	}
	n := 0
	for _, c := range since {
		n += len(c.Ops)
	}
	if len(ops)*n <= smallOverlap {
		return overlapsDirect(ops, since)
	}
	x := newPathIndex(since)
	var out []Conflict
	for i, op := range ops {
		if v, ok := x.touches(op.Path); ok {
			out = append(out, Conflict{Op: i, Path: op.Path, Version: v, Reason: ReasonOverlap})
		}
	}
	return out
}

// smallOverlap is the size (edit ops × committed ops) up to which comparing every
// pair is cheaper than building an index: the usual edit, a version or two behind.
const smallOverlap = 256

// overlapsDirect is Overlaps by comparing every pair.
func overlapsDirect(ops []Op, since []Change) []Conflict {
	var out []Conflict
	for i, op := range ops {
	latest:
		for j := len(since) - 1; j >= 0; j-- {
			for _, cop := range since[j].Ops {
				if Overlap(cop.Path, op.Path) {
					out = append(out, Conflict{Op: i, Path: op.Path, Version: since[j].Version, Reason: ReasonOverlap})
					break latest
				}
			}
		}
	}
	return out
}

// pathIndex knows, for the paths written by some changes, the latest version that
// wrote each path (exact) and the latest version that wrote below each prefix of one
// (under: "/items/a" for a write of "/items/a/x"). Paths are compared as raw pointer
// strings, segment by segment, as Overlap does.
type pathIndex struct {
	exact, under map[string]int64
	depth        int // most segments of a written path
}

func newPathIndex(since []Change) pathIndex {
	x := pathIndex{exact: map[string]int64{}, under: map[string]int64{}}
	// Newest first: the first version seen writing a path (or below a prefix) is the
	// latest, and a path seen again adds nothing, so each op costs one lookup.
	for j := len(since) - 1; j >= 0; j-- {
		c := since[j]
		for _, op := range c.Ops {
			p := op.Path
			if _, seen := x.exact[p]; seen {
				continue
			}
			x.exact[p] = c.Version
			segs := 0
			for i := 0; i < len(p); i++ {
				if p[i] == '/' {
					if _, ok := x.under[p[:i]]; !ok {
						x.under[p[:i]] = c.Version
					}
					segs++
				}
			}
			x.depth = max(x.depth, segs)
		}
	}
	return x
}

// touches returns the latest version that wrote a path overlapping p.
func (x pathIndex) touches(p string) (int64, bool) {
	v := max(x.exact[p], x.under[p])
	// A written path that is a proper prefix of p has at most x.depth segments, so
	// only that many prefixes of p are looked up, however long p is.
	for i, segs := 0, 0; i < len(p) && segs <= x.depth; i++ {
		if p[i] == '/' {
			v = max(v, x.exact[p[:i]])
			segs++
		}
	}
	return v, v > 0
}

// Canonical returns v in canonical JSON form: compact, object keys sorted, numbers kept
// as written. It fails on anything that is not one JSON value.
func Canonical(v json.RawMessage) (json.RawMessage, error) {
	if JSONDepth(v) > MaxJSONDepth {
		return nil, fmt.Errorf("nested more than %d deep", MaxJSONDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(b.Bytes(), "\n")), nil
}

// decodeStrict decodes one JSON value into dst, rejecting unknown fields and trailing data.
func decodeStrict(v json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

// canonicalSettings turns a settings object value into Settings.
func canonicalSettings(v json.RawMessage) (Settings, error) {
	var m map[string]json.RawMessage
	if err := decodeStrict(v, &m); err != nil || m == nil {
		return nil, fmt.Errorf("must be a JSON object")
	}
	out := make(Settings, len(m))
	for k, raw := range m {
		c, err := Canonical(raw)
		if err != nil {
			return nil, err
		}
		out[k] = c
	}
	return out, nil
}

// CanonicalSettings is canonicalSettings for callers outside the package that decode
// a settings object themselves.
func CanonicalSettings(s Settings) (Settings, error) {
	out := make(Settings, len(s))
	for k, raw := range s {
		c, err := Canonical(raw)
		if err != nil {
			return nil, Invalid("settings."+k, "json", "", "settings.%s is not valid JSON", k)
		}
		out[k] = c
	}
	return out, nil
}

func opError(i int, op Op, format string, args ...any) *Error {
	return Invalid(fmt.Sprintf("ops[%d]", i), "op", "", "ops[%d] (%s %s): %s", i, op.Op, op.Path, fmt.Sprintf(format, args...))
}

// checkOpShape checks the parts of an op that do not depend on the document.
func checkOpShape(i int, op Op) ([]string, *Error) {
	switch op.Op {
	case OpAdd, OpReplace:
		if len(op.Value) == 0 {
			return nil, opError(i, op, "a value is required")
		}
	case OpRemove:
		if len(op.Value) != 0 {
			return nil, opError(i, op, "remove takes no value")
		}
	default:
		return nil, opError(i, op, "op must be add, replace or remove")
	}
	if !ValidText(op.Path) {
		return nil, Invalid(fmt.Sprintf("ops[%d].path", i), "text", "", "ops[%d].path must be valid UTF-8 without the NUL character", i)
	}
	if !ValidJSONText(op.Value) {
		return nil, Invalid(fmt.Sprintf("ops[%d].value", i), "text", "", "ops[%d].value must be valid UTF-8 without the NUL character", i)
	}
	segs, err := ParsePath(op.Path)
	if err != nil {
		return nil, opError(i, op, "%v", err)
	}
	return segs, nil
}

// setKey applies an add/replace/remove of one key of a settings map, following RFC 6902.
func setKey(s Settings, key string, i int, op Op) *Error {
	_, exists := s[key]
	switch op.Op {
	case OpRemove:
		if !exists {
			return opError(i, op, "no such key to remove")
		}
		delete(s, key)
		return nil
	case OpReplace:
		if !exists {
			return opError(i, op, "no such key to replace")
		}
	}
	c, err := Canonical(op.Value)
	if err != nil {
		return opError(i, op, "value is not valid JSON")
	}
	s[key] = c
	return nil
}

func intValue(i int, op Op) (int, *Error) {
	var n int
	if err := json.Unmarshal(op.Value, &n); err != nil || isNull(op.Value) {
		return 0, opError(i, op, "value must be an integer")
	}
	return n, nil
}

func stringValue(i int, op Op) (string, *Error) {
	var s string
	if err := json.Unmarshal(op.Value, &s); err != nil || isNull(op.Value) {
		return "", opError(i, op, "value must be a string")
	}
	return s, nil
}

// itemValue decodes an item: an object with exactly x, y, w and h.
func itemValue(i int, op Op) (Item, *Error) {
	var raw struct {
		X *int `json:"x"`
		Y *int `json:"y"`
		W *int `json:"w"`
		H *int `json:"h"`
	}
	if err := decodeStrict(op.Value, &raw); err != nil {
		return Item{}, opError(i, op, "value must be an object {x,y,w,h} of integers")
	}
	if raw.X == nil || raw.Y == nil || raw.W == nil || raw.H == nil {
		return Item{}, opError(i, op, "value must have x, y, w and h")
	}
	return Item{X: *raw.X, Y: *raw.Y, W: *raw.W, H: *raw.H}, nil
}

// ApplyLayoutOps applies ops to a copy of l and returns it. It checks that every op is
// allowed on a layout and follows RFC 6902 (replace and remove need their target, add
// needs its parent); it does not check bounds (see ValidateLayout). Server-only paths
// (/isDefault) are accepted only when server is true.
func ApplyLayoutOps(l Layout, ops []Op, server bool) (Layout, error) {
	out := l.Clone()
	for i, op := range ops {
		if err := applyLayoutOp(&out, i, op, server); err != nil {
			return l, err
		}
	}
	return out, nil
}

func applyLayoutOp(l *Layout, i int, op Op, server bool) *Error {
	segs, e := checkOpShape(i, op)
	if e != nil {
		return e
	}
	switch {
	case len(segs) == 1 && op.Op != OpRemove && segs[0] == "name":
		s, e := stringValue(i, op)
		if e != nil {
			return e
		}
		l.Name = s
	case len(segs) == 1 && op.Op != OpRemove && segs[0] == "columns":
		n, e := intValue(i, op)
		if e != nil {
			return e
		}
		l.Columns = n
	case len(segs) == 1 && op.Op != OpRemove && segs[0] == "isDefault" && server:
		var b bool
		if err := json.Unmarshal(op.Value, &b); err != nil || isNull(op.Value) {
			return opError(i, op, "value must be a boolean")
		}
		l.IsDefault = b
	case len(segs) == 1 && op.Op != OpRemove && segs[0] == "settings":
		s, err := canonicalSettings(op.Value)
		if err != nil {
			return opError(i, op, "value must be a JSON object")
		}
		l.Settings = s
	case len(segs) == 2 && segs[0] == "settings":
		return setKey(l.Settings, segs[1], i, op)
	case len(segs) == 2 && segs[0] == "items":
		id := segs[1]
		_, exists := l.Items[id]
		if op.Op != OpAdd && !exists {
			return opError(i, op, "no item %q on this layout", id)
		}
		if op.Op == OpRemove {
			delete(l.Items, id)
			return nil
		}
		it, e := itemValue(i, op)
		if e != nil {
			return e
		}
		l.Items[id] = it
	case len(segs) == 3 && segs[0] == "items" && op.Op != OpRemove:
		it, exists := l.Items[segs[1]]
		if !exists {
			return opError(i, op, "no item %q on this layout", segs[1])
		}
		n, e := intValue(i, op)
		if e != nil {
			return e
		}
		switch segs[2] {
		case "x":
			it.X = n
		case "y":
			it.Y = n
		case "w":
			it.W = n
		case "h":
			it.H = n
		default:
			return opError(i, op, "an item has only x, y, w and h")
		}
		l.Items[segs[1]] = it
	default:
		return opError(i, op, "path not allowed on a layout")
	}
	return nil
}

// sourceKeys are the fields of a widget source that /source/<key> may target.
var sourceKeys = map[string]bool{"kind": true, "url": true, "refreshSeconds": true, "ttlSeconds": true, "data": true}

// ApplyWidgetOps applies ops to a copy of w and returns it; see ApplyLayoutOps.
func ApplyWidgetOps(w Widget, ops []Op) (Widget, error) {
	out := w.Clone()
	for i, op := range ops {
		if err := applyWidgetOp(&out, i, op); err != nil {
			return w, err
		}
	}
	return out, nil
}

func applyWidgetOp(w *Widget, i int, op Op) *Error {
	segs, e := checkOpShape(i, op)
	if e != nil {
		return e
	}
	switch {
	case len(segs) == 1 && op.Op != OpRemove && (segs[0] == "title" || segs[0] == "type"):
		s, e := stringValue(i, op)
		if e != nil {
			return e
		}
		if segs[0] == "title" {
			w.Title = s
		} else {
			w.Type = s
		}
	case len(segs) == 1 && op.Op != OpRemove && segs[0] == "source":
		var src Source
		if err := decodeStrict(op.Value, &src); err != nil {
			return opError(i, op, "value must be a source object: %v", err)
		}
		w.Source = src
	case len(segs) == 2 && segs[0] == "source" && sourceKeys[segs[1]]:
		return setSourceKey(&w.Source, segs[1], i, op)
	case len(segs) == 1 && op.Op != OpRemove && segs[0] == "settings":
		s, err := canonicalSettings(op.Value)
		if err != nil {
			return opError(i, op, "value must be a JSON object")
		}
		w.Settings = s
	case len(segs) == 2 && segs[0] == "settings":
		return setKey(w.Settings, segs[1], i, op)
	default:
		return opError(i, op, "path not allowed on a widget")
	}
	return nil
}

func setSourceKey(s *Source, key string, i int, op Op) *Error {
	if op.Op == OpRemove {
		switch key {
		case "url":
			if s.URL == "" {
				return opError(i, op, "no such key to remove")
			}
			s.URL = ""
		case "data":
			if len(s.Data) == 0 {
				return opError(i, op, "no such key to remove")
			}
			s.Data = nil
		default:
			return opError(i, op, "source.%s cannot be removed", key)
		}
		return nil
	}
	switch key {
	case "kind", "url":
		v, e := stringValue(i, op)
		if e != nil {
			return e
		}
		if key == "kind" {
			s.Kind = v
		} else {
			if op.Op == OpReplace && s.URL == "" {
				return opError(i, op, "no such key to replace")
			}
			s.URL = v
		}
	case "refreshSeconds", "ttlSeconds":
		n, e := intValue(i, op)
		if e != nil {
			return e
		}
		if key == "refreshSeconds" {
			s.RefreshSeconds = n
		} else {
			s.TTLSeconds = n
		}
	case "data":
		if op.Op == OpReplace && len(s.Data) == 0 {
			return opError(i, op, "no such key to replace")
		}
		c, err := Canonical(op.Value)
		if err != nil {
			return opError(i, op, "value is not valid JSON")
		}
		s.Data = c
	}
	return nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }
