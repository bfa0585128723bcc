package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// DefaultRetention is how many versions of each layout and widget the op log keeps.
const DefaultRetention = 1000

// maxAttempts bounds how often one edit re-runs the rule after losing a
// compare-and-swap; each loss means another edit committed, so this is only reached
// under pathological contention.
const maxAttempts = 200

// Event is what the pipeline announces after a commit. Channel is "layout:<id>",
// "widget:<id>" or "user"; Type is "op" (a committed layout version), "widget" (a widget
// definition changed) or "event" (a user-channel event named by Name).
type Event struct {
	Owner   string
	Channel string
	Type    string
	Name    string
	// Change is the committed version for Type "op".
	Change *Change
	// Payload is the event's object: a LayoutSummary, Widget or Dashboard.
	Payload any
}

// Publisher is told of every commit, after it is durable. It must not block for long
// and cannot fail an edit: deliveries are repaired from the op log.
type Publisher interface {
	Publish(ctx context.Context, ev Event)
}

// Options configure a Service. Zero values take the documented defaults.
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// NewID makes object ids; default UUID v7.
	NewID func() string
	// Retention is how many versions each op log keeps; default DefaultRetention.
	Retention int
	// Sources checks widget sources; default BasicSources (static and push).
	Sources SourceChecker
	// Publisher is told of commits; default none.
	Publisher Publisher
	// Logger; default slog.Default().
	Logger *slog.Logger
	// SoleWriter says this service is the only writer of its store (one process owns
	// an embedded database): widget definitions are then kept in memory and a read
	// of one does not touch the store. Never set it when instances share a store.
	SoleWriter bool
}

// Service runs dashsync's domain operations: the edit pipeline for layouts and
// widgets and everything built on it. It is safe for concurrent use.
type Service struct {
	store     Store
	now       func() time.Time
	newID     func() string
	retention int64
	sources   SourceChecker
	pub       Publisher
	log       *slog.Logger
	widgets   *widgetCache // nil unless SoleWriter
}

// NewService returns a Service committing to store.
func NewService(store Store, o Options) *Service {
	s := &Service{store: store, now: o.Now, newID: o.NewID, retention: int64(o.Retention),
		sources: o.Sources, pub: o.Publisher, log: o.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.sources == nil {
		s.sources = BasicSources{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if o.SoleWriter {
		s.widgets = newWidgetCache()
	}
	return s
}

// SetPublisher sets who is told of commits. It is for wiring, where the publisher
// (the hub) needs the service first; call it before the service is in use.
func (s *Service) SetPublisher(p Publisher) { s.pub = p }

// Publish hands ev to the service's publisher (none set: dropped). Producers of events
// outside the pipeline (widget data) announce through it, so one publisher is wired.
func (s *Service) Publish(ctx context.Context, ev Event) {
	if s.pub != nil {
		s.pub.Publish(ctx, ev)
	}
}

// Store returns the store the service commits to.
func (s *Service) Store() Store { return s.store }

// Edit is a change to a layout or widget: ops against a base version.
type Edit struct {
	Base   int64
	Ops    []Op
	Force  bool
	EditID string
	// Author is the user id, Client the connection's client id ("" for REST).
	Author string
	Client string

	restoredFrom *int64
	server       bool // allows server-only paths (/isDefault)
}

// Result describes a committed (or acknowledged) edit.
type Result struct {
	// Version is the acknowledged version: the new one, the head for a no-op, or the
	// original one for a resent editId.
	Version int64
	Rebased bool
	// Committed is false for a no-op and for a resent editId.
	Committed bool
	// Duplicate is true when the editId was already committed.
	Duplicate bool
}

// tx bundles a transaction with the events to publish once it commits.
type tx struct {
	Tx
	events []Event
}

func (t *tx) emit(ev Event) { t.events = append(t.events, ev) }

// run executes fn in a transaction, re-running it whenever a compare-and-swap was
// lost, and publishes its events after the commit.
func (s *Service) run(ctx context.Context, fn func(t *tx) error) error {
	for attempt := 0; ; attempt++ {
		t := &tx{}
		err := s.store.InTx(ctx, func(stx Tx) error {
			t.Tx = stx
			return fn(t)
		})
		if errors.Is(err, ErrStale) || errors.Is(err, ErrDuplicateEdit) {
			if attempt < maxAttempts && ctx.Err() == nil {
				continue
			}
			return Unavailable(err)
		}
		if err != nil {
			return err
		}
		for _, ev := range t.events {
			if s.widgets != nil {
				s.widgets.committed(ev)
			}
			s.Publish(ctx, ev)
		}
		return nil
	}
}

// kind is what the generic pipeline needs to know about one kind of object.
type kind[D any] struct {
	name     string
	load     func(ctx context.Context, t *tx, owner, id string) (D, error)
	version  func(D) int64
	changes  func(ctx context.Context, t *tx, id string, after, upTo int64) ([]Change, error)
	byEdit   func(ctx context.Context, t *tx, id, editID string) (Change, error)
	apply    func(D, Edit) (D, error)
	validate func(ctx context.Context, t *tx, owner string, old, next D) error
	same     func(a, b D) bool
	// commit stores next (already stamped with its new version) and the change, trims
	// the log and emits events.
	commit func(ctx context.Context, t *tx, next D, c Change) error
	stamp  func(d D, version int64, at Time) D
	diff   func(a, b D) []Op
	id     func(D) string
	clone  func(D) D
}

// edit runs the rule of SPEC §3 inside t: dedup by editId, overlap check against the
// versions after the base (or base_too_old), apply, validate, no-op check, then a
// compare-and-swap commit of version head+1 with its op-log row.
func edit[D any](ctx context.Context, s *Service, t *tx, k kind[D], owner, id string, e Edit) (D, Result, error) {
	var zero D
	head, err := k.load(ctx, t, owner, id)
	if err != nil {
		return zero, Result{}, err
	}
	if e.EditID != "" {
		if _, err := uuid.Parse(e.EditID); err != nil {
			return zero, Result{}, Invalid("editId", "uuid", "", "editId must be a UUID")
		}
		c, err := k.byEdit(ctx, t, id, e.EditID)
		if err == nil {
			return head, Result{Version: c.Version, Rebased: c.Rebased, Duplicate: true}, nil
		}
		if ErrorCode(err) != CodeNotFound {
			return zero, Result{}, err
		}
	}
	v := k.version(head)
	if e.Base < 1 && !e.Force {
		return zero, Result{}, Invalid("version", "required", "", "version (the base version) is required")
	}
	if e.Base > v {
		return zero, Result{}, Invalid("version", "max", itoa(v), "version %d is ahead of the %s's version %d", e.Base, k.name, v)
	}
	rebased := false
	if !e.Force && e.Base < v {
		since, err := k.changes(ctx, t, id, e.Base, v)
		if err != nil {
			return zero, Result{}, err
		}
		if int64(len(since)) != v-e.Base {
			return zero, Result{}, conflictError(head, v, tooOld(e.Ops, e.Base),
				"base version %d is older than the history kept for this %s", e.Base, k.name)
		}
		if cs := Overlaps(e.Ops, since); len(cs) > 0 {
			return zero, Result{}, conflictError(head, v, cs, "the edit overlaps changes committed after version %d", e.Base)
		}
		rebased = true
	}
	next, err := k.apply(head, e)
	if err != nil {
		return zero, Result{}, err
	}
	if err := k.validate(ctx, t, owner, head, next); err != nil {
		return zero, Result{}, err
	}
	if k.same(head, next) {
		return head, Result{Version: v}, nil
	}
	at := NewTime(s.now())
	next = k.stamp(next, v+1, at)
	c := Change{Version: v + 1, Ops: e.Ops, Author: e.Author, Client: e.Client, EditID: e.EditID,
		RestoredFrom: e.restoredFrom, Time: at, Rebased: rebased}
	if c.Doc, err = json.Marshal(next); err != nil {
		return zero, Result{}, err
	}
	if err := k.commit(ctx, t, next, c); err != nil {
		return zero, Result{}, err
	}
	return next, Result{Version: v + 1, Rebased: rebased, Committed: true}, nil
}

func conflictError(current any, v int64, cs []Conflict, format string, args ...any) *Error {
	e := Errorf(CodeVersionConflict, format, args...)
	e.Version, e.Current, e.Conflicts = v, current, cs
	return e
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// put turns a whole document (over applied to the document at base) into the edit
// that leads from version base to it; with e.Force, from the head instead.
func put[D any](ctx context.Context, t *tx, k kind[D], owner, id string, base int64, over func(D) D, e Edit) (Edit, error) {
	head, err := k.load(ctx, t, owner, id)
	if err != nil {
		return e, err
	}
	v := k.version(head)
	from := head
	if !e.Force && base != v {
		if base < 1 {
			return e, Invalid("version", "required", "", "version (the base version) is required")
		}
		if base > v {
			return e, Invalid("version", "max", itoa(v), "version %d is ahead of the %s's version %d", base, k.name, v)
		}
		if from, err = docAt(ctx, t, k, head, base); err != nil {
			return e, err
		}
	}
	e.Base = base
	if e.Force {
		e.Base = v
	}
	e.Ops = k.diff(from, over(from))
	return e, nil
}

// docAt returns the document of head's object as it was at version v, from the op
// log, or a base_too_old conflict when the log no longer keeps it.
func docAt[D any](ctx context.Context, t *tx, k kind[D], head D, v int64) (D, error) {
	var old D
	id := k.id(head)
	cs, err := k.changes(ctx, t, id, v-1, v)
	if err != nil {
		return old, err
	}
	if len(cs) != 1 {
		return old, conflictError(head, k.version(head), tooOld(nil, v),
			"version %d is older than the history kept for this %s", v, k.name)
	}
	if err := json.Unmarshal(cs[0].Doc, &old); err != nil {
		return old, fmt.Errorf("decode %s %s version %d: %w", k.name, id, v, err)
	}
	return k.clone(old), nil
}

// tooOld names every op of an edit whose base the log no longer keeps (or the base
// alone when the ops are not known yet).
func tooOld(ops []Op, base int64) []Conflict {
	if len(ops) == 0 {
		return []Conflict{{Version: base, Reason: ReasonBaseTooOld}}
	}
	cs := make([]Conflict, len(ops))
	for i, op := range ops {
		cs[i] = Conflict{Op: i, Path: op.Path, Version: base, Reason: ReasonBaseTooOld}
	}
	return cs
}
