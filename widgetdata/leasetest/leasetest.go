// Package leasetest is the conformance suite every widgetdata.Leases implementation
// runs: each implementation's test is a few lines calling Run with a constructor. It
// checks the contract documented on widgetdata.Leases.
//
// TTLs here are real and short (the suite waits for an expiry by polling with a
// deadline, never by one fixed sleep), so implementations run with their real clocks.
package leasetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashsync/dashsync/widgetdata"
)

// NewLeases returns n handles on one fresh backend (sharing nothing with the backends
// of other calls), released at t's cleanup. Handles that are different values are
// different instances (store/redis: each with its own id); equal values are one
// instance (store/memory: all n are the same Leases, as in one process). Handles must
// be comparable (pointers).
type NewLeases func(t testing.TB, n int) []widgetdata.Leases

const (
	long = time.Minute            // a ttl no test outlives
	ttl  = 150 * time.Millisecond // a ttl the suite waits out
	wait = 10 * time.Second       // the deadline of every poll for an expiry
)

// Run runs the conformance suite.
func Run(t *testing.T, newLeases NewLeases) {
	cases := []struct {
		name string
		n    int
		run  func(t *testing.T, ls []widgetdata.Leases)
	}{
		{"OneInstanceGetsAKey", 3, testOneGetsIt},
		{"ConcurrentAcquiresOneWinner", 4, testConcurrent},
		{"KeysAreIndependent", 2, testKeysIndependent},
		{"FreeAgainAfterTTL", 2, testExpiry},
		{"ReleaseFreesAtOnce", 2, testReleaseFrees},
		{"ReleaseOfAKeyNotHeld", 2, testReleaseNotHeld},
		{"ReleaseAfterExpiryIsNotAnError", 2, testReleaseAfterExpiry},
		{"ReleaseLeavesAnotherInstancesLease", 3, testReleaseLeavesOthers},
		{"NonPositiveTTLRefused", 2, testNonPositiveTTL},
		{"DoneContext", 2, testDoneContext},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ls := newLeases(t, c.n)
			if len(ls) != c.n {
				t.Fatalf("NewLeases(%d): got %d handles, want %d", c.n, len(ls), c.n)
			}
			c.run(t, ls)
		})
	}
}

// acquire is Acquire with a background context, failing t on an error.
func acquire(t testing.TB, l widgetdata.Leases, key string, ttl time.Duration) bool {
	t.Helper()
	got, err := l.Acquire(context.Background(), key, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %v): %v", key, ttl, err)
	}
	return got
}

// mustAcquire fails t unless l takes key.
func mustAcquire(t testing.TB, l widgetdata.Leases, key string, ttl time.Duration) {
	t.Helper()
	if !acquire(t, l, key, ttl) {
		t.Fatalf("Acquire(%q) of a free key: got false, want true", key)
	}
}

// refused fails t if l takes key, which is held.
func refused(t testing.TB, l widgetdata.Leases, key, why string) {
	t.Helper()
	if acquire(t, l, key, long) {
		t.Fatalf("Acquire(%q) %s: got true, want false", key, why)
	}
}

func release(t testing.TB, l widgetdata.Leases, key string) {
	t.Helper()
	if err := l.Release(context.Background(), key); err != nil {
		t.Fatalf("Release(%q): got %v, want nil", key, err)
	}
}

// awaitExpiry polls until l takes key (held by another with the suite's ttl, from
// about start on) and returns how long after start that was.
func awaitExpiry(t testing.TB, l widgetdata.Leases, key string, start time.Time) time.Duration {
	t.Helper()
	deadline := start.Add(wait)
	for !acquire(t, l, key, long) {
		if time.Now().After(deadline) {
			t.Fatalf("Acquire(%q) %v after it was taken for %v: got false, want true (the lease never expired)", key, wait, ttl)
		}
		time.Sleep(ttl / 5)
	}
	return time.Since(start)
}

func testOneGetsIt(t *testing.T, ls []widgetdata.Leases) {
	mustAcquire(t, ls[0], "k", long)
	refused(t, ls[0], "k", "by its holder (a lease is not re-entrant)")
	for i, l := range ls[1:] {
		refused(t, l, "k", fmt.Sprintf("by instance %d, while instance 0 holds it", i+1))
	}
}

func testConcurrent(t *testing.T, ls []widgetdata.Leases) {
	const racers, rounds = 32, 5
	ctx := context.Background()
	for r := range rounds {
		key := fmt.Sprintf("race-%d", r)
		var won atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				got, err := ls[i%len(ls)].Acquire(ctx, key, long)
				if err != nil {
					t.Errorf("Acquire(%q): %v", key, err)
				}
				if got {
					won.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := won.Load(); got != 1 {
			t.Fatalf("round %d: %d goroutines on %d instances raced for %q: got %d winners, want 1", r, racers, len(ls), key, got)
		}
	}
}

func testKeysIndependent(t *testing.T, ls []widgetdata.Leases) {
	mustAcquire(t, ls[0], "a", long)
	mustAcquire(t, ls[1], "b", long) // "a" held does not hold "b"
	mustAcquire(t, ls[0], "a:1", long)
	refused(t, ls[1], "a", "while instance 0 holds it")
	release(t, ls[0], "a")
	refused(t, ls[0], "b", "after another key was released")
	refused(t, ls[1], "a:1", "after another key was released")
	mustAcquire(t, ls[1], "a", long)
}

// A lease frees itself once its ttl has passed, with no Release (its holder died);
// the attempts refused while it is held do not extend it.
func testExpiry(t *testing.T, ls []widgetdata.Leases) {
	start := time.Now()
	mustAcquire(t, ls[0], "k", ttl)
	if acquire(t, ls[1], "k", long) {
		if d := time.Since(start); d < ttl {
			t.Fatalf("Acquire(%q) %v after it was taken for %v: got true, want false", "k", d, ttl)
		}
		return // the machine was too slow to see it held; its expiry was seen all the same
	}
	if d := awaitExpiry(t, ls[1], "k", start); d < ttl*9/10 {
		t.Fatalf("lease taken for %v was free again after %v: want at least its ttl", ttl, d)
	}
	refused(t, ls[0], "k", "after another instance took it on expiry")
}

func testReleaseFrees(t *testing.T, ls []widgetdata.Leases) {
	mustAcquire(t, ls[0], "k", long)
	release(t, ls[0], "k")
	if !acquire(t, ls[1], "k", long) {
		t.Fatal(`Acquire("k") right after its holder released it: got false, want true`)
	}
	refused(t, ls[0], "k", "after another instance took it")
}

func testReleaseNotHeld(t *testing.T, ls []widgetdata.Leases) {
	release(t, ls[0], "never-taken")
	mustAcquire(t, ls[0], "k", long)
	release(t, ls[0], "k")
	release(t, ls[0], "k") // twice
	mustAcquire(t, ls[1], "k", long)
}

// The holder of a lease that expired releases it late (its work outran the ttl), after
// another instance took it: not an error.
func testReleaseAfterExpiry(t *testing.T, ls []widgetdata.Leases) {
	start := time.Now()
	mustAcquire(t, ls[0], "k", ttl)
	awaitExpiry(t, ls[1], "k", start)
	release(t, ls[0], "k")
}

// A Release frees only the releasing instance's lease. With one instance (every handle
// the same value) there is no other instance's lease to leave alone: the case is
// skipped.
func testReleaseLeavesOthers(t *testing.T, ls []widgetdata.Leases) {
	if ls[0] == ls[1] || ls[1] == ls[2] || ls[0] == ls[2] {
		t.Skip("the handles are one instance: no other instance's lease to leave alone")
	}
	// A key another instance holds.
	mustAcquire(t, ls[1], "held", long)
	release(t, ls[0], "held")
	refused(t, ls[2], "held", "after an instance that does not hold it released it")

	// A late Release by the holder of a lease that expired and was taken since.
	start := time.Now()
	mustAcquire(t, ls[0], "k", ttl)
	awaitExpiry(t, ls[1], "k", start)
	release(t, ls[0], "k")
	refused(t, ls[2], "k", "after the lease's former holder released it late, while another instance holds it")
}

func testNonPositiveTTL(t *testing.T, ls []widgetdata.Leases) {
	for _, d := range []time.Duration{0, -time.Nanosecond, -time.Second} {
		got, err := ls[0].Acquire(context.Background(), "k", d)
		if err == nil || got {
			t.Fatalf("Acquire with ttl %v: got (%v, %v), want (false, an error)", d, got, err)
		}
	}
	mustAcquire(t, ls[1], "k", long) // nothing was taken
}

// A call with a done context returns the context's error and changes nothing.
func testDoneContext(t *testing.T, ls []widgetdata.Leases) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	mustAcquire(t, ls[0], "held", long)
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"expired", expired, context.DeadlineExceeded}} {
		got, err := ls[0].Acquire(c.ctx, "k-"+c.name, long)
		if got || !errors.Is(err, c.want) {
			t.Fatalf("Acquire with a %s context: got (%v, %v), want (false, %v)", c.name, got, err, c.want)
		}
		if err := ls[0].Release(c.ctx, "held"); !errors.Is(err, c.want) {
			t.Fatalf("Release with a %s context: got %v, want %v", c.name, err, c.want)
		}
		mustAcquire(t, ls[1], "k-"+c.name, long) // the Acquire took nothing
		refused(t, ls[1], "held", fmt.Sprintf("after a Release with a %s context", c.name))
	}
}
