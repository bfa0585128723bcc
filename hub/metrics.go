package hub

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections   prometheus.Gauge
	subscriptions prometheus.Gauge
	messagesIn    prometheus.Counter
	messagesOut   prometheus.Counter
	frames        prometheus.Counter
	deliveries    prometheus.Counter
	edits         *prometheus.CounterVec
	queueDrops    prometheus.Counter
	gapFills      prometheus.Counter
	duplicates    prometheus.Counter
	losses        prometheus.Counter
	publishErrors prometheus.Counter
	tooBig        prometheus.Counter
	limited       *prometheus.CounterVec
	limiterErrors prometheus.Counter
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "dashsync_ws_connections", Help: "Open WebSocket connections."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dashsync_ws_subscriptions", Help: "Channel subscriptions of open connections."}),
		messagesIn:    prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_messages_in_total", Help: "Messages received from clients."}),
		messagesOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_messages_out_total", Help: "Messages written to clients."}),
		frames:        prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_frames_out_total", Help: "Frames written to clients (each carries one or more messages)."}),
		deliveries:    prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_layout_deliveries_total", Help: "Layout versions queued to subscribers."}),
		edits:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dashsync_ws_edits_total", Help: "WebSocket edits by outcome."}, []string{"outcome"}),
		queueDrops:    prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_queue_full_total", Help: "Connections closed with 1013 because their send queue was full."}),
		gapFills:      prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_gap_fills_total", Help: "Layout versions gaps filled from the op log."}),
		duplicates:    prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_duplicate_versions_total", Help: "Broker messages dropped as already delivered."}),
		losses:        prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_broker_losses_total", Help: "Times the broker reported possible message loss."}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_broker_publish_errors_total", Help: "Failed broker publishes."}),
		tooBig:        prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_frames_too_big_total", Help: "Connections closed with 1009 for a frame over the read limit."}),
		limited:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dashsync_ws_rate_limited_total", Help: "Client messages refused by a rate limit, by budget (messages, edit)."}, []string{"budget"}),
		limiterErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_ws_rate_limiter_errors_total", Help: "Rate limiter failures (Redis unreachable, say); the message was allowed."}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.subscriptions, m.messagesIn, m.messagesOut, m.frames,
		m.deliveries, m.edits, m.queueDrops, m.gapFills, m.duplicates, m.losses, m.publishErrors, m.tooBig,
		m.limited, m.limiterErrors} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
