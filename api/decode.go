package api

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	dsync "github.com/dashsync/dashsync/sync"
)

// DefaultMaxBodyBytes bounds request bodies (SPEC §4: 1 MiB).
const DefaultMaxBodyBytes = 1 << 20

// bind reads the request body (at most the configured size), decodes it strictly into
// dst (a pointer to a request type) and validates it. Any failure is a *dsync.Error:
// too_large over the size, bad_request for what is not well-formed JSON of the right
// shape (not JSON, an unknown field, trailing data), validation_failed for a value of
// the wrong type or one that breaks a rule.
func (s *Server) bind(c *gin.Context, dst any) error {
	return s.decode(c, dst, false)
}

// bindOptional is bind for routes whose body may be left out: an empty body leaves
// dst as it is, and is valid.
func (s *Server) bindOptional(c *gin.Context, dst any) error {
	return s.decode(c, dst, true)
}

func (s *Server) decode(c *gin.Context, dst any, mayBeEmpty bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.maxBody))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &dsync.Error{Code: dsync.CodeTooLarge,
				Message: fmt.Sprintf("the request body must be at most %d bytes", mbe.Limit),
				Details: []dsync.FieldError{{Field: "body", Rule: "max", Param: strconv.FormatInt(mbe.Limit, 10)}}}
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			// The connection's read deadline (bodyDeadline) passed: the body is too slow.
			return &dsync.Error{Code: dsync.CodeTimeout, Err: err,
				Message: fmt.Sprintf("the request body did not arrive within %s", s.bodyWait)}
		}
		return &dsync.Error{Code: dsync.CodeBadRequest, Message: "the request body could not be read", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if mayBeEmpty {
			return nil
		}
		return dsync.Errorf(dsync.CodeBadRequest, "a JSON request body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(reflect.TypeOf(dst), body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return dsync.Errorf(dsync.CodeBadRequest, "the request body has data after the JSON value")
	}
	if dsync.JSONDepth(body) > dsync.MaxJSONDepth {
		return dsync.Invalid("", "depth", strconv.Itoa(dsync.MaxJSONDepth), "the request body is nested more than %d deep", dsync.MaxJSONDepth)
	}
	if !utf8.Valid(body) {
		return dsync.Invalid("", "text", "", "the request body must be valid UTF-8")
	}
	if off := dsync.NULEscape(body); off >= 0 {
		field := pathAtOffset(body, int64(off))
		return dsync.Invalid(field, "nonul", "", "%s must not contain the NUL character (\\u0000)", cmp.Or(field, "the body"))
	}
	return s.validate(dst)
}

// decodeError turns an encoding/json error into the contract's codes.
func decodeError(root reflect.Type, body []byte, err error) error {
	if de, ok := errors.AsType[*dsync.Error](err); ok {
		return de
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return dsync.Errorf(dsync.CodeBadRequest, "the request body is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return dsync.Errorf(dsync.CodeBadRequest, "the request body is not valid JSON: it ends too early")
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := typeErrorPath(root, body, te)
		if field == "" {
			return dsync.Errorf(dsync.CodeBadRequest, "the request body must be a JSON %s", jsonKind(te.Type))
		}
		want := jsonKind(te.Type)
		return dsync.Invalid(field, "type", want, "%s must be %s %s, not %s", field, article(want), want, te.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &dsync.Error{Code: dsync.CodeBadRequest, Message: "unknown field " + name,
			Details: []dsync.FieldError{{Field: strings.Trim(name, `"`), Rule: "unknown"}}}
	}
	if _, ok := errors.AsType[*json.InvalidUnmarshalError](err); ok {
		return err // a bug of ours: internal
	}
	return &dsync.Error{Code: dsync.CodeBadRequest, Message: "the request body is not valid JSON", Err: err}
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "JSON value"
}

func article(word string) string {
	if strings.IndexByte("aeiou", word[0]) >= 0 {
		return "an"
	}
	return "a"
}

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

// newValidator returns the validator for request types. Field names in its errors are
// turned into client paths by fieldPath.
func newValidator() *validator.Validate {
	return validator.New(validator.WithRequiredStructEnabled())
}

// validate checks dst's struct tags; the failures become one validation_failed error
// whose details list every field, sorted, and whose message reads the first.
func (s *Server) validate(dst any) error {
	err := s.validator.Struct(dst)
	if err == nil {
		return nil
	}
	ves, ok := errors.AsType[validator.ValidationErrors](err)
	if !ok {
		return fmt.Errorf("validate %T: %w", dst, err)
	}
	root := reflect.TypeOf(dst)
	type failure struct {
		detail  dsync.FieldError
		message string
	}
	fs := make([]failure, 0, len(ves))
	for _, fe := range ves {
		field := fieldPath(root, fe.StructNamespace())
		fs = append(fs, failure{
			detail:  dsync.FieldError{Field: field, Rule: fe.Tag(), Param: fe.Param()},
			message: ruleMessage(field, fe),
		})
	}
	slices.SortFunc(fs, func(a, b failure) int { return strings.Compare(a.detail.Field, b.detail.Field) })
	e := &dsync.Error{Code: dsync.CodeValidation, Message: fs[0].message}
	if len(fs) > 1 {
		e.Message += fmt.Sprintf(" (and %d more)", len(fs)-1)
	}
	for _, f := range fs {
		e.Details = append(e.Details, f.detail)
	}
	return e
}

// ruleMessage says in words what a validator rule asks of field.
func ruleMessage(field string, fe validator.FieldError) string {
	p := fe.Param()
	unit := ""
	switch fe.Kind() {
	case reflect.String:
		unit = " characters"
	case reflect.Slice, reflect.Map, reflect.Array:
		unit = " entries"
	}
	switch fe.Tag() {
	case "required":
		return field + " is required"
	case "min", "gte":
		if p == "1" && unit != "" {
			return field + " must not be empty"
		}
		return fmt.Sprintf("%s must be at least %s%s", field, p, unit)
	case "max", "lte":
		return fmt.Sprintf("%s must be at most %s%s", field, p, unit)
	case "len":
		return fmt.Sprintf("%s must be exactly %s%s", field, p, unit)
	case "oneof":
		return fmt.Sprintf("%s must be one of: %s", field, strings.ReplaceAll(p, " ", ", "))
	case "uuid":
		return field + " must be a UUID"
	case "excluded_with":
		return field + " cannot be combined with the other fields"
	}
	return fmt.Sprintf("%s breaks the rule %q", field, fe.Tag())
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

// optional is a JSON field that tells "absent" from "null": Set is true when the
// field was sent, Value nil when it was null.
type optional[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON records that the field was sent.
func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// queryBool reads an optional boolean query parameter.
func queryBool(c *gin.Context, name string) (bool, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, dsync.Invalid(name, "boolean", "", "%s must be true or false", name)
	}
	return b, nil
}

// queryInt reads an optional integer query parameter of at least min.
func queryInt(c *gin.Context, name string, min int64) (int64, bool, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, dsync.Invalid(name, "integer", "", "%s must be an integer", name)
	}
	if n < min {
		return 0, false, dsync.Invalid(name, "min", strconv.FormatInt(min, 10), "%s must be at least %d", name, min)
	}
	return n, true, nil
}
