package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dashsync/dashsync/internal/testdoc"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/memory"
	dsync "github.com/dashsync/dashsync/sync"
)

// This file tests SPEC §3's co-editing promises end to end, through real sockets and
// real stores: several tabs editing one layout all converge on the store's document,
// each seeing every version exactly once and in order.

// waitLimit bounds every wait for a condition in these tests.
const waitLimit = 20 * time.Second

// doc is a tab's model of its layout.
type doc = testdoc.Doc

var docOf = testdoc.Of

// tab is one browser tab on one layout: a WebSocket subscribed to layout:<id> that
// applies every `op` to its model in the order received, and records every version
// it was sent and anything a correct server would never send.
type tab struct {
	name    string
	c       *wsclient.Client
	channel string

	mu       sync.Mutex
	ready    bool           // the subscribe reply has been applied
	early    []wsclient.Msg // ops read before the subscribe reply was applied
	model    doc            // the document as this tab sees it
	versions []int64        // versions of the `op` messages, in the order received
	ops      []wsclient.Msg // the `op` messages themselves
	problems []string       // out-of-order or repeated versions, resets, unknown ops
	changed  chan struct{}  // signalled after every message
	rebased  int            // acks with rebased: true
}

// dialTab opens a connection for user on s that edits layoutID; it receives
// versions once subscribed.
func dialTab(t testing.TB, s *testenv.Server, user, layoutID, name string) *tab {
	t.Helper()
	tb := &tab{name: name, channel: "layout:" + layoutID, changed: make(chan struct{}, 1)}
	tb.c = s.Dial(t, user, tb.receive)
	return tb
}

// openTab dials and subscribes to layoutID, starting from the snapshot.
func openTab(t testing.TB, s *testenv.Server, user, layoutID, name string) *tab {
	t.Helper()
	tb := dialTab(t, s, user, layoutID, name)
	if r := tb.subscribe(t, nil); r.Reset || len(r.Snapshot) == 0 {
		t.Fatalf("%s: subscribe without since: got %s, want a snapshot", name, r.Raw)
	}
	return tb
}

// subscribe subscribes to the tab's layout. With from, it resumes: since is from's
// version, and the reply's versions (or its reset snapshot) are applied on a copy of
// from.
func (tb *tab) subscribe(t testing.TB, from *doc) wsclient.Msg {
	t.Helper()
	m := map[string]any{"type": "subscribe", "channel": tb.channel}
	if from != nil {
		m["since"] = from.Version
	}
	return tb.subscribed(t, req(t, tb.c, m), from)
}

// subscribed applies the reply to a subscribe (see subscribe) and returns it.
func (tb *tab) subscribed(t testing.TB, r wsclient.Msg, from *doc) wsclient.Msg {
	t.Helper()
	if r.Type != "subscribed" {
		t.Fatalf("%s: subscribe: got %s, want subscribed", tb.name, r.Raw)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch {
	case len(r.Snapshot) > 0:
		var l dsync.Layout
		if err := json.Unmarshal(r.Snapshot, &l); err != nil {
			t.Fatalf("%s: snapshot: %v", tb.name, err)
		}
		tb.model = docOf(l)
	case from != nil:
		tb.model = from.Clone()
		var vs []struct {
			Version int64      `json:"version"`
			Ops     []dsync.Op `json:"ops"`
		}
		if err := json.Unmarshal(r.Ops, &vs); err != nil {
			t.Fatalf("%s: resume ops: %v in %s", tb.name, err, r.Raw)
		}
		for _, v := range vs {
			tb.applyLocked(v.Version, v.Ops)
		}
	default:
		t.Fatalf("%s: subscribe: got %s, want a snapshot", tb.name, r.Raw)
	}
	if tb.model.Version != r.Version {
		t.Fatalf("%s: subscribe: the reply brings the model to version %d, but says version %d", tb.name, tb.model.Version, r.Version)
	}
	// Versions read while the reply was on its way follow it on the wire.
	tb.ready = true
	for _, m := range tb.early {
		tb.opLocked(m)
	}
	tb.early = nil
	select {
	case tb.changed <- struct{}{}:
	default:
	}
	return r
}

// receive is the connection's callback for pushed messages.
func (tb *tab) receive(m wsclient.Msg) {
	tb.mu.Lock()
	switch m.Type {
	case "op":
		if tb.ready {
			tb.opLocked(m)
		} else {
			tb.early = append(tb.early, m)
		}
	case "snapshot":
		tb.problems = append(tb.problems, fmt.Sprintf("a snapshot (reset %v) at version %d replaced the versions before it", m.Reset, m.Version))
		var l dsync.Layout
		if err := json.Unmarshal(m.Snapshot, &l); err == nil {
			tb.model = docOf(l)
		}
	case "presence":
	default:
		tb.problems = append(tb.problems, "unexpected message "+string(m.Raw))
	}
	tb.mu.Unlock()
	select {
	case tb.changed <- struct{}{}:
	default:
	}
}

func (tb *tab) opLocked(m wsclient.Msg) {
	if m.Channel != tb.channel {
		tb.problems = append(tb.problems, fmt.Sprintf("op for %s on a tab of %s", m.Channel, tb.channel))
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
func (tb *tab) applyLocked(version int64, ops []dsync.Op) {
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

// doc returns a copy of the tab's model.
func (tb *tab) doc() doc {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.model.Clone()
}

// await waits until the tab's model is at version v or later.
func (tb *tab) await(ctx context.Context, v int64) error {
	for {
		if tb.doc().Version >= v {
			return nil
		}
		select {
		case <-tb.changed:
		case <-tb.c.Done():
			return fmt.Errorf("%s: connection closed waiting for version %d: %v", tb.name, v, tb.c.Err())
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for version %d, at %d: %w", tb.name, v, tb.doc().Version, ctx.Err())
		}
	}
}

func (tb *tab) waitVersion(t testing.TB, v int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := tb.await(ctx, v); err != nil {
		t.Fatal(err)
	}
}

// edit sends one edit and returns the reply.
func (tb *tab) edit(ctx context.Context, base int64, editID string, ops ...map[string]any) (wsclient.Msg, error) {
	m := map[string]any{"type": "edit", "channel": tb.channel, "base": base, "ops": ops}
	if editID != "" {
		m["editId"] = editID
	}
	return tb.c.Request(ctx, m)
}

// checkVersions fails t unless the tab was sent exactly the versions from … to, in
// order, as `op` messages, and nothing a correct server never sends.
func (tb *tab) checkVersions(t testing.TB, from, to int64) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems[:min(len(tb.problems), 10)] {
		t.Errorf("%s: %s", tb.name, p)
	}
	var want []int64
	for v := from; v <= to; v++ {
		want = append(want, v)
	}
	if !slices.Equal(tb.versions, want) {
		t.Errorf("%s: got %d op messages %s, want versions %d…%d once each, in order", tb.name, len(tb.versions), summarize(tb.versions), from, to)
	}
}

// summarize shows a version list briefly: its ends and where it stops being consecutive.
func summarize(vs []int64) string {
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

// checkConverged fails t unless every tab's model equals the store's layout.
func checkConverged(t testing.TB, s *testenv.Server, owner, layoutID string, tabs ...*tab) dsync.Layout {
	t.Helper()
	l, err := s.Service.Layout(context.Background(), owner, layoutID)
	if err != nil {
		t.Fatal(err)
	}
	want := docOf(l)
	for _, tb := range tabs {
		if got := tb.doc(); !got.Equal(want) {
			t.Errorf("%s: got document %s, want the store's %s", tb.name, got, want)
		}
	}
	return l
}

// editLoop has tb send n edits one after the other, each on the last version the tab
// has seen, setting path to value(i). Every edit must be acknowledged (not conflict);
// the ack's rebased flag must say whether the base was behind the version it
// committed on. After each ack the tab waits to see its own version, so its next base
// covers its own last edit, as a browser's would.
func editLoop(ctx context.Context, tb *tab, n int, path string, value func(i int) int) error {
	for i := range n {
		base := tb.doc().Version
		r, err := tb.edit(ctx, base, uuid.NewString(), op("replace", path, value(i)))
		if err != nil {
			return fmt.Errorf("%s: edit %d: %w", tb.name, i, err)
		}
		if r.Type != "ack" {
			return fmt.Errorf("%s: edit %d (%s = %d on base %d): got %s, want an ack", tb.name, i, path, value(i), base, r.Raw)
		}
		if wantRebased := base < r.Version-1; r.Rebased != wantRebased {
			return fmt.Errorf("%s: edit %d on base %d committed as %d: got rebased %v, want %v", tb.name, i, base, r.Version, r.Rebased, wantRebased)
		}
		if r.Rebased {
			tb.mu.Lock()
			tb.rebased++
			tb.mu.Unlock()
		}
		if err := tb.await(ctx, r.Version); err != nil {
			return err
		}
	}
	return nil
}

// coEdit runs a and b's edit loops concurrently on disjoint paths (a moves widget wa
// through x values, b widget wb through y values), then checks SPEC §3: every edit
// commits, both tabs see versions 2 … 1+2n exactly once in order, and both end with
// the store's document.
func coEdit(t *testing.T, s *testenv.Server, owner, layoutID string, a, b *tab, wa, wb string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		// Widget a is 6 wide on 12 columns: x cycles 1 … 6, 0, never repeating its last value.
		errs <- editLoop(ctx, a, n, "/items/"+wa+"/x", func(i int) int { return (i + 1) % 7 })
	})
	wg.Go(func() {
		errs <- editLoop(ctx, b, n, "/items/"+wb+"/y", func(i int) int { return i + 1 })
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			cancel()
			t.Fatal(err)
		}
	}
	last := int64(1 + 2*n)
	a.waitVersion(t, last)
	b.waitVersion(t, last)
	t.Logf("%d edits per tab in %v; rebased: %s %d, %s %d", n, time.Since(start).Round(time.Millisecond), a.name, a.rebased, b.name, b.rebased)

	a.checkVersions(t, 2, last)
	b.checkVersions(t, 2, last)
	l := checkConverged(t, s, owner, layoutID, a, b)
	if l.Version != last {
		t.Errorf("store: got version %d, want %d (one per edit)", l.Version, last)
	}
	if want := (dsync.Item{X: (n) % 7, Y: 0, W: 6, H: 4}); l.Items[wa] != want {
		t.Errorf("store: item a: got %+v, want %+v", l.Items[wa], want)
	}
	if want := (dsync.Item{X: 6, Y: n, W: 6, H: 4}); l.Items[wb] != want {
		t.Errorf("store: item b: got %+v, want %+v", l.Items[wb], want)
	}
	// Each tab sends on the last version it has seen while the other keeps committing:
	// without rebasing, nearly every edit would have conflicted.
	if a.rebased+b.rebased == 0 {
		t.Errorf("no edit was rebased: the tabs never edited concurrently, so the test proved nothing")
	}
}

func TestCoEdit_NonOverlappingEditsFromTwoTabsAllCommit(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := testenv.New(t, testenv.Options{Backend: backend})
		l, ws := seed(t, s, "alice")
		a := openTab(t, s, "alice", l.ID, "tab A")
		b := openTab(t, s, "alice", l.ID, "tab B")
		coEdit(t, s, "alice", l.ID, a, b, ws[0], ws[1], 1000)
	})
}

func TestCoEdit_OverlappingEditLoserAppliesWinnerAndResends(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := testenv.New(t, testenv.Options{Backend: backend})
		l, ws := seed(t, s, "alice")
		path := "/items/" + ws[0] + "/x"
		tabs := []*tab{openTab(t, s, "alice", l.ID, "tab A"), openTab(t, s, "alice", l.ID, "tab B")}
		values := []int{3, 5}

		// Both tabs move widget 0 on version 1, at the same moment.
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		replies := make([]wsclient.Msg, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		go1 := make(chan struct{})
		for i, tb := range tabs {
			wg.Go(func() {
				<-go1
				replies[i], errs[i] = tb.edit(ctx, 1, uuid.NewString(), op("replace", path, values[i]))
			})
		}
		close(go1)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}

		winner, loser := 0, 1
		if replies[0].Type != "ack" {
			winner, loser = 1, 0
		}
		if r := replies[winner]; r.Type != "ack" || r.Version != 2 || r.Rebased {
			t.Fatalf("%s: got %s, want an ack of version 2, not rebased", tabs[winner].name, r.Raw)
		}
		r := replies[loser]
		if r.Type != "conflict" || r.Version != 2 {
			t.Fatalf("%s: got %s, want a conflict at version 2", tabs[loser].name, r.Raw)
		}
		var cs []dsync.Conflict
		if err := json.Unmarshal(r.Conflicts, &cs); err != nil {
			t.Fatalf("conflicts: %v in %s", err, r.Raw)
		}
		if want := []dsync.Conflict{{Op: 0, Path: path, Version: 2, Reason: dsync.ReasonOverlap}}; !slices.Equal(cs, want) {
			t.Fatalf("conflicts: got %+v, want %+v", cs, want)
		}

		// The loser applies the winner's version, then resends its move on top of it.
		lt := tabs[loser]
		lt.waitVersion(t, 2)
		if got := lt.doc().Items[ws[0]].X; got != values[winner] {
			t.Fatalf("%s after the winner's op: got x %d, want the winner's %d", lt.name, got, values[winner])
		}
		r, err := lt.edit(ctx, 2, uuid.NewString(), op("replace", path, values[loser]))
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != "ack" || r.Version != 3 || r.Rebased {
			t.Fatalf("%s resend on version 2: got %s, want an ack of version 3", lt.name, r.Raw)
		}

		for _, tb := range tabs {
			tb.waitVersion(t, 3)
			tb.checkVersions(t, 2, 3)
		}
		got := checkConverged(t, s, "alice", l.ID, tabs...)
		if got.Items[ws[0]].X != values[loser] {
			t.Errorf("store: got x %d, want the resent %d", got.Items[ws[0]].X, values[loser])
		}
	})
}

func TestCoEdit_ResentEditIDIsAppliedOnceAlsoFromANewConnection(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := testenv.New(t, testenv.Options{Backend: backend})
		l, ws := seed(t, s, "alice")
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		watcher := openTab(t, s, "alice", l.ID, "watching tab")
		editor := openTab(t, s, "alice", l.ID, "editing tab")
		editID := uuid.NewString()
		move := op("replace", "/items/"+ws[0]+"/x", 3)

		first, err := editor.edit(ctx, 1, editID, move)
		if err != nil || first.Type != "ack" || first.Version != 2 {
			t.Fatalf("first send: got %s, %v; want an ack of version 2", first.Raw, err)
		}
		cases := []struct {
			name string
			from func(t *testing.T) *tab
		}{
			{"on the same connection", func(*testing.T) *tab { return editor }},
			{"from a new connection", func(t *testing.T) *tab { return openTab(t, s, "alice", l.ID, "reconnected tab") }},
			{"from a connection that never subscribed", func(t *testing.T) *tab { return dialTab(t, s, "alice", l.ID, "bare connection") }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r, err := tc.from(t).edit(ctx, 1, editID, move)
				if err != nil {
					t.Fatal(err)
				}
				if r.Type != "ack" || r.Version != first.Version || r.Rebased != first.Rebased {
					t.Fatalf("resend: got %s, want the original ack %s", r.Raw, first.Raw)
				}
			})
		}

		// Another version commits; a resend still gets the original ack, not a conflict.
		other, _, err := s.Service.EditLayout(ctx, "alice", l.ID, dsync.Edit{Base: 2, Author: "alice",
			Ops: []dsync.Op{{Op: "replace", Path: "/items/" + ws[1] + "/y", Value: json.RawMessage("7")}}})
		if err != nil || other.Version != 3 {
			t.Fatalf("a later edit: version %d, %v", other.Version, err)
		}
		r, err := dialTab(t, s, "alice", l.ID, "late tab").edit(ctx, 1, editID, move)
		if err != nil || r.Type != "ack" || r.Version != 2 {
			t.Fatalf("resend after version 3: got %s, %v; want the original ack of version 2", r.Raw, err)
		}

		got, err := s.Service.Layout(ctx, "alice", l.ID)
		if err != nil || got.Version != 3 {
			t.Fatalf("layout: got version %d, %v; want 3 (the edit once, the later edit once)", got.Version, err)
		}
		log, err := s.Store.LayoutChanges(ctx, l.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var withID []int64
		for _, c := range log {
			if c.EditID == editID {
				withID = append(withID, c.Version)
			}
		}
		if len(log) != 3 || !slices.Equal(withID, []int64{2}) {
			t.Fatalf("op log: got %d entries, versions %v carrying the editId; want 3 entries, version 2 alone carrying it", len(log), withID)
		}
		// Subscribers were sent each version once: the resends published nothing.
		for _, tb := range []*tab{watcher, editor} {
			tb.waitVersion(t, 3)
			tb.checkVersions(t, 2, 3)
		}
		checkConverged(t, s, "alice", l.ID, watcher, editor)
	})
}

func TestCoEdit_TwoInstancesOneBus(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		st := testenv.OpenStore(t, backend)
		bus := memory.NewBus()
		one := testenv.New(t, testenv.Options{Backend: backend, Store: st, Broker: bus.Broker()})
		two := testenv.New(t, testenv.Options{Backend: backend, Store: st, Broker: bus.Broker()})
		l, ws := seed(t, one, "alice")
		a := openTab(t, one, "alice", l.ID, "tab on instance one")
		b := openTab(t, two, "alice", l.ID, "tab on instance two")
		coEdit(t, one, "alice", l.ID, a, b, ws[0], ws[1], 300)
		checkConverged(t, two, "alice", l.ID, a, b)
	})
}

// commitY commits n edits through the service, one after the other, each setting
// widget w's y to the new version number (so every edit changes something). It
// returns the last version.
func commitY(t testing.TB, s *testenv.Server, owner, layoutID, w string, n int) int64 {
	t.Helper()
	ctx := context.Background()
	l, err := s.Service.Layout(ctx, owner, layoutID)
	if err != nil {
		t.Fatal(err)
	}
	v := l.Version
	for range n {
		_, res, err := s.Service.EditLayout(ctx, owner, layoutID, dsync.Edit{Base: v, Author: owner,
			Ops: []dsync.Op{{Op: dsync.OpReplace, Path: "/items/" + w + "/y", Value: json.RawMessage(strconv.FormatInt(v+1, 10))}}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Version != v+1 {
			t.Fatalf("edit on version %d: got version %d", v, res.Version)
		}
		v = res.Version
	}
	return v
}
