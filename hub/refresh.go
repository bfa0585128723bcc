package hub

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// Leaser is a cluster-wide try-lock with a time to live (a Redis SET NX PX).
type Leaser interface {
	// Acquire takes key for ttl and reports whether this caller got it.
	Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// refreshLoop refreshes a widget every refresh period (its refreshSeconds within
// SPEC §12's bounds, so never more often than once a second) while this instance has
// subscribers to it. Every instance with subscribers runs one; the lease lets one of
// them fetch per period, and the data reaches every instance's subscribers as `data`
// (the data service publishes what it fetched). It ends when stop closes (the last
// local subscriber left) or the hub stops.
func (h *Hub) refreshLoop(owner, id string, stop <-chan struct{}) {
	defer h.refreshers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-h.stop:
		}
		cancel()
	}()
	for h.refreshOnce(ctx, owner, id) {
	}
}

// refreshRetry is how long the refresher waits after the store failed it (or a
// refresh panicked) before it tries again.
const refreshRetry = 5 * time.Second

// refreshOnce waits one period and refreshes the widget; false when the loop is to
// end. A panic is logged and ends this period only (after refreshRetry, so that a
// widget that always panics cannot make the loop spin), never the process.
func (h *Hub) refreshOnce(ctx context.Context, owner, id string) (more bool) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("live refresh panicked", "widget", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			more = refreshWait(ctx, refreshRetry)
		}
	}()
	w, err := h.svc.Widget(ctx, owner, id)
	if ctx.Err() != nil || dsync.ErrorCode(err) == dsync.CodeNotFound {
		return false
	}
	period := refreshRetry // the store is down: look again later
	fetched := false
	if err == nil {
		period = widgetdata.RefreshPeriod(w.Source)
		// push and static data change only when written; nothing to fetch.
		fetched = w.Source.Kind != "push" && w.Source.Kind != "static"
	}
	if !refreshWait(ctx, period) {
		return false
	}
	if !fetched {
		return true
	}
	// The lease is a little shorter than the period, so the holder's next tick
	// finds it free: one fetch per period across the cluster.
	if h.cfg.Leases != nil {
		got, err := h.cfg.Leases.Acquire(ctx, "lease:refresh:"+id, period-period/10)
		if err == nil && !got {
			return true
		}
	}
	switch _, err := h.cfg.Data.Get(ctx, w, true); {
	case err == nil:
		h.m.refreshes.Inc()
	case ctx.Err() == nil:
		h.log.Warn("live refresh failed", "widget", id, "err", err)
	}
	return true
}

// refreshWait waits d; false when ctx ended first.
func refreshWait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
