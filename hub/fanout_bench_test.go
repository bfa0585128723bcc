package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/coder/websocket"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	dsync "github.com/dashsync/dashsync/sync"
)

// loopBroker is the in-process broker's delivery path without its bookkeeping: a
// publication reaches the hub's HandleMessage synchronously, in the publisher's
// goroutine, as store/memory's does (which this package cannot import).
type loopBroker struct{ h Handler }

func (b *loopBroker) Start(_ context.Context, h Handler) error { b.h = h; return nil }
func (b *loopBroker) Publish(_ context.Context, ch string, p []byte) error {
	b.h.HandleMessage(ch, p)
	return nil
}
func (b *loopBroker) Subscribe(context.Context, string) error   { return nil }
func (b *loopBroker) Unsubscribe(context.Context, string) error { return nil }
func (b *loopBroker) Close() error                              { return nil }

// BenchmarkFanout_EncodeOnceEnqueueTo1000Subscribers measures the hot path of one
// committed layout version on an instance where 1,000 connections are subscribed to
// the layout: Announce encodes the op frame once, hands it to the broker, and the
// channel queues the same bytes to each subscriber's send queue (SPEC §5). Each
// connection's writer is a goroutine draining its queue, as in production, so waking
// 1,000 writers is part of the cost; the socket writes themselves are not.
func BenchmarkFanout_EncodeOnceEnqueueTo1000Subscribers(b *testing.B) {
	const subscribers = 1000
	h := &Hub{
		cfg: Config{QueueSize: 1024, Broker: &loopBroker{}},
		log: slog.New(slog.DiscardHandler), conns: map[*conn]struct{}{}, channels: map[string]*channel{},
		stop: make(chan struct{}),
	}
	var err error
	if h.m, err = newMetrics(prometheus.NewRegistry()); err != nil {
		b.Fatal(err)
	}
	if err := h.cfg.Broker.Start(context.Background(), h); err != nil {
		b.Fatal(err)
	}
	announcer := NewAnnouncer()
	announcer.hub.Store(h)
	const layoutID = "0192f0c4-6c3e-7b8a-9d3e-1a2b3c4d5e6f"
	ch := &channel{h: h, name: layoutChannel(layoutID), kind: kindLayout, id: layoutID, owner: "alice",
		subs: map[*conn]*sub{}, ready: true, last: 1}
	h.channels[ch.name] = ch

	var received atomic.Int64
	conns := make([]*conn, subscribers)
	for i := range conns {
		c := newConnState(h, nil, Identity{User: "alice", Exp: time.Now().Add(time.Hour)})
		// The real queue and writer; only the socket write is replaced by a count of
		// the messages each frame carries.
		c.send = func(_ context.Context, frame []byte) error {
			received.Add(int64(bytes.Count(frame, []byte("\n")) + 1))
			return nil
		}
		conns[i] = c
		ch.subs[c] = &sub{cursor: 1}
		go c.writeLoop()
	}
	b.Cleanup(func() {
		for _, c := range conns {
			c.close(websocket.StatusNormalClosure, "", false)
			<-c.written
		}
	})

	// A typical edit: one tab drags a widget.
	ev := dsync.LayoutCommitted{Owner: "alice", LayoutID: layoutID, Change: dsync.Change{Version: 1, Author: "alice", Client: "c-7f3a0b1c2d3e", Ops: []dsync.Op{
		{Op: dsync.OpReplace, Path: "/items/0192f0c4-7d41-7c22-8a10-5b6c7d8e9f00/x", Value: json.RawMessage(`3`)},
		{Op: dsync.OpReplace, Path: "/items/0192f0c4-7d41-7c22-8a10-5b6c7d8e9f00/y", Value: json.RawMessage(`8`)},
	}}}
	change := &ev.Change
	ctx := context.Background()

	b.ReportAllocs()
	for b.Loop() {
		change.Version++
		announcer.Announce(ctx, ev)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subscribers, "ns/subscriber")

	// Every subscriber got every version: none was dropped as a slow consumer.
	versions := change.Version - 1
	for _, c := range conns {
		select {
		case <-c.closing:
			b.Fatalf("a subscriber was cut off (close %d): the measure is not of a full fan-out", c.closeCode)
		default:
		}
	}
	for deadline := time.Now().Add(10 * time.Second); received.Load() < versions*subscribers; {
		if time.Now().After(deadline) {
			b.Fatalf("subscribers received %d messages, want %d", received.Load(), versions*subscribers)
		}
		time.Sleep(time.Millisecond)
	}
	if ch.last != change.Version {
		b.Fatalf("channel at version %d, want %d", ch.last, change.Version)
	}
}
