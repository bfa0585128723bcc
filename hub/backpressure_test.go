package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testmetrics"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/wire"
)

// opVersions lists the versions of the op messages of ch, in the order received, and
// fails on a reset snapshot (that would be a delivery that is not every version).
func opVersions(t testing.TB, ms []wsclient.Msg, ch string) []int64 {
	t.Helper()
	var vs []int64
	for _, m := range ms {
		switch {
		case m.Type == "op" && m.Channel == ch:
			vs = append(vs, m.Version)
		case m.Type == "snapshot" && m.Channel == ch:
			t.Fatalf("got a reset snapshot at version %d; want every version as an op", m.Version)
		}
	}
	return vs
}

// checkConsecutive fails unless vs is from, from+1, … to.
func checkConsecutive(t testing.TB, who string, vs []int64, from, to int64) {
	t.Helper()
	if int64(len(vs)) != to-from+1 {
		t.Fatalf("%s: got %d versions, want %d (%d … %d)", who, len(vs), to-from+1, from, to)
	}
	for i, v := range vs {
		if v != from+int64(i) {
			t.Fatalf("%s: version #%d is %d, want %d (in order, no gaps)", who, i, v, from+int64(i))
		}
	}
}

// TestSlowConsumer_ClosedWith1013OthersKeepPace: a subscriber that stops reading fills
// its send queue and is closed with 1013; the edit stream and every other subscriber go
// on at their own pace, each receiving every version in order (SPEC §5).
func TestSlowConsumer_ClosedWith1013OthersKeepPace(t *testing.T) {
	t.Parallel()
	const queueSize = 16
	s := testenv.New(t, testenv.Options{Hub: func(c *hub.Config) {
		c.QueueSize = queueSize
		// Ample, so that the only close the slow client can get is the 1013 below
		// (not a write timeout) however slowly this machine runs.
		c.WriteTimeout = time.Minute
	}})
	l, _ := seed(t, s, "alice")
	ch := "layout:" + l.ID

	// The slow tab: its handler blocks on the first op, so its read loop stops
	// reading and the server's socket buffers, then its send queue, fill up.
	release := make(chan struct{})
	slowBox := newInbox()
	slow := s.Dial(t, "alice", func(m wsclient.Msg) {
		slowBox.add(m)
		if m.Type == "op" {
			<-release
		}
	})
	released := false
	releaseSlow := func() {
		if !released {
			released = true
			close(release)
		}
	}
	t.Cleanup(releaseSlow) // before the Dial cleanup's CloseNow, which waits for the read loop
	if r := req(t, slow, map[string]any{"type": "subscribe", "channel": ch}); r.Type != "subscribed" {
		t.Fatalf("slow subscribe: got %s", r.Raw)
	}

	fast := make([]*inbox, 2)
	for i := range fast {
		fast[i] = newInbox()
		c := s.Dial(t, "alice", fast[i].add)
		if r := req(t, c, map[string]any{"type": "subscribe", "channel": ch}); r.Type != "subscribed" {
			t.Fatalf("fast subscribe: got %s", r.Raw)
		}
	}
	editor := s.Dial(t, "alice", nil)
	fullBefore := testmetrics.Value(t, s, "dashsync_ws_queue_full_total")

	// Stream edits of ~15 KiB each (settings are at most 16 KiB) until the hub has
	// given up on the slow tab, then a few more: versions committed after it was cut
	// off must reach the others just the same.
	const after = 20
	blob := strings.Repeat("x", 15<<10)
	version := l.Version
	cutAt := int64(0)
	for n := 1; cutAt == 0 || version < cutAt+after; n++ {
		if n > 5000 {
			t.Fatalf("after %d edits of 15 KiB the slow tab was not cut off (queue of %d)", n, queueSize)
		}
		// Not req: its failure message would carry the whole 15 KiB op.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := editor.Request(ctx, map[string]any{"type": "edit", "channel": ch, "base": version,
			"ops": []any{op("add", "/settings/blob", fmt.Sprintf("%d-%s", n, blob))}})
		cancel()
		if err != nil || r.Type != "ack" || r.Version != version+1 {
			t.Fatalf("edit %d on version %d: got %s %+v (%v), want an ack of version %d", n, version, r.Type, r.Error, err, version+1)
		}
		version = r.Version
		if cutAt == 0 && n%10 == 0 && testmetrics.Value(t, s, "dashsync_ws_queue_full_total") > fullBefore {
			cutAt = version
		}
	}
	t.Logf("the slow tab was cut off by version %d; the stream went on to %d", cutAt, version)

	// The whole stream was committed and acknowledged while the slow tab had read
	// one op; every fast tab has every version in order.
	for i, b := range fast {
		ms := b.waitFor(t, fmt.Sprintf("fast tab %d to get version %d", i, version), func(ms []wsclient.Msg) bool {
			vs := opVersions(t, ms, ch)
			return len(vs) > 0 && vs[len(vs)-1] >= version
		})
		checkConsecutive(t, fmt.Sprintf("fast tab %d", i), opVersions(t, ms, ch), l.Version+1, version)
	}
	if got := len(opVersions(t, slowBox.all(), ch)); got != 1 {
		t.Fatalf("the slow tab handled %d ops while stalled, want 1 (it was blocked)", got)
	}
	select {
	case <-slow.Done():
		t.Fatalf("the slow tab's connection ended while it was not reading: %v", slow.Err())
	default:
	}

	// Once it reads again it gets what was already on its way, then close 1013.
	releaseSlow()
	select {
	case <-slow.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the slow tab was not closed after it resumed reading")
	}
	if got := slow.CloseStatus(); got != wire.CloseTryAgainLater {
		t.Fatalf("slow tab close status: got %v (%v), want 1013", got, slow.Err())
	}
	// What it did get was in order, with no gaps, and ended before the head.
	got := opVersions(t, slowBox.all(), ch)
	if len(got) == 0 {
		t.Fatal("the slow tab got no op at all")
	}
	last := got[len(got)-1]
	checkConsecutive(t, "slow tab", got, l.Version+1, last)
	if last >= version {
		t.Fatalf("the slow tab got every version up to %d although its queue was full", last)
	}
	if got := testmetrics.Value(t, s, "dashsync_ws_queue_full_total"); got != fullBefore+1 {
		t.Fatalf("dashsync_ws_queue_full_total: got %v, want %v (the slow tab only)", got, fullBefore+1)
	}

	// Its client resumes with since and gets exactly the versions it missed.
	again := s.Dial(t, "alice", nil)
	r := req(t, again, map[string]any{"type": "subscribe", "channel": ch, "since": last})
	if r.Type != "subscribed" || r.Version != version || r.Reset || len(r.Snapshot) != 0 {
		t.Fatalf("resume since %d: got type %s version %d reset %v, want the ops up to %d", last, r.Type, r.Version, r.Reset, version)
	}
	var resumed []struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(r.Ops, &resumed); err != nil {
		t.Fatalf("resume ops: %v", err)
	}
	vs := make([]int64, len(resumed))
	for i, x := range resumed {
		vs[i] = x.Version
	}
	checkConsecutive(t, "resume", vs, last+1, version)
}

// TestStuckWrite_ConnectionDroppedAfterWriteTimeout: a peer that stops reading while
// its queue still has room blocks the server's write once the socket buffers are full;
// past WriteTimeout the hub drops that connection, and the others go on.
func TestStuckWrite_ConnectionDroppedAfterWriteTimeout(t *testing.T) {
	t.Parallel()
	s := testenv.New(t, testenv.Options{Hub: func(c *hub.Config) {
		c.QueueSize = 1 << 20 // never full: only the write timeout can end it
		c.WriteTimeout = 300 * time.Millisecond
		c.SweepInterval = 50 * time.Millisecond
	}})
	l, _ := seed(t, s, "alice")
	ch := "layout:" + l.ID
	release := make(chan struct{})
	stuck := s.Dial(t, "alice", func(m wsclient.Msg) {
		if m.Type == "op" {
			<-release
		}
	})
	t.Cleanup(func() { close(release) }) // before the Dial cleanup, which waits for the read loop
	if r := req(t, stuck, map[string]any{"type": "subscribe", "channel": ch}); r.Type != "subscribed" {
		t.Fatalf("subscribe: got %s", r.Raw)
	}
	other := newInbox()
	oc := s.Dial(t, "alice", other.add)
	if r := req(t, oc, map[string]any{"type": "subscribe", "channel": ch}); r.Type != "subscribed" {
		t.Fatalf("subscribe: got %s", r.Raw)
	}
	editor := s.Dial(t, "alice", nil)
	if got := s.Hub.Connections("alice"); got != 3 {
		t.Fatalf("connections: got %d, want 3", got)
	}
	// The stuck client cannot notice the drop (its read loop is blocked): the server's
	// count of alice's connections tells.
	blob := strings.Repeat("y", 15<<10)
	version := l.Version
	for n := 1; s.Hub.Connections("alice") == 3; n++ {
		if n > 5000 {
			t.Fatal("the connection that stopped reading was never dropped")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := editor.Request(ctx, map[string]any{"type": "edit", "channel": ch, "base": version,
			"ops": []any{op("add", "/settings/blob", fmt.Sprintf("%d-%s", n, blob))}})
		cancel()
		if err != nil || r.Type != "ack" {
			t.Fatalf("edit %d: got %s (%v)", n, r.Type, err)
		}
		version = r.Version
	}
	other.waitFor(t, "the reading tab to get every version", func(ms []wsclient.Msg) bool {
		vs := opVersions(t, ms, ch)
		return len(vs) > 0 && vs[len(vs)-1] >= version
	})
	checkConsecutive(t, "the reading tab", opVersions(t, other.all(), ch), l.Version+1, version)
}
