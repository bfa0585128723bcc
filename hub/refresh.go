package hub

import (
	"context"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// Leaser is a cluster-wide try-lock with a time to live (a Redis SET NX PX).
type Leaser interface {
	// Acquire takes key for ttl and reports whether this caller got it.
	Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// refreshLoop refreshes a widget every refreshSeconds while this instance has
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
	for {
		w, err := h.svc.Widget(ctx, owner, id)
		if ctx.Err() != nil || dsync.ErrorCode(err) == dsync.CodeNotFound {
			return
		}
		period := 5 * time.Second // the store is down: look again later
		fetched := false
		if err == nil {
			period = time.Duration(max(w.Source.RefreshSeconds, 1)) * time.Second
			// push and static data change only when written; nothing to fetch.
			fetched = w.Source.Kind != "push" && w.Source.Kind != "static"
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
		if !fetched {
			continue
		}
		// The lease is a little shorter than the period, so the holder's next tick
		// finds it free: one fetch per period across the cluster.
		if h.cfg.Leases != nil {
			got, err := h.cfg.Leases.Acquire(ctx, "lease:refresh:"+id, period-period/10)
			if err == nil && !got {
				continue
			}
		}
		switch _, err := h.cfg.Data.Get(ctx, w, true); {
		case err == nil:
			h.m.refreshes.Inc()
		case ctx.Err() == nil:
			h.log.Warn("live refresh failed", "widget", id, "err", err)
		}
	}
}
