package storekit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// ErrClosed is the cause carried by the unavailable error of a closed store.
var ErrClosed = errors.New("store is closed")

// Closed returns the error of any call on a closed store.
func Closed() error { return dsync.Unavailable(ErrClosed) }

// CommitUnknown returns the error of a commit whose answer never came (SPEC §12): an
// unavailable error with an unknown outcome that is dsync.ErrOutcomeUnknown for
// errors.Is, and also dsync.ErrTxEnded when ended says the store saw the transaction
// end (so a fresh read shows whether it committed).
func CommitUnknown(cause error, ended bool) error {
	err := fmt.Errorf("%w: %w", dsync.ErrOutcomeUnknown, cause)
	if ended {
		err = fmt.Errorf("%w (%w)", err, dsync.ErrTxEnded)
	}
	return &dsync.Error{Code: dsync.CodeUnavailable, Outcome: dsync.OutcomeUnknown, Err: err,
		Message: "the store failed while committing and the outcome is not known; resending with the same editId is safe"}
}

// NotFound returns the not_found error for a missing (or another owner's) object.
func NotFound(kind string) error {
	return &dsync.Error{Code: dsync.CodeNotFound, Message: kind + " not found"}
}

// Stale returns the error of a lost compare-and-swap: a version_conflict that is
// dsync.ErrStale for errors.Is. cause, if not nil, is kept in the message for logs.
func Stale(kind string, cause error) error {
	err := dsync.ErrStale
	if cause != nil {
		err = fmt.Errorf("%w (%v)", dsync.ErrStale, cause)
	}
	return &dsync.Error{Code: dsync.CodeVersionConflict, Message: "the " + kind + " changed concurrently", Err: err}
}

// DuplicateEdit returns the error of a change whose editId is already in the op log:
// a version_conflict that is dsync.ErrDuplicateEdit for errors.Is.
func DuplicateEdit(kind string, cause error) error {
	err := dsync.ErrDuplicateEdit
	if cause != nil {
		err = fmt.Errorf("%w (%v)", dsync.ErrDuplicateEdit, cause)
	}
	return &dsync.Error{Code: dsync.CodeVersionConflict, Message: "the edit is already committed on this " + kind, Err: err}
}

// CheckCreate checks the versions CreateLayout and CreateWidget are given: an object
// is created at version 1 with its first change.
func CheckCreate(kind string, version int64, c dsync.Change) error {
	if version != 1 || c.Version != 1 {
		return fmt.Errorf("create %s: version %d with change version %d, want both 1", kind, version, c.Version)
	}
	return nil
}

// CheckUpdate checks the versions UpdateLayout and UpdateWidget are given: the new
// version is at least 2 and the change carries it.
func CheckUpdate(kind string, version int64, c dsync.Change) error {
	if version < 2 || c.Version != version {
		return fmt.Errorf("update %s: version %d with change version %d, want equal and at least 2", kind, version, c.Version)
	}
	return nil
}

// CheckLayoutWrite checks one entry of WriteLayouts: its changes lead, one version at
// a time, from From to the layout's version.
func CheckLayoutWrite(w dsync.LayoutWrite) error {
	n := len(w.Changes)
	if n == 0 || w.Changes[0].Version != w.From+1 || w.Changes[n-1].Version != w.Layout.Version || w.Layout.Version != w.From+int64(n) {
		return fmt.Errorf("write layout %s: %d changes do not lead from version %d to %d", w.Layout.ID, n, w.From, w.Layout.Version)
	}
	return nil
}

// EncodeChange is the ops and doc columns of an op-log row (doc nil: NULL).
func EncodeChange(c dsync.Change) (ops string, doc any, err error) {
	if ops, err = EncodeOps(c.Ops); err != nil {
		return "", nil, err
	}
	if doc, err = NullableJSON("change doc", c.Doc); err != nil {
		return "", nil, err
	}
	return ops, doc, nil
}

// CheckDashboard checks the version PutDashboard is given: at least 1.
func CheckDashboard(d dsync.Dashboard) error {
	if d.Version < 1 {
		return fmt.Errorf("put dashboard: version %d, want at least 1", d.Version)
	}
	return nil
}

// CheckAccess checks what PutAccess is given: a version of at least 1, and members
// that are viewers or editors (an owner or an unknown role in an access list would
// grant what SPEC §10 does not).
func CheckAccess(a dsync.Access) error {
	if a.Version < 1 {
		return fmt.Errorf("put access of layout %s: version %d, want at least 1", a.LayoutID, a.Version)
	}
	for _, u := range slices.Sorted(maps.Keys(a.Users)) {
		if r := a.Users[u]; r != dsync.RoleViewer && r != dsync.RoleEditor {
			return fmt.Errorf("put access of layout %s: user %q has role %q, want %q or %q",
				a.LayoutID, u, r, dsync.RoleViewer, dsync.RoleEditor)
		}
	}
	return nil
}

// Members returns an access list's members sorted by user id, and their roles.
func Members(users map[string]dsync.Role) (ids, roles []string) {
	ids = slices.Sorted(maps.Keys(users))
	roles = make([]string, len(ids))
	for i, u := range ids {
		roles[i] = string(users[u])
	}
	return ids, roles
}

// UnixMilli returns t as the integer milliseconds SQLite stores.
func UnixMilli(t dsync.Time) int64 { return t.UTC().Truncate(time.Millisecond).UnixMilli() }

// FromUnixMilli is the inverse of UnixMilli.
func FromUnixMilli(ms int64) dsync.Time { return dsync.NewTime(time.UnixMilli(ms)) }

// EncodeSettings returns s as a JSON object whose values are s's bytes, unchanged.
// (encoding/json would compact them and escape <, > and &.) A nil map is {}.
func EncodeSettings(s dsync.Settings) (string, error) {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		v := s[k]
		if !json.Valid(v) {
			return "", fmt.Errorf("settings %q: value is not one JSON value", k)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return "", err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String(), nil
}

// DecodeSettings is the inverse of EncodeSettings; it never returns a nil map.
func DecodeSettings(b []byte) (dsync.Settings, error) {
	s := dsync.Settings{}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode settings: %w", err)
	}
	if s == nil { // the text was null
		s = dsync.Settings{}
	}
	return s, nil
}

// EncodeItems returns items as a JSON object; a nil map is {}.
func EncodeItems(items map[string]dsync.Item) (string, error) {
	if items == nil {
		return "{}", nil
	}
	b, err := json.Marshal(items)
	if err != nil {
		return "", fmt.Errorf("encode items: %w", err)
	}
	return string(b), nil
}

// DecodeItems is the inverse of EncodeItems; it never returns a nil map.
func DecodeItems(b []byte) (map[string]dsync.Item, error) {
	items := map[string]dsync.Item{}
	if err := json.Unmarshal(b, &items); err != nil {
		return nil, fmt.Errorf("decode items: %w", err)
	}
	if items == nil {
		items = map[string]dsync.Item{}
	}
	return items, nil
}

// EncodeOps returns ops as a JSON array whose values are the ops' bytes, unchanged.
// nil is null and an empty slice [], so that both come back as they went in.
func EncodeOps(ops []dsync.Op) (string, error) {
	if ops == nil {
		return "null", nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, op := range ops {
		if i > 0 {
			b.WriteByte(',')
		}
		ob, err := json.Marshal(op.Op)
		if err != nil {
			return "", err
		}
		pb, err := json.Marshal(op.Path)
		if err != nil {
			return "", err
		}
		b.WriteString(`{"op":`)
		b.Write(ob)
		b.WriteString(`,"path":`)
		b.Write(pb)
		if len(op.Value) > 0 {
			if !json.Valid(op.Value) {
				return "", fmt.Errorf("op %d: value is not one JSON value", i)
			}
			b.WriteString(`,"value":`)
			b.Write(op.Value)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.String(), nil
}

// DecodeOps is the inverse of EncodeOps.
func DecodeOps(b []byte) ([]dsync.Op, error) {
	var ops []dsync.Op
	if err := json.Unmarshal(b, &ops); err != nil {
		return nil, fmt.Errorf("decode ops: %w", err)
	}
	return ops, nil
}

// NullableJSON returns raw as a column value: nil (SQL NULL) when empty, else its
// text, unchanged. It fails when raw is not one JSON value.
func NullableJSON(what string, raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%s is not one JSON value", what)
	}
	return string(raw), nil
}

// RawJSON returns column bytes as a json.RawMessage: nil when NULL or empty.
func RawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(bytes.Clone(b))
}

// EncodePreferences returns a dashboard's preferences as stored: {} when empty.
func EncodePreferences(p json.RawMessage) (string, error) {
	if len(p) == 0 {
		return "{}", nil
	}
	if !json.Valid(p) {
		return "", errors.New("dashboard preferences are not one JSON value")
	}
	return string(p), nil
}

// DecodePreferences returns stored preferences: {} when empty.
func DecodePreferences(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	return json.RawMessage(bytes.Clone(b))
}

// NullString returns s as a column value: nil (SQL NULL) when empty.
func NullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// NullInt64 returns p as a column value: nil (SQL NULL) when nil.
func NullInt64(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// EmptyDashboard is the dashboard of an owner who never saved one.
func EmptyDashboard(owner string) dsync.Dashboard {
	return dsync.Dashboard{Owner: owner, Preferences: json.RawMessage("{}")}
}

// DecodePaths sets c's ops to the paths of a JSON array of strings (nulls, from a
// change without ops, skipped): what a store's paths query aggregates.
func DecodePaths(c *dsync.Change, b []byte) error {
	var paths []*string
	if err := json.Unmarshal(b, &paths); err != nil {
		return fmt.Errorf("decode change paths: %w", err)
	}
	c.Ops = make([]dsync.Op, 0, len(paths))
	for _, p := range paths {
		if p != nil {
			c.Ops = append(c.Ops, dsync.Op{Path: *p})
		}
	}
	return nil
}

// pathsAbove is the size of encoded ops above which an op-log row keeps their paths
// apart: below it, reading the ops for their paths costs no more than the column.
const pathsAbove = 512

// PathsFor is the paths column of an op-log row whose ops encode as opsJSON: their
// paths (EncodePaths) when opsJSON is large, else NULL (nil), and readers take the
// paths from the ops.
func PathsFor(ops []dsync.Op, opsJSON string) any {
	if len(opsJSON) <= pathsAbove {
		return nil
	}
	return EncodePaths(ops)
}

// EncodePaths is the paths column of an op-log row: the distinct paths of ops, as a
// JSON array of strings, in the order they first appear.
func EncodePaths(ops []dsync.Op) string {
	seen := make(map[string]bool, len(ops))
	paths := make([]string, 0, len(ops))
	for _, op := range ops {
		if !seen[op.Path] {
			seen[op.Path] = true
			paths = append(paths, op.Path)
		}
	}
	b, _ := json.Marshal(paths) // strings always encode
	return string(b)
}
