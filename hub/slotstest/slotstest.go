// Package slotstest is the conformance suite every hub.ConnSlots implementation runs.
package slotstest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
)

// NewSlots returns n slot stores sharing one backend (n instances), whose slots live
// ttl without a refresh.
type NewSlots func(t testing.TB, n int, ttl time.Duration) []hub.ConnSlots

func acquire(t testing.TB, s hub.ConnSlots, user, conn string, max int) bool {
	t.Helper()
	ok, err := s.Acquire(context.Background(), user, conn, max)
	if err != nil {
		t.Fatalf("Acquire(%s, %s, %d): %v", user, conn, max, err)
	}
	return ok
}

// Run runs the conformance suite.
func Run(t *testing.T, newSlots NewSlots) {
	ctx := context.Background()

	t.Run("AcquireUpToMaxAcrossInstancesPerUser", func(t *testing.T) {
		t.Parallel()
		ss := newSlots(t, 2, time.Minute)
		for i, c := range []string{"c-1", "c-2", "c-3"} {
			if !acquire(t, ss[i%2], "alice", c, 3) {
				t.Fatalf("slot %d of 3 for alice refused", i+1)
			}
		}
		if acquire(t, ss[1], "alice", "c-4", 3) {
			t.Fatal("a fourth slot for alice granted with max 3, the three others taken on two instances")
		}
		if !acquire(t, ss[1], "bob", "c-5", 3) {
			t.Fatal("bob refused a slot: alice's slots count against bob")
		}
		if !acquire(t, ss[1], "alice", "c-1", 3) {
			t.Fatal("re-acquiring a slot alice holds refused, want it renewed")
		}
		if !acquire(t, ss[0], "alice", "c-1", 4) || !acquire(t, ss[0], "alice", "c-4", 4) {
			t.Fatal("with max 4, the fourth slot refused")
		}
	})

	t.Run("ReleaseFreesASlotOnEveryInstance", func(t *testing.T) {
		t.Parallel()
		ss := newSlots(t, 2, time.Minute)
		if !acquire(t, ss[0], "alice", "c-1", 1) {
			t.Fatal("first slot refused")
		}
		if acquire(t, ss[1], "alice", "c-2", 1) {
			t.Fatal("second slot granted with max 1")
		}
		if err := ss[0].Release(ctx, "alice", "c-1"); err != nil {
			t.Fatal(err)
		}
		if !acquire(t, ss[1], "alice", "c-2", 1) {
			t.Fatal("after the release, the other instance is refused the slot")
		}
		for _, conn := range []string{"c-1", "c-never"} {
			if err := ss[1].Release(ctx, "alice", conn); err != nil {
				t.Fatalf("releasing %s, which is not held: %v", conn, err)
			}
		}
		if err := ss[1].Release(ctx, "nobody", "c-9"); err != nil {
			t.Fatalf("releasing a slot of a user without any: %v", err)
		}
	})

	t.Run("ConcurrentAcquiresNeverExceedMax", func(t *testing.T) {
		t.Parallel()
		const max, tries = 5, 40
		ss := newSlots(t, 3, time.Minute)
		var granted atomic.Int64
		var wg sync.WaitGroup
		for i := range tries {
			wg.Go(func() {
				ok, err := ss[i%len(ss)].Acquire(ctx, "alice", fmt.Sprintf("c-%d", i), max)
				if err != nil {
					t.Error(err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		wg.Wait()
		if got := granted.Load(); got != max {
			t.Fatalf("%d concurrent acquires with max %d granted %d", tries, max, got)
		}
	})

	t.Run("UnrefreshedSlotsExpireRefreshedOnesStay", func(t *testing.T) {
		t.Parallel()
		const ttl = 300 * time.Millisecond
		ss := newSlots(t, 2, ttl)
		// An instance that died holds c-dead and never refreshes it; the live one
		// refreshes c-live.
		if !acquire(t, ss[0], "alice", "c-dead", 2) || !acquire(t, ss[1], "alice", "c-live", 2) {
			t.Fatal("the first two slots refused")
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if err := ss[1].Refresh(ctx, "alice", []string{"c-live"}); err != nil {
				t.Fatal(err)
			}
			if acquire(t, ss[1], "alice", "c-new", 2) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the dead instance's slot never expired")
			}
			time.Sleep(ttl / 5)
		}
		// c-live stayed: with c-new, alice is at max.
		if err := ss[1].Refresh(ctx, "alice", []string{"c-live", "c-new"}); err != nil {
			t.Fatal(err)
		}
		if acquire(t, ss[0], "alice", "c-other", 2) {
			t.Fatal("a slot granted past max: the refreshed slot was expired with the dead one")
		}
	})

	t.Run("RefreshTakesAnExpiredSlotAgain", func(t *testing.T) {
		t.Parallel()
		const ttl = 200 * time.Millisecond
		ss := newSlots(t, 2, ttl)
		if !acquire(t, ss[0], "alice", "c-1", 1) {
			t.Fatal("first slot refused")
		}
		// Wait until the slot has expired (another instance can take the only one),
		// then give it back.
		deadline := time.Now().Add(10 * time.Second)
		for !acquire(t, ss[1], "alice", "c-probe", 1) {
			if time.Now().After(deadline) {
				t.Fatal("the slot never expired")
			}
			time.Sleep(ttl / 4)
		}
		if err := ss[1].Release(ctx, "alice", "c-probe"); err != nil {
			t.Fatal(err)
		}
		// The connection is still open: its instance's refresh takes the slot again.
		if err := ss[0].Refresh(ctx, "alice", []string{"c-1"}); err != nil {
			t.Fatal(err)
		}
		if acquire(t, ss[1], "alice", "c-2", 1) {
			t.Fatal("a slot granted past max: the refresh did not take the expired slot again")
		}
		if err := ss[0].Refresh(ctx, "alice", nil); err != nil {
			t.Fatalf("refreshing no slots: %v", err)
		}
	})

	t.Run("CancelledContextFails", func(t *testing.T) {
		t.Parallel()
		ss := newSlots(t, 1, time.Minute)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := ss[0].Acquire(cctx, "alice", "c-1", 1); err == nil {
			t.Fatal("Acquire with a cancelled context: got nil error")
		}
		if err := ss[0].Release(cctx, "alice", "c-1"); err == nil {
			t.Fatal("Release with a cancelled context: got nil error")
		}
		if err := ss[0].Refresh(cctx, "alice", []string{"c-1"}); err == nil {
			t.Fatal("Refresh with a cancelled context: got nil error")
		}
		// Nothing was taken.
		if !acquire(t, ss[0], "alice", "c-2", 1) {
			t.Fatal("the cancelled Acquire took a slot")
		}
	})
}
