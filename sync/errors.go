package sync

import (
	"errors"
	"fmt"
)

// Code is one of the closed set of error codes of the contract (SPEC §4).
type Code string

// The error codes. wire maps each to an HTTP status, a WebSocket reply and a close
// code in one table.
const (
	CodeBadRequest      Code = "bad_request"
	CodeValidation      Code = "validation_failed"
	CodeUnauthorized    Code = "unauthorized"
	CodeForbidden       Code = "forbidden"
	CodeNotFound        Code = "not_found"
	CodeVersionConflict Code = "version_conflict"
	CodeConflict        Code = "conflict"
	CodeTooLarge        Code = "too_large"
	CodeTimeout         Code = "timeout"
	CodePrecondition    Code = "precondition_failed"
	CodeSourceFailed    Code = "source_failed"
	CodeRateLimited     Code = "rate_limited"
	CodeUnavailable     Code = "unavailable"
	CodeInternal        Code = "internal"
)

// FieldError names one field that broke a rule, as in the contract's error details.
type FieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
	Param string `json:"param,omitempty"`
}

// Conflict describes one op of an edit that overlaps a version committed after its base.
type Conflict struct {
	Op      int    `json:"op"`
	Path    string `json:"path,omitempty"`
	Version int64  `json:"version"`
	Reason  string `json:"reason"`
}

// Conflict reasons.
const (
	ReasonOverlap    = "overlap"
	ReasonBaseTooOld = "base_too_old"
)

// Error is dashsync's error value: a code from the closed set and a message that is safe
// to show to users. Conflicts carry the head version, the current object and the ops
// that collided.
type Error struct {
	Code    Code
	Message string
	Details []FieldError

	// Set for CodeVersionConflict.
	Version   int64
	Current   any
	Conflicts []Conflict

	// RetryAfterMs is set for CodeRateLimited.
	RetryAfterMs int64

	// Outcome is OutcomeUnknown for a CodeUnavailable whose commit may or may not have
	// happened (SPEC §12): a resend with the same editId is safe and tells.
	Outcome string

	// Err is the underlying cause; it is logged, never shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted user-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a validation_failed error about one field.
func Invalid(field, rule, param, format string, args ...any) *Error {
	return &Error{
		Code:    CodeValidation,
		Message: fmt.Sprintf(format, args...),
		Details: []FieldError{{Field: field, Rule: rule, Param: param}},
	}
}

// Unavailable wraps a backend failure: nothing was written.
func Unavailable(err error) *Error {
	return &Error{Code: CodeUnavailable, Message: "a backend is unavailable, nothing was written", Err: err}
}

// OutcomeUnknown is Error.Outcome when a commit's fate could not be found out.
const OutcomeUnknown = "unknown"

// ErrorCode returns the code of err: the code of the first *Error in its chain, or
// CodeInternal for anything else (and "" for nil).
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrStale is returned by a store's compare-and-swap when the stored version is no
// longer the expected one; the pipeline re-runs the rule against the new head.
var ErrStale = errors.New("stale version")

// ErrOutcomeUnknown is wrapped (in a CodeUnavailable *Error) by a store's InTx when
// the commit was sent but its answer never came: the transaction may or may not be
// durable. When ErrTxEnded is wrapped too, the store saw the transaction end on the
// server, so a fresh read shows its outcome.
var ErrOutcomeUnknown = errors.New("commit outcome unknown")

// ErrTxEnded: see ErrOutcomeUnknown.
var ErrTxEnded = errors.New("the transaction has ended")

// ErrDuplicateEdit is returned by a store when a change with the same editId is already
// committed on the object; the pipeline answers with the original acknowledgement.
var ErrDuplicateEdit = errors.New("duplicate edit id")
