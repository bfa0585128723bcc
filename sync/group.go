package sync

import (
	"context"
	"errors"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/google/uuid"
)

// Group commit: the layout edits that arrive while a commit is under way wait for it,
// and then commit together, in one store transaction (one fsync) with one read and
// one write of the store for the whole group. Each edit still runs the rule of SPEC §3
// on its own, against the head as the edits before it in the group left it, and
// compare-and-swaps its own version; its conflict or invalid result is its own and
// never fails the others. Nothing is acknowledged before the group is durable. An
// idle server commits an edit at once: a group is whatever queued meanwhile (and,
// with a GroupWindow, what arrives within it).

// DefaultGroupMax bounds the edits of one group.
const DefaultGroupMax = 256

// DefaultCommitLanes is how many groups may commit at once: each layout's edits
// always go through the same lane, so they stay in order.
const DefaultCommitLanes = 2

// groupTimeout bounds one group's transaction, whatever its edits' contexts say (an
// edit whose own context ends first is answered as unknown: its group may commit).
const groupTimeout = 30 * time.Second

// groupEdit is one edit waiting for its group.
type groupEdit struct {
	ctx     context.Context
	who, id string
	e       Edit
	done    map[checkKey]checked
	reply   chan groupReply
}

type groupReply struct {
	layout Layout
	res    Result
	err    error
}

// lane commits the groups of the layouts hashed to it, one group at a time, and
// then hands each committed group to its publisher, which announces the group's
// events and answers its edits, in commit order: the next group's transaction runs
// while the last one's frames go out.
type lane struct {
	mu      gosync.Mutex
	queue   []*groupEdit
	running bool
	more    chan struct{} // a new edit queued, for a lane waiting out its window

	pubMu      gosync.Mutex
	published  []committedGroup
	publishing bool
}

// committedGroup is a group's outcome, waiting to be published and answered.
type committedGroup struct {
	live    []*groupEdit
	replies []groupReply
	events  [][]Event
	gen     uint64
}

// committer holds the lanes of a Service.
type committer struct {
	lanes   []lane
	seed    maphash.Seed
	max     int
	window  time.Duration
	observe func(edits int, took time.Duration) // nil: none
}

func newCommitter(lanes, max int, window time.Duration) *committer {
	if lanes <= 0 {
		lanes = DefaultCommitLanes
	}
	if max <= 0 {
		max = DefaultGroupMax
	}
	c := &committer{lanes: make([]lane, lanes), seed: maphash.MakeSeed(), max: max, window: window}
	for i := range c.lanes {
		c.lanes[i].more = make(chan struct{}, 1)
	}
	return c
}

// editInGroup runs a layout edit through its lane's group commit.
func (s *Service) editInGroup(ctx context.Context, who, id string, e Edit) (Layout, Result, error) {
	if !ValidText(who) || !ValidText(id) {
		return Layout{}, Result{}, Errorf(CodeNotFound, "layout %s not found", id)
	}
	g := &groupEdit{ctx: ctx, who: who, id: id, e: e, done: map[checkKey]checked{}}
	for attempt := 0; ; attempt++ {
		g.reply = make(chan groupReply, 1)
		s.enqueue(g)
		var r groupReply
		select {
		case r = <-g.reply:
		case <-ctx.Done():
			return Layout{}, Result{}, &Error{Code: CodeUnavailable, Outcome: OutcomeUnknown, Err: ctx.Err(),
				Message: "the request ended while its edit was committing; resending with the same editId is safe"}
		}
		if b, ok := errors.AsType[*behind](r.err); ok {
			// The base is far behind: check it outside any transaction, then again.
			c, err := b.check(ctx)
			if err != nil {
				return Layout{}, Result{}, err
			}
			g.done[b.key] = c
		} else if !errors.Is(r.err, ErrStale) && !errors.Is(r.err, ErrDuplicateEdit) {
			return r.layout, r.res, r.err
		}
		if attempt >= maxAttempts || ctx.Err() != nil {
			if r.err == nil {
				r.err = errors.New("too many attempts")
			}
			return Layout{}, Result{}, Unavailable(r.err)
		}
	}
}

// enqueue adds g to its lane and starts the lane's committer unless it runs.
func (s *Service) enqueue(g *groupEdit) {
	c := s.group
	l := &c.lanes[maphash.String(c.seed, g.id)%uint64(len(c.lanes))]
	l.mu.Lock()
	l.queue = append(l.queue, g)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	select {
	case l.more <- struct{}{}:
	default:
	}
	if start {
		go s.runLane(l)
	}
}

// runLane commits groups until its queue is empty; it holds no goroutine while idle.
func (s *Service) runLane(l *lane) {
	c := s.group
	for {
		l.mu.Lock()
		if c.window > 0 && len(l.queue) > 0 && len(l.queue) < c.max {
			// Wait out the window, or until the group is full.
			timer := time.NewTimer(c.window)
			for waiting := true; waiting && len(l.queue) < c.max; {
				l.mu.Unlock()
				select {
				case <-l.more:
				case <-timer.C:
					waiting = false
				}
				l.mu.Lock()
			}
			timer.Stop()
		}
		n := min(len(l.queue), c.max)
		if n == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		batch := slices.Clone(l.queue[:n])
		l.queue = slices.Delete(l.queue, 0, n)
		l.mu.Unlock()
		s.commitGroup(l, batch)
	}
}

// handOff queues a committed group for l's publisher, starting it unless it runs.
func (s *Service) handOff(l *lane, g committedGroup) {
	l.pubMu.Lock()
	l.published = append(l.published, g)
	start := !l.publishing
	l.publishing = true
	l.pubMu.Unlock()
	if start {
		go s.runPublisher(l)
	}
}

// runPublisher announces and answers committed groups until none is left.
func (s *Service) runPublisher(l *lane) {
	for {
		l.pubMu.Lock()
		if len(l.published) == 0 {
			l.publishing = false
			l.pubMu.Unlock()
			return
		}
		g := l.published[0]
		l.published = slices.Delete(l.published, 0, 1)
		l.pubMu.Unlock()
		s.publishGroup(g)
	}
}

// publishGroup announces each committed edit's events and then answers it, in order.
func (s *Service) publishGroup(g committedGroup) {
	answered := 0
	defer func() {
		// A panic of the announcer fails the answers still owed, not the server
		// (the edits are committed: a resend with the same editId gets the ack).
		if p := recover(); p != nil {
			s.log.Error("publishing a group commit panicked", "panic", p)
			for _, e := range g.live[answered:] {
				e.reply <- groupReply{err: &Error{Code: CodeInternal, Message: "internal error"}}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	for i, e := range g.live {
		if g.replies[i].err == nil {
			s.publish(ctx, g.events[i], g.gen)
		}
		answered = i + 1
		e.reply <- g.replies[i]
	}
}

// commitGroup commits one group and hands it to the lane's publisher.
func (s *Service) commitGroup(l *lane, batch []*groupEdit) {
	live := batch[:0]
	for _, g := range batch {
		if err := g.ctx.Err(); err != nil {
			g.reply <- groupReply{err: err}
			continue
		}
		live = append(live, g)
	}
	if len(live) == 0 {
		return
	}
	handed := false
	defer func() {
		// A panic in one group (a store's, the rule's) fails that group, not the
		// server; every edit of it is answered.
		if p := recover(); p != nil {
			s.log.Error("a group commit panicked", "panic", p)
			for _, g := range live {
				if handed {
					break // the publisher answers them
				}
				select {
				case g.reply <- groupReply{err: &Error{Code: CodeInternal, Message: "internal error"}}:
				default:
				}
			}
		}
	}()
	var gen uint64
	if s.widgets != nil {
		gen = s.widgets.generation()
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	replies := make([]groupReply, len(live))
	events := make([][]Event, len(live))
	var edits []editRef
	start := time.Now()
	err := s.store.InTx(ctx, func(stx Tx) error {
		edits = edits[:0]
		gt, err := readGroup(ctx, stx, live)
		if err != nil {
			return err
		}
		for i, g := range live {
			mark := gt.mark(g.id)
			t := &tx{Tx: gt, checked: g.done}
			l, res, err := s.editLayout(ctx, t, g.who, g.id, g.e)
			if err != nil {
				gt.undo(g.id, mark)
			}
			replies[i], events[i] = groupReply{layout: l, res: res, err: err}, t.events
			if err == nil {
				edits = append(edits, t.edits...)
			}
		}
		return gt.flush(ctx)
	})
	if s.group.observe != nil {
		s.group.observe(len(live), time.Since(start))
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		err = s.resolveCommit(ctx, &tx{edits: edits}, err)
	}
	if err != nil {
		// The group did not commit: every edit of it is answered with the group's
		// error (ErrStale: it runs again, in a later group), also one whose conflict
		// was with an edit of the group.
		for i := range replies {
			replies[i] = groupReply{err: err}
		}
	}
	handed = true
	s.handOff(l, committedGroup{live: live, replies: replies, events: events, gen: gen})
}

// groupTx is a group's transaction: the reads the group's edits need were made at
// its start (readGroup), the writes are kept until flush. Each layout's head is as
// the edits before in the group left it. Reads it does not hold go to the store.
type groupTx struct {
	Tx
	layouts map[string]*groupLayout
}

type groupLayout struct {
	read      EditRead
	state     EditState
	head      Layout
	changes   []Change
	trim      int64
	byEditIDs map[string]bool // the editIds read
	widgetIDs map[string]bool // the widget ids read
}

// groupMark is what undo restores of one layout.
type groupMark struct {
	head    Layout
	changes int
	trim    int64
}

// readGroup makes the group's read of the store: for each of its layouts, in id
// order (the order the store locks them), the head, the editors' roles, the changes
// of the editIds sent, the paths committed after the oldest base, and the widgets
// the edits may place.
func readGroup(ctx context.Context, stx Tx, group []*groupEdit) (*groupTx, error) {
	gt := &groupTx{Tx: stx, layouts: map[string]*groupLayout{}}
	for _, g := range group {
		gl := gt.layouts[g.id]
		if gl == nil {
			gl = &groupLayout{read: EditRead{LayoutID: g.id, After: g.e.Base, MaxBack: inTxOverlapVersions},
				byEditIDs: map[string]bool{}, widgetIDs: map[string]bool{}}
			gt.layouts[g.id] = gl
		}
		r := &gl.read
		if !slices.Contains(r.Users, g.who) {
			r.Users = append(r.Users, g.who)
		}
		r.After = min(r.After, g.e.Base)
		if u, err := uuid.Parse(g.e.EditID); err == nil && !gl.byEditIDs[u.String()] {
			gl.byEditIDs[u.String()] = true
			r.EditIDs = append(r.EditIDs, u.String())
		}
		for _, op := range g.e.Ops {
			// Only a whole item, added or replaced, can place a widget.
			id, ok := strings.CutPrefix(op.Path, "/items/")
			if ok && op.Op != OpRemove && id != "" && !strings.Contains(id, "/") && ValidText(id) && !gl.widgetIDs[id] {
				gl.widgetIDs[id] = true
				r.Widgets = append(r.Widgets, id)
			}
		}
	}
	ids := slices.Sorted(maps.Keys(gt.layouts))
	reads := make([]EditRead, len(ids))
	for i, id := range ids {
		reads[i] = gt.layouts[id].read
	}
	states, err := stx.ReadForEdits(ctx, reads)
	if err != nil {
		return nil, err
	}
	if len(states) != len(reads) {
		return nil, Errorf(CodeInternal, "the store read %d layouts of %d", len(states), len(reads))
	}
	for i, id := range ids {
		gl := gt.layouts[id]
		gl.state, gl.head = states[i], states[i].Layout
	}
	return gt, nil
}

func (gt *groupTx) mark(id string) groupMark {
	gl := gt.layouts[id]
	return groupMark{head: gl.head, changes: len(gl.changes), trim: gl.trim}
}

func (gt *groupTx) undo(id string, m groupMark) {
	gl := gt.layouts[id]
	gl.head, gl.changes, gl.trim = m.head, gl.changes[:m.changes], m.trim
}

// flush writes every layout that changed, in one call.
func (gt *groupTx) flush(ctx context.Context) error {
	var ws []LayoutWrite
	for _, gl := range gt.layouts {
		if len(gl.changes) > 0 {
			ws = append(ws, LayoutWrite{Layout: gl.head, From: gl.state.Layout.Version, Changes: gl.changes, TrimUpTo: gl.trim})
		}
	}
	if len(ws) == 0 {
		return nil
	}
	slices.SortFunc(ws, func(a, b LayoutWrite) int { return strings.Compare(a.Layout.ID, b.Layout.ID) })
	return gt.Tx.WriteLayouts(ctx, ws)
}

func (gt *groupTx) LayoutAs(ctx context.Context, id, user string) (Layout, Role, error) {
	gl := gt.layouts[id]
	if gl == nil {
		return gt.Tx.LayoutAs(ctx, id, user)
	}
	if gl.state.Err != nil {
		return Layout{}, "", gl.state.Err
	}
	if user == gl.head.Owner {
		return gl.head, RoleOwner, nil
	}
	role, ok := gl.state.Roles[user]
	if !ok {
		return gt.Tx.LayoutAs(ctx, id, user)
	}
	return gl.head, role, nil
}

func (gt *groupTx) LayoutChangeByEdit(ctx context.Context, id, editID string) (Change, error) {
	gl := gt.layouts[id]
	if gl == nil {
		return gt.Tx.LayoutChangeByEdit(ctx, id, editID)
	}
	for _, c := range gl.changes {
		if c.EditID == editID {
			return c, nil
		}
	}
	if c, ok := gl.state.Edits[editID]; ok {
		return c, nil
	}
	if gl.byEditIDs[editID] {
		return Change{}, Errorf(CodeNotFound, "no change of layout %s has editId %s", id, editID)
	}
	return gt.Tx.LayoutChangeByEdit(ctx, id, editID)
}

// pending returns the group's own changes of gl with after < version <= upTo.
func (gl *groupLayout) pending(after, upTo int64) []Change {
	var out []Change
	for _, c := range gl.changes {
		if c.Version > after && c.Version <= upTo {
			out = append(out, c)
		}
	}
	return out
}

func (gt *groupTx) LayoutPaths(ctx context.Context, id string, after, upTo int64) ([]Change, error) {
	gl := gt.layouts[id]
	if gl == nil {
		return gt.Tx.LayoutPaths(ctx, id, after, upTo)
	}
	stored := gl.state.Layout.Version
	var out []Change
	if read := max(gl.read.After, stored-gl.read.MaxBack); after >= read {
		for _, c := range gl.state.Paths {
			if c.Version > after && c.Version <= upTo {
				out = append(out, c)
			}
		}
	} else if after < stored {
		cs, err := gt.Tx.LayoutPaths(ctx, id, after, min(upTo, stored))
		if err != nil {
			return nil, err
		}
		out = cs
	}
	return append(out, gl.pending(after, upTo)...), nil
}

func (gt *groupTx) LayoutChanges(ctx context.Context, id string, after, upTo int64) ([]Change, error) {
	gl := gt.layouts[id]
	if gl == nil {
		return gt.Tx.LayoutChanges(ctx, id, after, upTo)
	}
	var out []Change
	if stored := gl.state.Layout.Version; after < stored {
		cs, err := gt.Tx.LayoutChanges(ctx, id, after, min(upTo, stored))
		if err != nil {
			return nil, err
		}
		out = cs
	}
	return append(out, gl.pending(after, upTo)...), nil
}

func (gt *groupTx) Widget(ctx context.Context, owner, id string) (Widget, error) {
	for _, gl := range gt.layouts {
		if gl.state.Err != nil || gl.state.Layout.Owner != owner || !gl.widgetIDs[id] {
			continue
		}
		for _, w := range gl.state.Widgets {
			if w.ID == id {
				return w, nil
			}
		}
		return Widget{}, Errorf(CodeNotFound, "widget %s not found", id)
	}
	return gt.Tx.Widget(ctx, owner, id)
}

func (gt *groupTx) UpdateLayout(ctx context.Context, l Layout, c Change) error {
	gl := gt.layouts[l.ID]
	if gl == nil {
		return gt.Tx.UpdateLayout(ctx, l, c)
	}
	if gl.state.Err != nil {
		return gl.state.Err
	}
	if l.Owner != gl.head.Owner || l.Version != gl.head.Version+1 || c.Version != l.Version {
		return ErrStale
	}
	gl.head, gl.changes = l, append(gl.changes, c)
	return nil
}

func (gt *groupTx) TrimLayoutChanges(ctx context.Context, id string, upTo int64) error {
	gl := gt.layouts[id]
	if gl == nil {
		return gt.Tx.TrimLayoutChanges(ctx, id, upTo)
	}
	gl.trim = max(gl.trim, upTo)
	return nil
}
