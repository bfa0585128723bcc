package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Editor timing.
const (
	requestTimeout = 10 * time.Second
	// catchUpWait bounds how long an editor waits for its view to reach a version it
	// was told about (its own ack, a conflict's head) before sending anyway.
	catchUpWait = time.Second
	// maxRetryAfter caps a rate_limited editor's pause.
	maxRetryAfter = time.Second
)

// ackRec is what the ack of one committed version tells: when its edit was sent,
// by which connection, and whether it was sent during the warmup.
type ackRec struct {
	sent   int64 // unix ns
	client string
	warm   bool
}

// ackBook maps each layout's committed versions to their edits.
type ackBook struct {
	mu   sync.Mutex
	byV  map[int64]ackRec
	dups int64 // a version acknowledged twice
}

func (b *ackBook) put(v int64, r ackRec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.byV[v]; ok {
		b.dups++
		return
	}
	b.byV[v] = r
}

// editor sends edits on its subscriber's connection, one at a time: base is the
// version of the document it holds (its view, kept from the op stream), so a value
// it writes always differs from the head's unless another edit changed that path
// since, which makes the edit a conflict. Every committed edit thus makes a version.
type editor struct {
	sub  *subscriber
	rng  *rand.Rand
	book *ackBook
	// need is the version the view should reach before the next edit: the last
	// ack's or conflict's.
	need int64
}

// loop sends edits until end, the run's edit budget is spent, or ctx ends: with
// uniform pacing at start+offset, +interval, …; with Poisson pacing at gaps drawn
// from an exponential distribution of mean interval (so edits of different editors
// sometimes meet, as they do in real use). A slot missed by more than an interval is
// skipped rather than caught up in a burst.
func (e *editor) loop(ctx context.Context, start, end time.Time, offset, interval time.Duration) {
	r := e.sub.run
	gap := func() time.Duration { return interval }
	if r.cfg.Pace == pacePoisson {
		gap = func() time.Duration { return time.Duration(e.rng.ExpFloat64() * float64(interval)) }
		offset = gap()
	}
	next := start.Add(offset)
	for {
		if !next.Before(end) {
			return
		}
		if err := sleepUntil(ctx, next); err != nil {
			return
		}
		if !r.takeBudget() {
			return
		}
		if !e.send(ctx) {
			return
		}
		next = next.Add(gap())
		if now := time.Now(); now.Sub(next) > interval {
			r.skipped.Add(int64(now.Sub(next) / interval))
			next = now
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	if d := time.Until(t); d > 0 {
		return sleepCtx(ctx, d)
	}
	return ctx.Err()
}

// waitView waits (bounded) for the view to reach e.need.
func (e *editor) waitView(ctx context.Context) {
	deadline := time.NewTimer(catchUpWait)
	defer deadline.Stop()
	for {
		e.sub.mu.Lock()
		ok := e.sub.last >= e.need
		e.sub.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-e.sub.notify:
		case <-deadline.C:
			e.sub.run.stalls.Add(1)
			return
		case <-ctx.Done():
			return
		}
	}
}

// send sends one edit and handles its reply; it reports false when the editor
// should stop (the connection is gone, ctx ended).
func (e *editor) send(ctx context.Context) bool {
	r := e.sub.run
	e.waitView(ctx)
	s := e.sub
	s.mu.Lock()
	base := s.last
	var path string
	var value int
	if e.rng.Float64() < r.cfg.Overlap {
		// Overlapping: every editor of the layout moves the shared widget.
		path = "/items/" + s.layout.Shared + "/x"
		span := gridColumns - sharedW + 1
		value = (s.sharedX + 1 + e.rng.IntN(span-1)) % span
	} else {
		// Non-overlapping: only this editor moves its own widget.
		path = "/items/" + s.ownWidget + "/y"
		value = (s.ownY + 1) % (maxY + 1)
	}
	s.mu.Unlock()
	msg := map[string]any{
		"type": "edit", "channel": "layout:" + s.layout.ID, "base": base,
		"editId": uuid.NewString(),
		"ops":    []map[string]any{{"op": "replace", "path": path, "value": value}},
	}
	sent := time.Now()
	warm := sent.UnixNano() < r.measureStart.Load()
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	reply, err := s.client.Request(rctx, msg)
	cancel()
	got := time.Now()
	r.sent.Add(1)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			r.errs.add("interrupted")
			return false
		case errors.Is(err, context.DeadlineExceeded):
			r.errs.add("timeout")
			return true
		default:
			r.errs.add("send")
			return false
		}
	}
	switch reply.Type {
	case "ack":
		r.acked.Add(1)
		if reply.Rebased {
			r.rebased.Add(1)
		}
		e.book.put(reply.Version, ackRec{sent: sent.UnixNano(), client: s.client.Hello.Client, warm: warm})
		if !warm {
			r.ackLat.add(got.Sub(sent))
		}
		e.need = max(e.need, reply.Version)
	case "conflict":
		r.conflicts.Add(1)
		e.need = max(e.need, reply.Version)
	case "error":
		code := "error"
		var retry time.Duration
		if reply.Error != nil {
			code = reply.Error.Code
			retry = time.Duration(reply.Error.RetryAfterMs) * time.Millisecond
		}
		r.errs.add(code)
		if code == "rate_limited" {
			if retry <= 0 {
				retry = 100 * time.Millisecond
			}
			if sleepCtx(ctx, min(retry, maxRetryAfter)) != nil {
				return false
			}
		}
	default:
		r.errs.add("unexpected_reply_" + reply.Type)
	}
	return true
}
