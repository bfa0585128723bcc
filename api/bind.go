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
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

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
