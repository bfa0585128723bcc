// Package cachetest is the conformance suite every widgetdata.Cache implementation
// runs: each implementation's test is a few lines calling Run with a constructor.
// It checks the contract documented on widgetdata.Cache, and what widgetdata.Service
// builds on it (owner namespacing, clear, the last good copy outliving the TTL, the
// time of a widget's last fetch read back from the cache by any service on it, TTLs
// kept within their bounds).
//
// TTLs here are real and short (the suite waits by polling with a deadline, never by
// a fixed sleep), so implementations run with their real clocks.
package cachetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// NewCache returns a fresh, empty cache for one test (sharing nothing with caches
// returned for other tests), released at t's cleanup.
type NewCache func(t testing.TB) widgetdata.Cache

// wait is the deadline of every poll for an expiry.
const wait = 10 * time.Second

// Run runs the conformance suite.
func Run(t *testing.T, newCache NewCache) {
	cases := []struct {
		name string
		run  func(t *testing.T, c widgetdata.Cache)
	}{
		{"SetThenGet", testSetThenGet},
		{"MissingKeys", testMissingKeys},
		{"ValuesAreCopies", testValuesAreCopies},
		{"TTLExpiry", testTTLExpiry},
		{"SetReplacesValueAndTTL", testSetReplaces},
		{"NonPositiveTTLRefused", testNonPositiveTTL},
		{"Delete", testDelete},
		{"CancelledContext", testCancelledContext},
		{"Concurrent", testConcurrent},
		{"UseAfterClose", testUseAfterClose},
		{"Service/NamespacedByOwner", testNamespacedByOwner},
		{"Service/Clear", testClear},
		{"Service/StaleCopyOutlivesTTL", testStaleCopy},
		{"Service/ForcedRefreshWithinASecondIsTheLastFetch", testForcedRefreshCoalesced},
		{"Service/OutOfBoundsSecondsAreClamped", testOutOfBoundsSeconds},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newCache(t))
		})
	}
}

func mustSet(t testing.TB, c widgetdata.Cache, key, val string, ttl time.Duration) {
	t.Helper()
	if err := c.Set(context.Background(), key, []byte(val), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

// want checks what Get answers for key: val, or absent when val is nil.
func want(t testing.TB, c widgetdata.Cache, key string, val []byte) {
	t.Helper()
	got, ok, err := c.Get(context.Background(), key)
	switch {
	case err != nil:
		t.Fatalf("Get(%q): %v", key, err)
	case val == nil && ok:
		t.Fatalf("Get(%q): got %q, want absent", key, got)
	case val != nil && !ok:
		t.Fatalf("Get(%q): got absent, want %q", key, val)
	case val != nil && !bytes.Equal(got, val):
		t.Fatalf("Get(%q): got %q, want %q", key, got, val)
	}
}

func testSetThenGet(t *testing.T, c widgetdata.Cache) {
	binary := []byte{0, 1, 2, 0xff, '\n', 0}
	big := bytes.Repeat([]byte("0123456789abcdef"), dsync.MaxDataSize/16)
	cases := []struct {
		key string
		val []byte
	}{
		{"data:alice:w1", []byte(`{"value":1}`)},
		{"key with spaces:and:colons", []byte("x")},
		{"ключ:✓", []byte("unicode key")},
		{"binary", binary},
		{"empty", []byte{}},
		{"big", big},
	}
	for _, kv := range cases {
		if err := c.Set(context.Background(), kv.key, kv.val, time.Minute); err != nil {
			t.Fatalf("Set(%q): %v", kv.key, err)
		}
	}
	for _, kv := range cases {
		want(t, c, kv.key, kv.val)
	}
}

func testMissingKeys(t *testing.T, c widgetdata.Cache) {
	want(t, c, "never-set", nil)
	if err := c.Delete(context.Background(), "never-set", "nor-this"); err != nil {
		t.Fatalf("Delete of absent keys: got %v, want nil", err)
	}
	if err := c.Delete(context.Background()); err != nil {
		t.Fatalf("Delete of no keys: got %v, want nil", err)
	}
}

func testValuesAreCopies(t *testing.T, c widgetdata.Cache) {
	val := []byte("original")
	if err := c.Set(context.Background(), "k", val, time.Minute); err != nil {
		t.Fatal(err)
	}
	copy(val, "MUTATED!")
	got, _, err := c.Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "CHANGED!")
	want(t, c, "k", []byte("original"))
}

func testTTLExpiry(t *testing.T, c widgetdata.Cache) {
	mustSet(t, c, "short", "s", 200*time.Millisecond)
	mustSet(t, c, "long", "l", time.Minute)
	pollUntilAbsent(t, c, "short")
	want(t, c, "long", []byte("l"))
}

// pollUntilAbsent waits, within the suite's deadline, for key to expire.
func pollUntilAbsent(t testing.TB, c widgetdata.Cache, key string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		_, ok, err := c.Get(context.Background(), key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q still present %s after its TTL", key, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testSetReplaces(t *testing.T, c widgetdata.Cache) {
	mustSet(t, c, "k", "first", 200*time.Millisecond)
	mustSet(t, c, "k", "second", time.Minute)
	want(t, c, "k", []byte("second"))
	time.Sleep(400 * time.Millisecond) // past the first TTL: the second one holds
	want(t, c, "k", []byte("second"))
	mustSet(t, c, "k", "third", 200*time.Millisecond)
	pollUntilAbsent(t, c, "k")
}

func testNonPositiveTTL(t *testing.T, c widgetdata.Cache) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := c.Set(context.Background(), "k", []byte("v"), ttl); err == nil {
			t.Fatalf("Set with ttl %v: got nil, want an error", ttl)
		}
		want(t, c, "k", nil)
	}
}

func testDelete(t *testing.T, c widgetdata.Cache) {
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, c, k, k, time.Minute)
	}
	if err := c.Delete(context.Background(), "a", "c", "absent"); err != nil {
		t.Fatal(err)
	}
	want(t, c, "a", nil)
	want(t, c, "b", []byte("b"))
	want(t, c, "c", nil)
}

func testCancelledContext(t *testing.T, c widgetdata.Cache) {
	mustSet(t, c, "kept", "v", time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok, err := c.Get(ctx, "kept"); err == nil || ok {
		t.Fatalf("Get with a cancelled ctx: got ok=%v err=%v, want an error", ok, err)
	}
	if err := c.Set(ctx, "new", []byte("v"), time.Minute); err == nil {
		t.Fatal("Set with a cancelled ctx: got nil, want an error")
	}
	if err := c.Delete(ctx, "kept"); err == nil {
		t.Fatal("Delete with a cancelled ctx: got nil, want an error")
	}
	want(t, c, "new", nil)
	want(t, c, "kept", []byte("v"))
}

func testConcurrent(t *testing.T, c widgetdata.Cache) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				own := fmt.Sprintf("g%d:%d", g, i)
				if err := c.Set(ctx, own, []byte(own), time.Minute); err != nil {
					t.Error(err)
					return
				}
				if err := c.Set(ctx, "shared", []byte(own), time.Minute); err != nil {
					t.Error(err)
					return
				}
				if got, ok, err := c.Get(ctx, own); err != nil || !ok || string(got) != own {
					t.Errorf("Get(%q): got %q %v %v", own, got, ok, err)
					return
				}
				if _, _, err := c.Get(ctx, "shared"); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					if err := c.Delete(ctx, "shared"); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func testUseAfterClose(t *testing.T, c widgetdata.Cache) {
	cl, ok := c.(io.Closer)
	if !ok {
		t.Skip("this cache has no Close: its owner closes the connection it uses")
	}
	mustSet(t, c, "k", "v", time.Minute)
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, ok, err := c.Get(ctx, "k"); err == nil || ok {
		t.Fatalf("Get after Close: got ok=%v err=%v, want an error", ok, err)
	}
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Fatal("Set after Close: got nil, want an error")
	}
	if err := c.Delete(ctx, "k"); err == nil {
		t.Fatal("Delete after Close: got nil, want an error")
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("second Close: got %v, want nil", err)
	}
}

// ownerEcho is a source answering {"owner": <owner>, "n": <fetches so far>}; it fails
// while fail is set.
type ownerEcho struct {
	n    atomic.Int64
	fail atomic.Bool
}

func (o *ownerEcho) Fetch(_ context.Context, w dsync.Widget) (json.RawMessage, error) {
	n := o.n.Add(1)
	if o.fail.Load() {
		return nil, errors.New("source down")
	}
	return json.Marshal(map[string]any{"owner": w.Owner, "n": n})
}

func newService(c widgetdata.Cache, src widgetdata.Fetcher) *widgetdata.Service {
	return widgetdata.New(c, widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src},
		StaleFor: time.Minute, FetchTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
}

func widget(owner, id, kind string, ttlSeconds int) dsync.Widget {
	return dsync.Widget{ID: id, Owner: owner, Type: "stat", Source: dsync.Source{Kind: kind, RefreshSeconds: 1, TTLSeconds: ttlSeconds}}
}

// read returns what s answers for w (refresh false): its data, or "<nil>".
func read(t testing.TB, s *widgetdata.Service, w dsync.Widget) string {
	t.Helper()
	d, err := s.Get(context.Background(), w, false)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil {
		return "<nil>"
	}
	return string(d.Data)
}

// Two owners with a widget of the same id on one cache never see each other's data.
func testNamespacedByOwner(t *testing.T, c widgetdata.Cache) {
	src := &ownerEcho{}
	s := newService(c, src)
	ctx := context.Background()
	aliceW, bobW := widget("alice", "w1", "test", 60), widget("bob", "w1", "test", 60)
	if got := read(t, s, aliceW); got != `{"n":1,"owner":"alice"}` {
		t.Fatalf("alice: got %s", got)
	}
	if got := read(t, s, bobW); got != `{"n":2,"owner":"bob"}` {
		t.Fatalf("bob: got %s, want bob's own fetch (not alice's cached data)", got)
	}
	if got := read(t, s, aliceW); got != `{"n":1,"owner":"alice"}` {
		t.Fatalf("alice again: got %s, want her cached data", got)
	}

	alicePush, bobPush := widget("alice", "p1", "push", 60), widget("bob", "p1", "push", 60)
	if _, err := s.Push(ctx, alicePush, json.RawMessage(`{"secret":"alice"}`)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, bobPush); got != "<nil>" {
		t.Fatalf("bob's push widget of the same id: got %s, want nothing", got)
	}
	// A failed fetch for bob has no stale copy of alice's to fall back on.
	src.fail.Store(true)
	if _, err := s.Get(ctx, widget("bob", "w2", "test", 60), false); dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("bob's failed fetch: got %v, want source_failed", err)
	}
}

func testClear(t *testing.T, c widgetdata.Cache) {
	src := &ownerEcho{}
	s := newService(c, src)
	ctx := context.Background()
	aliceW, bobW := widget("alice", "w1", "test", 60), widget("bob", "w1", "test", 60)
	for _, w := range []dsync.Widget{aliceW, bobW} {
		if _, err := s.Get(ctx, w, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Clear(ctx, aliceW); err != nil {
		t.Fatal(err)
	}
	// Cleared: alice's next read fetches, and with the source down there is no stale
	// copy left either.
	src.fail.Store(true)
	if _, err := s.Get(ctx, aliceW, false); dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("alice after clear with the source down: got %v, want source_failed (no stale copy)", err)
	}
	if got := read(t, s, bobW); got != `{"n":2,"owner":"bob"}` {
		t.Fatalf("bob after alice's clear: got %s, want his data untouched", got)
	}
	push := widget("alice", "p1", "push", 60)
	if _, err := s.Push(ctx, push, json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(ctx, push); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, push); got != "<nil>" {
		t.Fatalf("push widget after clear: got %s, want nothing until the next push", got)
	}
}

// The data expires with the widget's TTL (1 s), the last good copy lives on: a failed
// fetch after the TTL answers it marked stale.
func testStaleCopy(t *testing.T, c widgetdata.Cache) {
	src := &ownerEcho{}
	s := newService(c, src)
	ctx := context.Background()
	w := widget("alice", "w1", "test", 1)
	if got := read(t, s, w); got != `{"n":1,"owner":"alice"}` {
		t.Fatalf("first read: got %s", got)
	}
	src.fail.Store(true)
	deadline := time.Now().Add(wait)
	for {
		d, err := s.Get(ctx, w, false)
		if err != nil {
			t.Fatalf("read with the source down: got %v, want cached or stale data", err)
		}
		if string(d.Data) != `{"n":1,"owner":"alice"}` {
			t.Fatalf("got %s, want the first fetch's data", d.Data)
		}
		if d.Stale {
			break
		}
		if src.n.Load() != 1 {
			t.Fatalf("the source was asked while the data was fresh")
		}
		if time.Now().After(deadline) {
			t.Fatalf("data still fresh %s after a 1 s TTL", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if src.n.Load() < 2 {
		t.Fatal("stale data without a fetch attempt")
	}
}

// A forced refresh less than a second after the widget's last fetch is answered with
// that fetch, also by another service on the same cache (another instance): the time
// of the last fetch is the cached data's. Later, a forced refresh fetches again.
func testForcedRefreshCoalesced(t *testing.T, c widgetdata.Cache) {
	src := &ownerEcho{}
	a, b := newService(c, src), newService(c, src)
	ctx := context.Background()
	w := widget("alice", "w1", "test", 60)
	first, err := a.Get(ctx, w, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*widgetdata.Service{a, b, a} {
		sent := time.Now()
		d, err := s.Get(ctx, w, true)
		if err != nil {
			t.Fatal(err)
		}
		if sent.Sub(first.FetchedAt.Time) > widgetdata.MinFetchInterval*8/10 {
			t.Skipf("this machine took %v to ask again: too slow to check the one-second rule", sent.Sub(first.FetchedAt.Time))
		}
		if n := src.n.Load(); n != 1 || string(d.Data) != string(first.Data) || d.Stale {
			t.Fatalf("forced refresh %v after a fetch: %d fetches, data %s stale %v; want 1 fetch and its data", sent.Sub(first.FetchedAt.Time), n, d.Data, d.Stale)
		}
	}
	time.Sleep(time.Until(first.FetchedAt.Add(widgetdata.MinFetchInterval)))
	d, err := b.Get(ctx, w, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := src.n.Load(); n != 2 || string(d.Data) != `{"n":2,"owner":"alice"}` {
		t.Fatalf("forced refresh a second after the fetch: %d fetches, data %s; want a second fetch", n, d.Data)
	}
}

// refreshSeconds and ttlSeconds out of SPEC §12's bounds (stored before validation
// existed) neither fail nor overflow: the data expires within the bounds.
func testOutOfBoundsSeconds(t *testing.T, c widgetdata.Cache) {
	s := newService(c, &ownerEcho{})
	ctx := context.Background()
	for i, secs := range []int{math.MaxInt64 / int(time.Second), math.MaxInt64/int(time.Second) - 1, 1 << 61, math.MaxInt, math.MinInt, -1, 0} {
		for _, kind := range []string{"test", "push", "static"} {
			w := widget("alice", fmt.Sprintf("w%d-%s", i, kind), kind, secs)
			w.Source.RefreshSeconds = secs
			w.Source.Data = json.RawMessage(`1`)
			w.UpdatedAt = dsync.NewTime(time.Now())
			if kind == "push" {
				if _, err := s.Push(ctx, w, json.RawMessage(`1`)); err != nil {
					t.Fatalf("push with ttlSeconds %d: %v", secs, err)
				}
			}
			d, err := s.Get(ctx, w, false)
			if err != nil || d == nil {
				t.Fatalf("%s widget with ttlSeconds %d: got %v, %v; want its data", kind, secs, d, err)
			}
			if ttl := d.ExpiresAt.Sub(d.FetchedAt.Time); ttl < time.Second || ttl > dsync.MaxTTLSeconds*time.Second {
				t.Fatalf("%s widget with ttlSeconds %d: expires %v after its fetch, want 1 s … %d s", kind, secs, ttl, dsync.MaxTTLSeconds)
			}
		}
	}
}
