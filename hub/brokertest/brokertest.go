// Package brokertest is the conformance suite every hub.Broker implementation runs.
package brokertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
)

// NewBrokers returns n started-or-not brokers that reach each other, like n instances
// sharing one Redis. The suite starts them.
type NewBrokers func(t testing.TB, n int) []hub.Broker

// recorder is a hub.Handler that records what it receives.
type recorder struct {
	mu     sync.Mutex
	msgs   map[string][]string
	losses int
	notify chan struct{}
}

func newRecorder() *recorder {
	return &recorder{msgs: map[string][]string{}, notify: make(chan struct{}, 1)}
}

func (r *recorder) HandleMessage(ch string, p []byte) {
	r.mu.Lock()
	r.msgs[ch] = append(r.msgs[ch], string(p))
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) HandleLoss() {
	r.mu.Lock()
	r.losses++
	r.mu.Unlock()
}

func (r *recorder) got(ch string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs[ch]...)
}

// waitFor waits until ch has n messages (or fails after 5 s).
func (r *recorder) waitFor(t testing.TB, ch string, n int) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if got := r.got(ch); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("channel %s: got %d messages, want %d", ch, len(r.got(ch)), n)
		}
	}
}

func start(t testing.TB, newBrokers NewBrokers, n int) ([]hub.Broker, []*recorder) {
	t.Helper()
	bs := newBrokers(t, n)
	rs := make([]*recorder, n)
	for i, b := range bs {
		rs[i] = newRecorder()
		if err := b.Start(context.Background(), rs[i]); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
	}
	return bs, rs
}

// Run runs the conformance suite.
func Run(t *testing.T, newBrokers NewBrokers) {
	ctx := context.Background()

	t.Run("PublishReachesSubscribersOnEveryInstanceIncludingItself", func(t *testing.T) {
		bs, rs := start(t, newBrokers, 2)
		for _, b := range bs {
			if err := b.Subscribe(ctx, "layout:a"); err != nil {
				t.Fatal(err)
			}
		}
		if err := bs[0].Publish(ctx, "layout:a", []byte("1 hello")); err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if got := r.waitFor(t, "layout:a", 1); got[0] != "1 hello" {
				t.Fatalf("broker %d got %q, want the payload unchanged", i, got)
			}
		}
	})

	t.Run("NoDeliveryWithoutSubscriptionOrAfterUnsubscribe", func(t *testing.T) {
		bs, rs := start(t, newBrokers, 2)
		if err := bs[0].Subscribe(ctx, "widget:w"); err != nil {
			t.Fatal(err)
		}
		if err := bs[1].Subscribe(ctx, "widget:w"); err != nil {
			t.Fatal(err)
		}
		if err := bs[1].Unsubscribe(ctx, "widget:w"); err != nil {
			t.Fatal(err)
		}
		if err := bs[1].Publish(ctx, "widget:w", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := bs[1].Publish(ctx, "widget:other", []byte("y")); err != nil {
			t.Fatal(err)
		}
		rs[0].waitFor(t, "widget:w", 1)
		// A marker on a channel both receive proves the earlier messages had their chance.
		for _, b := range bs {
			if err := b.Subscribe(ctx, "marker"); err != nil {
				t.Fatal(err)
			}
		}
		if err := bs[0].Publish(ctx, "marker", []byte("m")); err != nil {
			t.Fatal(err)
		}
		rs[1].waitFor(t, "marker", 1)
		rs[0].waitFor(t, "marker", 1)
		if got := rs[1].got("widget:w"); len(got) != 0 {
			t.Fatalf("unsubscribed broker got %q", got)
		}
		if got := rs[0].got("widget:other"); len(got) != 0 {
			t.Fatalf("broker got %q on a channel it never subscribed to", got)
		}
	})

	t.Run("OnePublisherSequenceArrivesInOrder", func(t *testing.T) {
		bs, rs := start(t, newBrokers, 2)
		for _, b := range bs {
			if err := b.Subscribe(ctx, "layout:seq"); err != nil {
				t.Fatal(err)
			}
		}
		const n = 200
		for i := range n {
			if err := bs[0].Publish(ctx, "layout:seq", fmt.Appendf(nil, "%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range rs {
			got := r.waitFor(t, "layout:seq", n)
			for i, p := range got {
				if p != fmt.Sprint(i) {
					t.Fatalf("message %d is %q: a single publisher's order must hold", i, p)
				}
			}
		}
	})

	t.Run("ManyChannelsConcurrently", func(t *testing.T) {
		bs, rs := start(t, newBrokers, 1)
		const chans, per = 20, 20
		for c := range chans {
			if err := bs[0].Subscribe(ctx, fmt.Sprintf("layout:%d", c)); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for c := range chans {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range per {
					if err := bs[0].Publish(ctx, fmt.Sprintf("layout:%d", c), fmt.Appendf(nil, "%d", i)); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		for c := range chans {
			rs[0].waitFor(t, fmt.Sprintf("layout:%d", c), per)
		}
	})

	t.Run("CancelledContextFails", func(t *testing.T) {
		bs, _ := start(t, newBrokers, 1)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := bs[0].Publish(cctx, "layout:a", []byte("x")); err == nil {
			t.Fatal("Publish with a cancelled context: got nil error")
		}
		if err := bs[0].Subscribe(cctx, "layout:a"); err == nil {
			t.Fatal("Subscribe with a cancelled context: got nil error")
		}
	})

	t.Run("UseAfterCloseFailsAndCloseTwiceIsSafe", func(t *testing.T) {
		bs, _ := start(t, newBrokers, 1)
		if err := bs[0].Close(); err != nil {
			t.Fatal(err)
		}
		if err := bs[0].Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := bs[0].Publish(ctx, "layout:a", []byte("x")); err == nil {
			t.Fatal("Publish after Close: got nil error")
		}
		if err := bs[0].Subscribe(ctx, "layout:a"); err == nil {
			t.Fatal("Subscribe after Close: got nil error")
		}
	})
}
