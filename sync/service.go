package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// DefaultRetention is how many versions of each layout and widget the op log keeps.
const DefaultRetention = 1000

// DefaultCheckpointEvery is how often a version of the op log carries the whole
// document (a checkpoint): every version whose number is a multiple of it, and
// version 1. Every other version keeps its ops alone; the document at a version is
// the nearest checkpoint at or before it with at most DefaultCheckpointEvery-1
// versions' ops replayed on top.
const DefaultCheckpointEvery = 256

// maxAttempts bounds how often one edit re-runs the rule after losing a
// compare-and-swap; each loss means another edit committed, so this is only reached
// under pathological contention.
const maxAttempts = 200

// inTxOverlapVersions is how far behind the head an edit's base may be for its overlap
// check to run inside the write transaction. Further behind, the check runs first on a
// plain read, outside any transaction, and the transaction checks only what committed
// since: an edit far behind never holds the store's writers (SPEC §12).
const inTxOverlapVersions = 16

// DefaultResolveTimeout bounds how long the pipeline tries to find out whether a
// commit whose answer was lost happened (SPEC §12).
const DefaultResolveTimeout = 10 * time.Second

// Options configure a Service. Zero values take the documented defaults.
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// NewID makes object ids; default UUID v7.
	NewID func() string
	// Retention is how many versions each op log keeps; default DefaultRetention.
	Retention int
	// CheckpointEvery is the op log's checkpoint interval; default
	// DefaultCheckpointEvery.
	CheckpointEvery int
	// Sources checks widget sources; default BasicSources (static and push).
	Sources SourceChecker
	// Announcer is told of commits; default none.
	Announcer Announcer
	// Logger; default slog.Default().
	Logger *slog.Logger
	// SoleWriter says this service is the only writer of its store (one process owns
	// an embedded database): widget definitions are then kept in memory and a read
	// of one does not touch the store. Never set it when instances share a store.
	SoleWriter bool
	// ResolveTimeout bounds how long a commit whose outcome the store could not tell
	// is looked up by its editId; default DefaultResolveTimeout.
	ResolveTimeout time.Duration
	// CommitLanes is how many groups of layout edits may commit at once; default
	// DefaultCommitLanes. GroupMax bounds a group's edits; default DefaultGroupMax.
	// GroupWindow is how long a group waits for more edits before it commits;
	// default 0: it takes what queued while the previous group committed, and an
	// edit on an idle server commits at once.
	CommitLanes int
	GroupMax    int
	GroupWindow time.Duration
	// OnGroup, when set, is told of each group commit: how many edits it held and how
	// long its transaction took (for metrics).
	OnGroup func(edits int, took time.Duration)
}

// Service runs dashsync's domain operations: the edit pipeline for layouts and
// widgets and everything built on it. It is safe for concurrent use.
type Service struct {
	store     Store
	now       func() time.Time
	newID     func() string
	retention int64
	every     int64 // the checkpoint interval
	sources   SourceChecker
	announce  Announcer
	log       *slog.Logger
	widgets   *widgetCache // nil unless SoleWriter
	resolve   time.Duration
	group     *committer
}

// NewService returns a Service committing to store.
func NewService(store Store, o Options) *Service {
	s := &Service{store: guard(store), now: o.Now, newID: o.NewID, retention: int64(o.Retention),
		every: int64(o.CheckpointEvery), sources: o.Sources, announce: o.Announcer, log: o.Logger, resolve: o.ResolveTimeout}
	if s.resolve <= 0 {
		s.resolve = DefaultResolveTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.every <= 0 {
		s.every = DefaultCheckpointEvery
	}
	if s.sources == nil {
		s.sources = BasicSources{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if o.SoleWriter {
		s.widgets = newWidgetCache(0)
	}
	s.group = newCommitter(o.CommitLanes, o.GroupMax, o.GroupWindow)
	s.group.observe = o.OnGroup
	return s
}

// Ping reports whether the store answers: the readiness check of SPEC §8.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

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
	derived      bool // the ops were derived by the server (a diff), not sent by a client
	freshID      bool // EditID was made by the server for this edit: no need to look it up
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
	// edits are the edits written in this transaction, by kind, object and editId:
	// how a commit whose answer was lost is found again.
	edits []editRef
	// checked holds the overlap checks already run outside the transaction, for
	// edits whose base is far behind the head; it lives across the run's attempts.
	checked map[checkKey]checked
}

func (t *tx) emit(ev Event) { t.events = append(t.events, ev) }

type editRef struct {
	kind, id, editID string
}

// checkKey names one edit's overlap check; checked is its outcome up to a version.
type checkKey struct {
	kind, id string
	base     int64
}

type checked struct {
	upTo      int64
	tooOld    bool
	conflicts []Conflict
}

// behind asks run to do an overlap check outside the transaction, then try again.
type behind struct {
	key   checkKey
	check func(ctx context.Context) (checked, error)
}

func (*behind) Error() string { return "the edit's base is far behind the head" }

// run executes fn in a transaction, re-running it whenever a compare-and-swap was
// lost, and publishes its events after the commit. A commit whose answer was lost is
// found again by its edits' editIds (SPEC §12).
func (s *Service) run(ctx context.Context, fn func(t *tx) error) error {
	done := map[checkKey]checked{}
	var gen uint64 // the widget cache's generation before the transaction
	if s.widgets != nil {
		gen = s.widgets.generation()
	}
	for attempt := 0; ; attempt++ {
		t := &tx{checked: done}
		err := s.store.InTx(ctx, func(stx Tx) error {
			t.Tx = stx
			return fn(t)
		})
		if b, ok := errors.AsType[*behind](err); ok {
			c, err := b.check(ctx)
			if err != nil {
				return err
			}
			done[b.key] = c
			if attempt < maxAttempts {
				continue
			}
			return Unavailable(errors.New("too many attempts"))
		}
		if errors.Is(err, ErrStale) || errors.Is(err, ErrDuplicateEdit) {
			if attempt < maxAttempts && ctx.Err() == nil {
				continue
			}
			return Unavailable(err)
		}
		if errors.Is(err, ErrOutcomeUnknown) {
			err = s.resolveCommit(ctx, t, err)
		}
		if err != nil {
			return err
		}
		s.publish(ctx, t.events, gen)
		return nil
	}
}

// publish tells the widget cache and the announcer of a commit's events; gen is the
// widget cache's generation before the transaction.
func (s *Service) publish(ctx context.Context, events []Event, gen uint64) {
	for _, ev := range events {
		if s.widgets != nil {
			s.widgets.committed(ev, gen)
		}
		if s.announce != nil {
			s.announce.Announce(ctx, ev)
		}
	}
}

// resolveCommit finds out whether the transaction t, whose commit failed with an
// unknown outcome (cause), was committed: by looking its edits up by editId once the
// store answers, within the resolve timeout. It returns nil when every edit is in the
// log, an unavailable error (nothing written) when none is and the store saw the
// transaction end, and else an unavailable error whose Outcome is unknown.
func (s *Service) resolveCommit(ctx context.Context, t *tx, cause error) error {
	unknown := &Error{Code: CodeUnavailable, Outcome: OutcomeUnknown, Err: cause,
		Message: "the store failed while committing and the outcome is not known; resending with the same editId is safe"}
	if len(t.edits) == 0 {
		return unknown
	}
	ended := errors.Is(cause, ErrTxEnded)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.resolve)
	defer cancel()
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		found, err := s.editsCommitted(rctx, t.edits)
		switch {
		case err == nil && found == len(t.edits):
			s.log.Warn("a commit whose answer was lost is in the store", "err", cause)
			return nil
		case err == nil && found == 0 && ended:
			return Unavailable(cause)
		case err == nil && found == 0:
			// The store did not see the transaction end: it may commit still.
		case err == nil:
			return &Error{Code: CodeInternal, Err: fmt.Errorf("%d of %d edits of one transaction committed: %w", found, len(t.edits), cause)}
		}
		select {
		case <-rctx.Done():
			s.log.Warn("the outcome of a commit is unknown", "err", cause)
			return unknown
		case <-time.After(wait):
		}
	}
}

// editsCommitted counts the edits found in their op logs.
func (s *Service) editsCommitted(ctx context.Context, refs []editRef) (int, error) {
	n := 0
	for _, r := range refs {
		var err error
		if r.kind == "widget" {
			_, err = s.store.WidgetChangeByEdit(ctx, r.id, r.editID)
		} else {
			_, err = s.store.LayoutChangeByEdit(ctx, r.id, r.editID)
		}
		switch ErrorCode(err) {
		case "":
			n++
		case CodeNotFound:
		default:
			return 0, err
		}
	}
	return n, nil
}

// kind is what the generic pipeline needs to know about one kind of object.
type kind[D any] struct {
	name     string
	load     func(ctx context.Context, r Reader, owner, id string) (D, error)
	version  func(D) int64
	changes  func(ctx context.Context, r Reader, id string, after, upTo int64) ([]Change, error)
	paths    func(ctx context.Context, r Reader, id string, after, upTo int64) ([]Change, error)
	byEdit   func(ctx context.Context, r Reader, id, editID string) (Change, error)
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
	if !e.server && !e.derived {
		if err := CheckOps(e.Ops); err != nil {
			return zero, Result{}, err
		}
	}
	head, err := k.load(ctx, t, owner, id)
	if err != nil {
		return zero, Result{}, err
	}
	switch {
	case e.EditID == "":
		// Every commit carries an editId, so that one whose answer is lost can be
		// found again.
		e.EditID, e.freshID = uuid.Must(uuid.NewV7()).String(), true
	case !e.freshID:
		u, err := uuid.Parse(e.EditID)
		if err != nil {
			return zero, Result{}, Invalid("editId", "uuid", "", "editId must be a UUID")
		}
		// One UUID is one editId, however it is written: the log keeps it canonical.
		e.EditID = u.String()
		c, err := k.byEdit(ctx, t, id, e.EditID)
		if err == nil && !s.kept(c.Version, k.version(head)) {
			// Past the kept history a resend is a new edit, as if the log had
			// dropped it already (SPEC §3: the editId is known while its version is).
			err = Errorf(CodeNotFound, "edit %s is no longer kept", e.EditID)
		}
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
		from, cs := e.Base, []Conflict(nil)
		key := checkKey{kind: k.name, id: id, base: e.Base}
		if !s.kept(e.Base+1, v) {
			return zero, Result{}, baseTooOld(head, v, e, k.name)
		}
		if c, ok := t.checked[key]; ok {
			if c.tooOld {
				return zero, Result{}, baseTooOld(head, v, e, k.name)
			}
			from, cs = c.upTo, c.conflicts
		} else if v-e.Base > inTxOverlapVersions {
			ops, base, upTo := e.Ops, e.Base, v
			return zero, Result{}, &behind{key: key, check: func(ctx context.Context) (checked, error) {
				return overlapCheck(ctx, s.store, k, id, base, upTo, ops)
			}}
		}
		if from < v {
			c, err := overlapCheck(ctx, t, k, id, from, v, e.Ops)
			if err != nil {
				return zero, Result{}, err
			}
			if c.tooOld {
				return zero, Result{}, baseTooOld(head, v, e, k.name)
			}
			cs = mergeConflicts(cs, c.conflicts)
		}
		if len(cs) > 0 {
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
	if s.isCheckpoint(c.Version) {
		if c.Doc, err = json.Marshal(next); err != nil {
			return zero, Result{}, err
		}
	}
	if err := k.commit(ctx, t, next, c); err != nil {
		return zero, Result{}, err
	}
	t.edits = append(t.edits, editRef{kind: k.name, id: id, editID: e.EditID})
	return next, Result{Version: v + 1, Rebased: rebased, Committed: true}, nil
}

// overlapCheck checks ops against the changes after..upTo read from r.
func overlapCheck[D any](ctx context.Context, r Reader, k kind[D], id string, after, upTo int64, ops []Op) (checked, error) {
	since, err := k.paths(ctx, r, id, after, upTo)
	if err != nil {
		return checked{}, err
	}
	if int64(len(since)) != upTo-after {
		return checked{upTo: upTo, tooOld: true}, nil
	}
	return checked{upTo: upTo, conflicts: Overlaps(ops, since)}, nil
}

// mergeConflicts joins two checks' conflicts: one per op, naming the latest version.
func mergeConflicts(a, b []Conflict) []Conflict {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	byOp := map[int]Conflict{}
	for _, c := range slices.Concat(a, b) {
		if old, ok := byOp[c.Op]; !ok || c.Version > old.Version {
			byOp[c.Op] = c
		}
	}
	out := slices.Collect(maps.Values(byOp))
	slices.SortFunc(out, func(x, y Conflict) int { return x.Op - y.Op })
	return out
}

func baseTooOld(head any, v int64, e Edit, name string) *Error {
	return conflictError(head, v, tooOld(e.Ops, e.Base), "base version %d is older than the history kept for this %s", e.Base, name)
}

func conflictError(current any, v int64, cs []Conflict, format string, args ...any) *Error {
	e := Errorf(CodeVersionConflict, format, args...)
	e.Version, e.Current, e.Conflicts = v, current, cs
	return e
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// put turns a whole document (over applied to the document at base) into the edit
// that leads from version base to it; with e.Force, from the head instead.
func put[D any](ctx context.Context, s *Service, t *tx, k kind[D], owner, id string, base int64, over func(D) D, e Edit) (Edit, error) {
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
		if from, err = docAt(ctx, s, t, k, head, base); err != nil {
			return e, err
		}
	}
	e.Base = base
	if e.Force {
		e.Base = v
	}
	e.Ops, e.derived = k.diff(from, over(from)), true
	return e, nil
}

// docAt returns the document of head's object as it was at version v: the nearest
// checkpoint at or before v with the ops of the versions after it replayed, at most
// s.every-1 of them, in one apply. A version outside the kept history is a base_too_old conflict.
func docAt[D any](ctx context.Context, s *Service, t *tx, k kind[D], head D, v int64) (D, error) {
	var old D
	id, hv := k.id(head), k.version(head)
	if v == hv {
		return k.clone(head), nil
	}
	gone := func() (D, error) {
		return old, conflictError(head, hv, tooOld(nil, v),
			"version %d is older than the history kept for this %s", v, k.name)
	}
	if v < 1 || v > hv || !s.kept(v, hv) {
		return gone()
	}
	from := s.checkpointAtOrBefore(v)
	cs, err := k.changes(ctx, t, id, from-1, v)
	if err != nil {
		return old, err
	}
	// The replay starts at the newest row that carries the document: the checkpoint,
	// or a later one (logs written before checkpoints kept a document in every row).
	start := -1
	for i, c := range cs {
		if c.Doc != nil {
			start = i
		}
	}
	if start < 0 || int64(len(cs)) != v-from+1 || cs[len(cs)-1].Version != v {
		return gone()
	}
	if err := json.Unmarshal(cs[start].Doc, &old); err != nil {
		return old, fmt.Errorf("decode %s %s version %d: %w", k.name, id, cs[start].Version, err)
	}
	if rest := cs[start+1:]; len(rest) > 0 {
		// One apply of every version's ops in order: one copy of the document.
		var ops []Op
		for _, c := range rest {
			ops = append(ops, c.Ops...)
		}
		if old, err = k.apply(old, Edit{Ops: ops, server: true}); err != nil {
			return old, fmt.Errorf("replay %s %s versions %d…%d: %w", k.name, id, rest[0].Version, v, err)
		}
		old = k.stamp(old, v, rest[len(rest)-1].Time)
	}
	return k.clone(old), nil
}

// isCheckpoint reports whether version v of an op log carries the whole document.
func (s *Service) isCheckpoint(v int64) bool { return v == 1 || v%s.every == 0 }

// checkpointAtOrBefore returns the newest checkpoint version at or before v.
func (s *Service) checkpointAtOrBefore(v int64) int64 { return max(1, v-v%s.every) }

// kept reports whether version v is within the history kept at head: the last
// s.retention versions. The store may hold a few more (the log is trimmed a
// checkpoint interval at a time, and keeps the checkpoint the oldest kept version
// replays from); they serve that replay only.
func (s *Service) kept(v, head int64) bool { return v > head-s.retention }

// trimAfter returns, for a commit of version v, the versions of the op log to drop
// (those <= upTo), or false when this commit trims nothing: trimming runs once per
// checkpoint interval, at a checkpoint, and keeps the checkpoint that the oldest
// kept version replays from.
func (s *Service) trimAfter(v int64) (upTo int64, ok bool) {
	if !s.isCheckpoint(v) || v <= s.retention {
		return 0, false
	}
	return s.checkpointAtOrBefore(v-s.retention+1) - 1, true
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
