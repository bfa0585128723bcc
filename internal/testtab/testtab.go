// Package testtab is for tests: it plays a browser tab on one layout over the public
// WebSocket protocol, applying every `op` it is sent to its own model of the document
// (a testdoc.Doc) in the order received, and recording every version it was sent and
// anything a correct server would never send, so that a test can check SPEC §3's
// delivery promise (every version once, in order) and that every tab converges on
// the store's document.
package testtab

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dashsync/dashsync/internal/testdoc"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
)

// DefaultWait is the bound on a tab's waits when Options.Wait is zero.
const DefaultWait = 30 * time.Second

// Options configure Dial and Open.
type Options struct {
	// Wait bounds each of the tab's waits: for the reply to a subscribe, in
	// WaitVersion and in AwaitWithin. Zero: DefaultWait.
	Wait time.Duration
	// KeepLate keeps the replies that came after their request stopped waiting (see
	// Late) instead of recording each as a problem, for tests that give up on
	// requests on purpose.
	KeepLate bool
}

// Tab is one browser tab on one layout: a WebSocket for channel layout:<id> that,
// once subscribed, applies every `op` to its model in the order received, and records
// every version it was sent and anything a correct server would never send.
type Tab struct {
	// Name names the tab in failure messages.
	Name string
	// Conn is the tab's connection, closed at cleanup.
	Conn *wsclient.Client
	// Channel is layout:<id>.
	Channel string

	wait     time.Duration
	keepLate bool

	mu       sync.Mutex
	ready    bool           // the subscribe reply has been applied
	early    []wsclient.Msg // ops read before the subscribe reply was applied
	model    testdoc.Doc    // the document as this tab sees it
	versions []int64        // versions of the `op` messages, in the order received
	ops      []wsclient.Msg // the `op` messages themselves
	late     []wsclient.Msg // replies that came after their request stopped waiting (KeepLate)
	problems []string       // out-of-order or repeated versions, resets, unknown messages
	changed  chan struct{}  // signalled after every message
	rebased  int            // acks counted by AddRebased
}

// Dial opens a connection for user on s that edits layoutID; it receives versions
// once subscribed (Subscribe, or Subscribed with a reply got otherwise).
func Dial(t testing.TB, s *testenv.Server, user, layoutID, name string, o Options) *Tab {
	t.Helper()
	return DialToken(t, s, testenv.Token(t, user), layoutID, name, o)
}

// DialToken is Dial with a bearer token: a link's, say (SPEC §10).
func DialToken(t testing.TB, s *testenv.Server, token, layoutID, name string, o Options) *Tab {
	t.Helper()
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	tb := &Tab{Name: name, Channel: "layout:" + layoutID, wait: o.Wait, keepLate: o.KeepLate, changed: make(chan struct{}, 1)}
	tb.Conn = s.DialToken(t, token, tb.receive)
	return tb
}

// Open dials and subscribes to layoutID, starting from the snapshot.
func Open(t testing.TB, s *testenv.Server, user, layoutID, name string, o Options) *Tab {
	t.Helper()
	return OpenToken(t, s, testenv.Token(t, user), layoutID, name, o)
}

// OpenToken is Open with a bearer token: a link's, say (SPEC §10).
func OpenToken(t testing.TB, s *testenv.Server, token, layoutID, name string, o Options) *Tab {
	t.Helper()
	tb := DialToken(t, s, token, layoutID, name, o)
	if r := tb.Subscribe(t, nil); r.Reset || len(r.Snapshot) == 0 {
		t.Fatalf("%s: subscribe without since: got %s, want a snapshot", name, r.Raw)
	}
	return tb
}

// Subscribe subscribes to the tab's layout and returns the reply. With from, it
// resumes: since is from's version, and the reply's versions (or its reset snapshot)
// are applied on a copy of from.
func (tb *Tab) Subscribe(t testing.TB, from *testdoc.Doc) wsclient.Msg {
	t.Helper()
	m := map[string]any{"type": "subscribe", "channel": tb.Channel}
	if from != nil {
		m["since"] = from.Version
	}
	ctx, cancel := context.WithTimeout(context.Background(), tb.wait)
	defer cancel()
	r, err := tb.Conn.Request(ctx, m)
	if err != nil {
		t.Fatalf("request %v: %v", m, err)
	}
	return tb.Subscribed(t, r, from)
}

// Subscribed applies r, the reply to a subscribe the test sent itself, as Subscribe
// does, and returns it.
func (tb *Tab) Subscribed(t testing.TB, r wsclient.Msg, from *testdoc.Doc) wsclient.Msg {
	t.Helper()
	if r.Type != "subscribed" {
		t.Fatalf("%s: subscribe: got %s, want subscribed", tb.Name, r.Raw)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch {
	case len(r.Snapshot) > 0:
		var l dsync.Layout
		if err := json.Unmarshal(r.Snapshot, &l); err != nil {
			t.Fatalf("%s: snapshot: %v", tb.Name, err)
		}
		tb.model = testdoc.Of(l)
	case from != nil:
		tb.model = from.Clone()
		var vs []struct {
			Version int64      `json:"version"`
			Ops     []dsync.Op `json:"ops"`
		}
		if err := json.Unmarshal(r.Ops, &vs); err != nil {
			t.Fatalf("%s: resume ops: %v in %s", tb.Name, err, r.Raw)
		}
		for _, v := range vs {
			tb.applyLocked(v.Version, v.Ops)
		}
	default:
		t.Fatalf("%s: subscribe: got %s, want a snapshot", tb.Name, r.Raw)
	}
	if tb.model.Version != r.Version {
		t.Fatalf("%s: subscribe: the reply brings the model to version %d, but says version %d", tb.Name, tb.model.Version, r.Version)
	}
	// Versions read while the reply was on its way follow it on the wire.
	tb.ready = true
	for _, m := range tb.early {
		tb.opLocked(m)
	}
	tb.early = nil
	tb.signal()
	return r
}

// receive is the connection's callback for pushed messages.
func (tb *Tab) receive(m wsclient.Msg) {
	tb.mu.Lock()
	switch {
	case m.ID != nil && tb.keepLate:
		tb.late = append(tb.late, m)
	case m.Type == "op" && tb.ready:
		tb.opLocked(m)
	case m.Type == "op":
		tb.early = append(tb.early, m)
	case m.Type == "snapshot":
		tb.problems = append(tb.problems, fmt.Sprintf("a snapshot (reset %v) at version %d replaced the versions before it", m.Reset, m.Version))
		var l dsync.Layout
		if err := json.Unmarshal(m.Snapshot, &l); err == nil {
			tb.model = testdoc.Of(l)
		}
	case m.Type == "presence":
	default:
		tb.problems = append(tb.problems, "unexpected message "+string(m.Raw))
	}
	tb.mu.Unlock()
	tb.signal()
}

func (tb *Tab) signal() {
	select {
	case tb.changed <- struct{}{}:
	default:
	}
}

func (tb *Tab) opLocked(m wsclient.Msg) {
	if m.Channel != tb.Channel {
		tb.problems = append(tb.problems, fmt.Sprintf("op for %s on a tab of %s", m.Channel, tb.Channel))
		return
	}
	var ops []dsync.Op
	if err := json.Unmarshal(m.Ops, &ops); err != nil {
		tb.problems = append(tb.problems, fmt.Sprintf("op %d: %v", m.Version, err))
		return
	}
	tb.versions = append(tb.versions, m.Version)
	tb.ops = append(tb.ops, m)
	tb.applyLocked(m.Version, ops)
}

// applyLocked applies one version to the model; it must be the model's next one.
func (tb *Tab) applyLocked(version int64, ops []dsync.Op) {
	if version != tb.model.Version+1 {
		tb.problems = append(tb.problems, fmt.Sprintf("got version %d on top of version %d", version, tb.model.Version))
		if version <= tb.model.Version {
			return
		}
	}
	if err := tb.model.Apply(ops); err != nil {
		tb.problems = append(tb.problems, fmt.Sprintf("version %d: %v", version, err))
	}
	tb.model.Version = version
}

// Doc returns a copy of the tab's model.
func (tb *Tab) Doc() testdoc.Doc {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.model.Clone()
}

// Ops returns the `op` messages the tab was sent once subscribed, in the order
// received.
func (tb *Tab) Ops() []wsclient.Msg {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Clone(tb.ops)
}

// Late returns the replies that came after their request stopped waiting, kept with
// Options.KeepLate.
func (tb *Tab) Late() []wsclient.Msg {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return slices.Clone(tb.late)
}

// AddRebased counts one ack with rebased: true, for tests that tally them per tab.
func (tb *Tab) AddRebased() {
	tb.mu.Lock()
	tb.rebased++
	tb.mu.Unlock()
}

// Rebased is how many acks AddRebased counted.
func (tb *Tab) Rebased() int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.rebased
}

// Await waits until the tab's model is at version v or later.
func (tb *Tab) Await(ctx context.Context, v int64) error {
	for {
		if tb.Doc().Version >= v {
			return nil
		}
		select {
		case <-tb.changed:
		case <-tb.Conn.Done():
			return fmt.Errorf("%s: connection closed waiting for version %d: %v", tb.Name, v, tb.Conn.Err())
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for version %d, at %d: %w", tb.Name, v, tb.Doc().Version, ctx.Err())
		}
	}
}

// AwaitWithin is Await bounded by the tab's wait as well, so a version that never
// comes fails a run long before the run's own deadline.
func (tb *Tab) AwaitWithin(ctx context.Context, v int64) error {
	ctx, cancel := context.WithTimeout(ctx, tb.wait)
	defer cancel()
	return tb.Await(ctx, v)
}

// WaitVersion waits until the tab's model is at version v or later, failing t after
// the tab's wait.
func (tb *Tab) WaitVersion(t testing.TB, v int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tb.wait)
	defer cancel()
	if err := tb.Await(ctx, v); err != nil {
		t.Fatal(err)
	}
}

// Edit sends one edit on the tab's channel and returns the reply. ops is the edit's
// op list as it is marshalled: []dsync.Op, or []map[string]any, say. An empty editID
// sends none.
func (tb *Tab) Edit(ctx context.Context, base int64, editID string, ops any) (wsclient.Msg, error) {
	m := map[string]any{"type": "edit", "channel": tb.Channel, "base": base, "ops": ops}
	if editID != "" {
		m["editId"] = editID
	}
	return tb.Conn.Request(ctx, m)
}

// CheckVersions fails t unless the tab was sent exactly the versions from … to, in
// order, as `op` messages, and nothing a correct server never sends.
func (tb *Tab) CheckVersions(t testing.TB, from, to int64) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems[:min(len(tb.problems), 10)] {
		t.Errorf("%s: %s", tb.Name, p)
	}
	var want []int64
	for v := from; v <= to; v++ {
		want = append(want, v)
	}
	if !slices.Equal(tb.versions, want) {
		t.Errorf("%s: got %d op messages %s, want versions %d…%d once each, in order", tb.Name, len(tb.versions), Summarize(tb.versions), from, to)
	}
}

// Summarize shows a version list briefly: its ends and where it stops being
// consecutive.
func Summarize(vs []int64) string {
	if len(vs) == 0 {
		return "[]"
	}
	s := fmt.Sprintf("[%d", vs[0])
	for i := 1; i < len(vs); i++ {
		if vs[i] != vs[i-1]+1 {
			s += fmt.Sprintf(" … %d, %d", vs[i-1], vs[i])
		}
	}
	return s + fmt.Sprintf(" … %d]", vs[len(vs)-1])
}

// CheckConverged fails t unless every tab's model equals owner's layout layoutID as
// s's store has it, and returns that layout.
func CheckConverged(t testing.TB, s *testenv.Server, owner, layoutID string, tabs ...*Tab) dsync.Layout {
	t.Helper()
	l, err := s.Service.Layout(context.Background(), owner, layoutID)
	if err != nil {
		t.Fatal(err)
	}
	want := testdoc.Of(l)
	for _, tb := range tabs {
		if got := tb.Doc(); !got.Equal(want) {
			t.Errorf("%s: got document %s, want the store's %s", tb.Name, got, want)
		}
	}
	return l
}
