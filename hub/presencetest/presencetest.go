// Package presencetest is the conformance suite every hub.Presence implementation runs.
package presencetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
)

// NewPresences returns n presence stores sharing one backend (n instances), whose
// entries live ttl without a refresh.
type NewPresences func(t testing.TB, n int, ttl time.Duration) []hub.Presence

func clients(es []hub.PresenceEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.User + "/" + e.Client
	}
	slices.Sort(out)
	return out
}

// Run runs the conformance suite.
func Run(t *testing.T, newPresences NewPresences) {
	ctx := context.Background()

	t.Run("JoinListLeaveAcrossInstances", func(t *testing.T) {
		ps := newPresences(t, 2, time.Minute)
		if err := ps[0].Join(ctx, "l1", hub.PresenceEntry{User: "alice", Client: "c-1"}); err != nil {
			t.Fatal(err)
		}
		if err := ps[1].Join(ctx, "l1", hub.PresenceEntry{User: "alice", Client: "c-2"}); err != nil {
			t.Fatal(err)
		}
		if err := ps[1].Join(ctx, "l2", hub.PresenceEntry{User: "bob", Client: "c-3"}); err != nil {
			t.Fatal(err)
		}
		for i, p := range ps {
			es, err := p.List(ctx, "l1")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := clients(es), []string{"alice/c-1", "alice/c-2"}; !slices.Equal(got, want) {
				t.Fatalf("instance %d lists %v, want %v", i, got, want)
			}
		}
		if err := ps[0].Leave(ctx, "l1", "c-2"); err != nil {
			t.Fatal(err)
		}
		es, _ := ps[1].List(ctx, "l1")
		if got, want := clients(es), []string{"alice/c-1"}; !slices.Equal(got, want) {
			t.Fatalf("after leave: %v, want %v", got, want)
		}
		if err := ps[0].Leave(ctx, "l1", "c-missing"); err != nil {
			t.Fatalf("leaving twice: %v", err)
		}
	})

	t.Run("UnrefreshedEntriesExpireOnceRefreshedOnesStay", func(t *testing.T) {
		const ttl = 300 * time.Millisecond
		ps := newPresences(t, 3, ttl)
		dead := hub.PresenceEntry{User: "alice", Client: "c-dead"}
		live := hub.PresenceEntry{User: "alice", Client: "c-live"}
		if err := ps[0].Join(ctx, "l1", dead); err != nil {
			t.Fatal(err)
		}
		if err := ps[1].Join(ctx, "l1", live); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		var (
			mu   sync.Mutex
			gone []hub.PresenceEntry
		)
		for time.Now().Before(deadline) {
			if err := ps[1].Refresh(ctx, "l1", []hub.PresenceEntry{live}); err != nil {
				t.Fatal(err)
			}
			// Two instances expire concurrently: the dead entry is reported once.
			var wg sync.WaitGroup
			for _, p := range ps[1:] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					g, err := p.Expire(ctx, "l1")
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					gone = append(gone, g...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			mu.Lock()
			n := len(gone)
			mu.Unlock()
			if n > 0 {
				break
			}
			time.Sleep(ttl / 5)
		}
		if got := clients(gone); !slices.Equal(got, []string{"alice/c-dead"}) {
			t.Fatalf("expired: %v, want exactly the dead entry once", got)
		}
		es, _ := ps[2].List(ctx, "l1")
		if got := clients(es); !slices.Equal(got, []string{"alice/c-live"}) {
			t.Fatalf("after expiry: %v, want the refreshed entry only", got)
		}
	})

	t.Run("CancelledContextFails", func(t *testing.T) {
		ps := newPresences(t, 1, time.Minute)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := ps[0].Join(cctx, "l1", hub.PresenceEntry{User: "a", Client: "c"}); err == nil {
			t.Fatal("Join with a cancelled context: got nil error")
		}
		if _, err := ps[0].List(cctx, "l1"); err == nil {
			t.Fatal("List with a cancelled context: got nil error")
		}
	})
}
