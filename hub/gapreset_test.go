package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
)

// TestGap_OlderThanTheLogIsAResetSnapshot: when the versions a live subscriber missed
// are no longer in the op log, the hub sends a snapshot marked reset at the head
// instead of ops it cannot have (SPEC §3), and the subscriber's document then equals
// the store's.
func TestGap_OlderThanTheLogIsAResetSnapshot(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		const retention = 5
		br := newLossyBroker(1, 0, 0)
		s := testenv.New(t, testenv.Options{Backend: backend, Broker: br, Retention: retention,
			Hub: func(c *hub.Config) { c.SweepInterval = time.Hour }}) // only the next version reveals the gap
		l, ws := seed(t, s, "alice")
		box := newInbox()
		c := s.Dial(t, "alice", box.add)
		if r := req(t, c, map[string]any{"type": "subscribe", "channel": "layout:" + l.ID}); r.Type != "subscribed" {
			t.Fatalf("subscribe: got %s", r.Raw)
		}
		ctx := context.Background()
		head := l.Version
		commit := func(y int) {
			t.Helper()
			_, res, err := s.Service.EditLayout(ctx, "alice", l.ID, dsync.Edit{Base: head, Author: "alice",
				Ops: []dsync.Op{{Op: "replace", Path: "/items/" + ws[0] + "/y", Value: json.RawMessage(fmt.Sprint(y))}}})
			if err != nil || !res.Committed {
				t.Fatalf("commit: %+v, %v", res, err)
			}
			head = res.Version
		}
		// Every version past the log's reach is lost on the way.
		br.configure(func(b *lossyBroker) { b.dropAll = true })
		for i := range retention + 3 {
			commit(i + 1)
		}
		br.configure(func(b *lossyBroker) { b.dropAll = false })
		commit(100)
		ms := box.waitFor(t, "a reset snapshot", func(ms []wsclient.Msg) bool {
			for _, m := range ofType(ms, "snapshot") {
				if m.Reset && m.Version == head {
					return true
				}
			}
			return false
		})
		if ops := ofType(ms, "op"); len(ops) != 0 {
			t.Fatalf("got %d op messages for versions the log no longer keeps, want only the reset snapshot", len(ops))
		}
		var snap dsync.Layout
		for _, m := range ofType(ms, "snapshot") {
			if err := json.Unmarshal(m.Snapshot, &snap); err != nil {
				t.Fatal(err)
			}
		}
		stored, err := s.Service.Layout(ctx, "alice", l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !dsync.SameLayoutDoc(snap, stored) || snap.Version != stored.Version {
			t.Fatalf("the reset snapshot %+v at v%d, the store %+v at v%d", snap, snap.Version, stored, stored.Version)
		}
	})
}
