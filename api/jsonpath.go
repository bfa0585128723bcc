package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// typeErrorPath names the field of a type error the way clients write it
// ("items.w1.x", "layouts[0].version"). encoding/json leaves map keys and array
// indices out of its Field (and puts embedded structs in), so the path is found again
// by walking the body's tokens up to the error's offset; when that walk disagrees
// with Field (errors raised by a custom decoder carry a relative offset), Field is
// used, without the embedded structs.
func typeErrorPath(root reflect.Type, body []byte, te *json.UnmarshalTypeError) string {
	field := withoutEmbedded(root, te.Field)
	p := pathAtOffset(body, te.Offset)
	if p == "" || field == "" || !agrees(p, field) {
		return field
	}
	return p
}

// withoutEmbedded drops from an encoding/json field path the names of the embedded
// structs of root it went through.
func withoutEmbedded(root reflect.Type, field string) string {
	if field == "" {
		return ""
	}
	t := root
	var out []string
	for seg := range strings.SplitSeq(field, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() == reflect.Struct {
			if f, ok := t.FieldByName(seg); ok && f.Anonymous {
				t = f.Type
				continue
			}
			for _, f := range reflect.VisibleFields(t) {
				if !f.Anonymous && jsonName(f) == seg {
					t = f.Type
					break
				}
			}
		}
		out = append(out, seg)
	}
	return strings.Join(out, ".")
}

// agrees reports whether path p (with map keys and indices) can be encoding/json's
// field path f (struct fields only): f's segments appear in p in order, ending p.
func agrees(p, f string) bool {
	var segs []string
	for seg := range strings.SplitSeq(p, ".") {
		if i := strings.IndexByte(seg, '['); i >= 0 {
			seg = seg[:i]
		}
		segs = append(segs, seg)
	}
	want := strings.Split(f, ".")
	if segs[len(segs)-1] != want[len(want)-1] {
		return false
	}
	i := 0
	for _, s := range segs {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

type frame struct {
	object    bool
	key       string
	index     int
	expectKey bool
}

// pathAtOffset returns the path of the JSON value that ends at, or whose container
// opens at, byte offset off of body.
func pathAtOffset(body []byte, off int64) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []frame
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].expectKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		n := len(stack)
		if n > 0 && stack[n-1].object && stack[n-1].expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				advance()
				continue
			}
			stack[n-1].key, stack[n-1].expectKey = fmt.Sprint(tok), false
			continue
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:n-1]
			advance()
			continue
		}
		if dec.InputOffset() >= off {
			return formatPath(stack)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, expectKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		default:
			advance()
		}
	}
}

func formatPath(stack []frame) string {
	var b strings.Builder
	for _, f := range stack {
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			fmt.Fprintf(&b, "[%d]", f.index)
		}
	}
	return b.String()
}

// fieldPath turns a validator struct namespace ("req.Layouts[0].Items[w1].X") into the
// client's path ("layouts[0].items.w1.x"): JSON names, map keys as segments, slice
// indices in brackets, embedded structs left out. It walks root's type to tell map keys
// from slice indices.
func fieldPath(root reflect.Type, ns string) string {
	_, ns, _ = strings.Cut(ns, ".") // the root type's name
	t := root
	var b strings.Builder
	seg := func(s string) {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	for ns != "" {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if ns[0] == '[' {
			end := closingBracket(ns)
			key := ns[1:end]
			ns = strings.TrimPrefix(ns[end+1:], ".")
			switch t.Kind() {
			case reflect.Map:
				seg(key)
			default:
				b.WriteString("[" + key + "]")
			}
			if t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
				t = t.Elem()
			}
			continue
		}
		i := strings.IndexAny(ns, ".[")
		if i < 0 {
			i = len(ns)
		}
		name := ns[:i]
		ns = strings.TrimPrefix(ns[i:], ".")
		if t.Kind() != reflect.Struct {
			seg(name)
			continue
		}
		f, ok := t.FieldByName(name)
		if !ok {
			seg(name)
			continue
		}
		t = f.Type
		if f.Anonymous {
			continue
		}
		seg(jsonName(f))
	}
	return b.String()
}

// closingBracket finds the "]" ending a map key or index at the start of ns: the first
// one followed by the end, "." or "[".
func closingBracket(ns string) int {
	for i := 1; i < len(ns); i++ {
		if ns[i] == ']' && (i+1 == len(ns) || ns[i+1] == '.' || ns[i+1] == '[') {
			return i
		}
	}
	return len(ns) - 1
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" || name == "-" {
		return f.Name
	}
	return name
}
