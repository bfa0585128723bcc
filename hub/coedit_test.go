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

	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testtab"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/memory"
	dsync "github.com/dashsync/dashsync/sync"
)

// This file tests SPEC §3's co-editing promises end to end, through real sockets and
// real stores: several tabs editing one layout all converge on the store's document,
// each seeing every version exactly once and in order.

// waitLimit bounds every wait for a condition in these tests.
const waitLimit = 20 * time.Second

// tabOptions are the options of every tab in these tests: each wait bounded by
// waitLimit, a reply that comes after its request stopped waiting a problem.
var tabOptions = testtab.Options{Wait: waitLimit}

// dialTab opens a connection for user on s that edits layoutID; it receives
// versions once subscribed.
func dialTab(t testing.TB, s *testenv.Server, user, layoutID, name string) *testtab.Tab {
	t.Helper()
	return testtab.Dial(t, s, user, layoutID, name, tabOptions)
}

// openTab dials and subscribes to layoutID, starting from the snapshot.
func openTab(t testing.TB, s *testenv.Server, user, layoutID, name string) *testtab.Tab {
	t.Helper()
	return testtab.Open(t, s, user, layoutID, name, tabOptions)
}

// editLoop has tb send n edits one after the other, each on the last version the tab
// has seen, setting path to value(i). Every edit must be acknowledged (not conflict);
// the ack's rebased flag must say whether the base was behind the version it
// committed on. After each ack the tab waits to see its own version, so its next base
// covers its own last edit, as a browser's would.
func editLoop(ctx context.Context, tb *testtab.Tab, n int, path string, value func(i int) int) error {
	for i := range n {
		base := tb.Doc().Version
		r, err := tb.Edit(ctx, base, uuid.NewString(), []map[string]any{op("replace", path, value(i))})
		if err != nil {
			return fmt.Errorf("%s: edit %d: %w", tb.Name, i, err)
		}
		if r.Type != "ack" {
			return fmt.Errorf("%s: edit %d (%s = %d on base %d): got %s, want an ack", tb.Name, i, path, value(i), base, r.Raw)
		}
		if wantRebased := base < r.Version-1; r.Rebased != wantRebased {
			return fmt.Errorf("%s: edit %d on base %d committed as %d: got rebased %v, want %v", tb.Name, i, base, r.Version, r.Rebased, wantRebased)
		}
		if r.Rebased {
			tb.AddRebased()
		}
		if err := tb.Await(ctx, r.Version); err != nil {
			return err
		}
	}
	return nil
}

// coEdit runs a and b's edit loops concurrently on disjoint paths (a moves widget wa
// through x values, b widget wb through y values), then checks SPEC §3: every edit
// commits, both tabs see versions 2 … 1+2n exactly once in order, and both end with
// the store's document.
func coEdit(t *testing.T, s *testenv.Server, owner, layoutID string, a, b *testtab.Tab, wa, wb string, n int) {
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
	a.WaitVersion(t, last)
	b.WaitVersion(t, last)
	t.Logf("%d edits per tab in %v; rebased: %s %d, %s %d", n, time.Since(start).Round(time.Millisecond), a.Name, a.Rebased(), b.Name, b.Rebased())

	a.CheckVersions(t, 2, last)
	b.CheckVersions(t, 2, last)
	l := testtab.CheckConverged(t, s, owner, layoutID, a, b)
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
	if a.Rebased()+b.Rebased() == 0 {
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
		tabs := []*testtab.Tab{openTab(t, s, "alice", l.ID, "tab A"), openTab(t, s, "alice", l.ID, "tab B")}
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
				replies[i], errs[i] = tb.Edit(ctx, 1, uuid.NewString(), []map[string]any{op("replace", path, values[i])})
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
			t.Fatalf("%s: got %s, want an ack of version 2, not rebased", tabs[winner].Name, r.Raw)
		}
		r := replies[loser]
		if r.Type != "conflict" || r.Version != 2 {
			t.Fatalf("%s: got %s, want a conflict at version 2", tabs[loser].Name, r.Raw)
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
		lt.WaitVersion(t, 2)
		if got := lt.Doc().Items[ws[0]].X; got != values[winner] {
			t.Fatalf("%s after the winner's op: got x %d, want the winner's %d", lt.Name, got, values[winner])
		}
		r, err := lt.Edit(ctx, 2, uuid.NewString(), []map[string]any{op("replace", path, values[loser])})
		if err != nil {
			t.Fatal(err)
		}
		if r.Type != "ack" || r.Version != 3 || r.Rebased {
			t.Fatalf("%s resend on version 2: got %s, want an ack of version 3", lt.Name, r.Raw)
		}

		for _, tb := range tabs {
			tb.WaitVersion(t, 3)
			tb.CheckVersions(t, 2, 3)
		}
		got := testtab.CheckConverged(t, s, "alice", l.ID, tabs...)
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
		move := []map[string]any{op("replace", "/items/"+ws[0]+"/x", 3)}

		first, err := editor.Edit(ctx, 1, editID, move)
		if err != nil || first.Type != "ack" || first.Version != 2 {
			t.Fatalf("first send: got %s, %v; want an ack of version 2", first.Raw, err)
		}
		cases := []struct {
			name string
			from func(t *testing.T) *testtab.Tab
		}{
			{"on the same connection", func(*testing.T) *testtab.Tab { return editor }},
			{"from a new connection", func(t *testing.T) *testtab.Tab { return openTab(t, s, "alice", l.ID, "reconnected tab") }},
			{"from a connection that never subscribed", func(t *testing.T) *testtab.Tab { return dialTab(t, s, "alice", l.ID, "bare connection") }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r, err := tc.from(t).Edit(ctx, 1, editID, move)
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
		r, err := dialTab(t, s, "alice", l.ID, "late tab").Edit(ctx, 1, editID, move)
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
		for _, tb := range []*testtab.Tab{watcher, editor} {
			tb.WaitVersion(t, 3)
			tb.CheckVersions(t, 2, 3)
		}
		testtab.CheckConverged(t, s, "alice", l.ID, watcher, editor)
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
		testtab.CheckConverged(t, two, "alice", l.ID, a, b)
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
