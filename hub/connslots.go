package hub

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	dsync "github.com/dashsync/dashsync/sync"
)

// ConnSlots keeps how many WebSocket connections each user holds, so that a user's
// connections can be bounded (SPEC §12: Config.MaxConnsPerUser) on one instance, or
// across every instance sharing one backend. A connection holds one slot, named by
// its client id, from Acquire to Release. Slots live for a TTL of the
// implementation's and are kept alive by Refresh, so the slots of an instance that
// died (and never released them) free themselves.
//
// An error means the backend could not answer (Redis unreachable, a timeout) and
// nothing is known; the hub then admits the connection (fail open). A ctx already
// done returns an error. Implementations are safe for concurrent use.
type ConnSlots interface {
	// Acquire takes a slot for conn among user's when user holds fewer than max (≥ 1)
	// live slots, and reports whether it did. Expired slots do not count. A slot conn
	// already holds is renewed, and ok. Concurrent calls, from any instance, never
	// grant more than max slots to one user.
	Acquire(ctx context.Context, user, conn string, max int) (ok bool, err error)
	// Release frees conn's slot. Releasing a slot that is not held (expired, released
	// already, never taken) is not an error.
	Release(ctx context.Context, user, conn string) error
	// Refresh renews the slots of conns, user's connections that are still open on
	// this instance. A slot that expired meanwhile (the backend was unreachable longer
	// than the TTL) is taken again: an open connection keeps its slot even when that
	// puts its user over max for a while.
	Refresh(ctx context.Context, user string, conns []string) error
}

// DefaultSlotTimeout bounds one call to ConnSlots: an upgrade waits at most this long
// for a slot before it is admitted anyway.
const DefaultSlotTimeout = 500 * time.Millisecond

// connRetryAfterMs is the retryAfterMs of a refused upgrade: slots free as soon as a
// connection closes, so a retry soon may succeed.
const connRetryAfterMs = 1000

type slotMetrics struct {
	refused prometheus.Counter
	errors  prometheus.Counter
}

func newSlotMetrics(r prometheus.Registerer) (*slotMetrics, error) {
	m := &slotMetrics{
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_conn_limit_refused_total",
			Help: "WebSocket upgrades refused (429) because the user holds the most connections allowed."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_conn_slot_errors_total",
			Help: "Connection slot failures (Redis unreachable, say); the connection was admitted."}),
	}
	for _, c := range []prometheus.Collector{m.refused, m.errors} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// limitsConns reports whether connections are counted at all.
func (h *Hub) limitsConns() bool { return h.cfg.MaxConnsPerUser > 0 }

// admit takes a connection slot for client among user's: nil when the connection may
// open, a rate_limited error when user holds MaxConnsPerUser already. A slot store
// that fails admits the connection (logged and counted): an outage must not keep
// users out.
func (h *Hub) admit(ctx context.Context, user, client string) error {
	if !h.limitsConns() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.SlotTimeout)
	defer cancel()
	ok, err := h.cfg.Slots.Acquire(ctx, user, client, h.cfg.MaxConnsPerUser)
	if err != nil {
		h.slots.errors.Inc()
		h.log.Warn("connection slots failed; admitting the connection", "user", user, "client", client, "err", err)
		return nil
	}
	if !ok {
		h.slots.refused.Inc()
		e := dsync.Errorf(dsync.CodeRateLimited, "at most %d WebSocket connections per user", h.cfg.MaxConnsPerUser)
		e.RetryAfterMs = connRetryAfterMs
		return e
	}
	return nil
}

// release frees client's slot once its connection is gone. A failure is logged
// only: the slot expires on its own.
func (h *Hub) release(user, client string) {
	if !h.limitsConns() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.SlotTimeout)
	defer cancel()
	if err := h.cfg.Slots.Release(ctx, user, client); err != nil {
		h.slots.errors.Inc()
		h.log.Warn("releasing a connection slot failed; it will expire", "user", user, "client", client, "err", err)
	}
}

// refreshSlots keeps the slots of this instance's open connections alive.
func (h *Hub) refreshSlots(ctx context.Context) {
	if !h.limitsConns() {
		return
	}
	h.mu.Lock()
	byUser := map[string][]string{}
	for c := range h.conns {
		byUser[c.uid] = append(byUser[c.uid], c.id)
	}
	h.mu.Unlock()
	for user, ids := range byUser {
		if err := h.cfg.Slots.Refresh(ctx, user, ids); err != nil {
			h.slots.errors.Inc()
			h.log.Warn("refreshing connection slots failed", "user", user, "err", err)
			if ctx.Err() != nil {
				return
			}
		}
	}
}
