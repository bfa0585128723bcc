package widgetdata

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// DataChanged is new data for a widget, pushed or fetched.
type DataChanged struct {
	Owner    string
	WidgetID string
	Data     dsync.WidgetData
}

// Announcer is told of every new data. It must not block for long; what it loses, a
// subscriber gets with its next read or refresh.
type Announcer interface {
	AnnounceData(ctx context.Context, ev DataChanged)
}

// Widgets reads widget definitions: the domain call the live refresher makes.
type Widgets interface {
	// Widget returns owner's widget id, or a not_found error.
	Widget(ctx context.Context, owner, id string) (dsync.Widget, error)
}

// refreshRetry is how long a live refresher waits after the store failed it (or a
// refresh panicked) before it tries again.
const refreshRetry = 5 * time.Second

// refreshers are the live refresh loops Follow starts; Close ends and waits for them.
type refreshers struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // orders a Follow's Add before Close's Wait
	closed bool
	wg     sync.WaitGroup
}

func (r *refreshers) init() { r.ctx, r.cancel = context.WithCancel(context.Background()) }

// Follow refreshes owner's widget id every refresh period (its refreshSeconds within
// SPEC §12's bounds, so never more often than once a second) until stop is called or
// the service is closed. The new data reaches subscribers through the Announcer. Every
// instance with subscribers to a widget follows it; Leases let one of them fetch per
// period. Push and static widgets are followed but never fetched: their data changes
// only when written. stop may be called more than once. Without Options.Widgets, or
// once the service is closed, Follow does nothing.
func (s *Service) Follow(owner, id string) (stop func()) {
	s.refresh.mu.Lock()
	defer s.refresh.mu.Unlock()
	if s.refresh.closed || s.o.Widgets == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(s.refresh.ctx)
	s.refresh.wg.Add(1)
	go func() {
		defer s.refresh.wg.Done()
		for s.refreshOnce(ctx, owner, id) {
		}
	}()
	return cancel
}

// Close ends every live refresher and waits for them. Reads, pushes and clears still
// work; a Follow after Close returns at once.
func (s *Service) Close() {
	s.refresh.mu.Lock()
	s.refresh.closed = true
	s.refresh.mu.Unlock()
	s.refresh.cancel()
	s.refresh.wg.Wait()
}

// refreshOnce waits one period and refreshes the widget; false when the loop is to
// end (its context ended, or the widget is gone). A panic is logged and ends this
// period only (after refreshRetry, so that a widget that always panics cannot make
// the loop spin), never the process.
func (s *Service) refreshOnce(ctx context.Context, owner, id string) (more bool) {
	defer func() {
		if p := recover(); p != nil {
			s.o.Logger.Error("live refresh panicked", "widget", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			more = refreshWait(ctx, refreshRetry)
		}
	}()
	w, err := s.o.Widgets.Widget(ctx, owner, id)
	if ctx.Err() != nil || dsync.ErrorCode(err) == dsync.CodeNotFound {
		return false
	}
	period := refreshRetry // the store is down: look again later
	fetched := false
	if err == nil {
		period = RefreshPeriod(w.Source)
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
	if s.o.Leases != nil {
		got, err := s.o.Leases.Acquire(ctx, "lease:refresh:"+id, period-period/10)
		if err == nil && !got {
			return true
		}
	}
	switch _, err := s.Get(ctx, w, true); {
	case err == nil:
		s.o.Metrics.refreshed()
	case ctx.Err() == nil:
		s.o.Logger.Warn("live refresh failed", "widget", id, "err", err)
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
