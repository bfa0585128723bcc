package main

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dashsync/dashsync/internal/wsclient"
)

// arrival is one op message as a subscriber received it.
type arrival struct {
	version int64
	at      int64 // unix nanoseconds (wsclient.Msg.At)
}

// gap is a run of versions a subscriber has not received (yet): from…to inclusive.
type gap struct{ from, to int64 }

// subscriber is one connection, subscribed to one layout, and what it has received.
// Its message callback runs on the connection's read goroutine; everything it
// changes is under mu, since the editor on the same connection and the drain check
// read it.
type subscriber struct {
	idx    int
	layout *layoutPlan
	run    *runner
	client *wsclient.Client
	// ownWidget is set for an editor: the widget only it moves.
	ownWidget string
	// notify wakes an editor waiting for its view to reach a version.
	notify chan struct{}
	// auditor: the layout's first subscriber also records who authored each version.
	auditor bool
	// url is the target it connects to (an index into config.URLs).
	url int
	// dialTime (upgrade to hello) and subTime (subscribe round trip) are set once
	// the connection is open.
	dialTime, subTime time.Duration

	mu         sync.Mutex
	subscribed bool
	pending    []wsclient.Msg // pushes read before the subscribe reply was handled
	start      int64          // version at subscribe
	last       int64          // last version received, in order
	gaps       []gap
	ops        int64 // op messages received (deliveries)
	measured   int64 // of which arrived after the warmup
	lastAt     int64 // unix ns of the latest op
	dups       int64
	outOfOrder int64
	resets     int64
	arrivals   []arrival
	authors    map[int64]string // auditor: version → author client id
	// The editor's view of the document at version last: the shared widget's x and
	// its own widget's y. known is false once a gap makes the view unreliable.
	sharedX, ownY int
	known         bool
}

type opBody struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

type snapshotBody struct {
	Version int64           `json:"version"`
	Items   map[string]item `json:"items"`
}

// onMessage handles every message that is not a reply to a request.
func (s *subscriber) onMessage(m wsclient.Msg) {
	if m.ID != nil {
		// A reply whose request timed out.
		s.run.errs.add("late_reply")
		return
	}
	switch m.Type {
	case "op", "snapshot":
		if m.Channel != "layout:"+s.layout.ID {
			s.run.errs.add("unexpected_channel")
			return
		}
		s.mu.Lock()
		if !s.subscribed {
			s.pending = append(s.pending, m)
			s.mu.Unlock()
			return
		}
		s.pushLocked(m)
		s.mu.Unlock()
		s.wake()
	case "presence":
		s.run.presence.Add(1)
	case "error":
		code := "error"
		if m.Error != nil && m.Error.Code != "" {
			code = m.Error.Code
		}
		s.run.errs.add(code)
	default:
		s.run.errs.add("unexpected_" + m.Type)
	}
}

func (s *subscriber) wake() {
	if s.notify == nil {
		return
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// onSubscribed handles the reply to subscribe: the version and snapshot it starts
// from, then any pushes that were read before it.
func (s *subscriber) onSubscribed(m wsclient.Msg) {
	s.mu.Lock()
	s.start, s.last = m.Version, m.Version
	s.loadSnapshotLocked(m.Snapshot)
	s.subscribed = true
	pending := s.pending
	s.pending = nil
	for _, p := range pending {
		s.pushLocked(p)
	}
	s.mu.Unlock()
	s.wake()
}

func (s *subscriber) loadSnapshotLocked(raw json.RawMessage) {
	if s.ownWidget == "" {
		return
	}
	var l snapshotBody
	if err := json.Unmarshal(raw, &l); err != nil {
		s.known = false
		return
	}
	sh, ok1 := l.Items[s.layout.Shared]
	own, ok2 := l.Items[s.ownWidget]
	s.sharedX, s.ownY, s.known = sh.X, own.Y, ok1 && ok2
}

// pushLocked records an op or a reset snapshot. Versions must come in order, each
// once: a version past last+1 opens a gap, one at or below last either fills a gap
// (out of order) or is a duplicate.
func (s *subscriber) pushLocked(m wsclient.Msg) {
	if m.Type == "snapshot" {
		if !m.Reset {
			s.run.errs.add("snapshot_without_reset")
		}
		// A reset snapshot replaces everything before it: the expectation restarts.
		s.resets++
		s.run.resets.Add(1)
		s.gaps = nil
		s.last = m.Version
		s.loadSnapshotLocked(m.Snapshot)
		return
	}
	v := m.Version
	at := m.At.UnixNano()
	s.ops++
	s.run.deliveries.Add(1)
	if at >= s.run.measureStart.Load() {
		s.measured++
	}
	s.lastAt = max(s.lastAt, at)
	if s.run.samples.Add(1) <= maxSamples {
		s.arrivals = append(s.arrivals, arrival{version: v, at: at})
	}
	if s.auditor {
		if _, ok := s.authors[v]; !ok {
			s.authors[v] = m.Client
		}
	}
	switch {
	case v == s.last+1:
		s.last = v
		s.applyLocked(m.Ops)
	case v > s.last+1:
		s.gaps = append(s.gaps, gap{s.last + 1, v - 1})
		s.last = v
		s.known = false
	default:
		if s.fillLocked(v) {
			s.outOfOrder++
		} else {
			s.dups++
		}
	}
}

// fillLocked removes v from the open gaps, reporting whether it was in one.
func (s *subscriber) fillLocked(v int64) bool {
	for i, g := range s.gaps {
		if v < g.from || v > g.to {
			continue
		}
		switch {
		case g.from == g.to:
			s.gaps = append(s.gaps[:i], s.gaps[i+1:]...)
		case v == g.from:
			s.gaps[i].from++
		case v == g.to:
			s.gaps[i].to--
		default:
			s.gaps = append(s.gaps[:i+1], s.gaps[i:]...)
			s.gaps[i].to, s.gaps[i+1].from = v-1, v+1
		}
		return true
	}
	return false
}

// applyLocked follows the two paths editors change.
func (s *subscriber) applyLocked(raw json.RawMessage) {
	if s.ownWidget == "" || !s.known {
		return
	}
	var ops []opBody
	if err := json.Unmarshal(raw, &ops); err != nil {
		s.known = false
		return
	}
	for _, op := range ops {
		switch op.Path {
		case "/items/" + s.layout.Shared + "/x":
			s.known = s.known && json.Unmarshal(op.Value, &s.sharedX) == nil
		case "/items/" + s.ownWidget + "/y":
			s.known = s.known && json.Unmarshal(op.Value, &s.ownY) == nil
		default:
			// Nothing else is edited during a run; anything else touching these
			// widgets makes the view unreliable.
			if op.Path == "/items/"+s.layout.Shared || op.Path == "/items/"+s.ownWidget {
				s.known = false
			}
		}
	}
}

// missing counts the versions up to final this subscriber never received. Call it
// with mu held, or once the connection has closed.
func (s *subscriber) missing(final int64) int64 {
	var n int64
	for _, g := range s.gaps {
		n += g.to - g.from + 1
	}
	if s.last < final {
		n += final - s.last
	}
	return n
}

func (s *subscriber) reached(final int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribed && s.last >= final && len(s.gaps) == 0
}

// counters counts events by name (error codes and kinds), safe for concurrent use.
type counters struct {
	mu    sync.Mutex
	m     map[string]int64
	total atomic.Int64
}

func newCounters() *counters { return &counters{m: map[string]int64{}} }

func (c *counters) add(name string) {
	c.mu.Lock()
	c.m[name]++
	c.mu.Unlock()
	c.total.Add(1)
}

func (c *counters) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

func closeKind(code int) string { return "closed_" + strconv.Itoa(code) }
