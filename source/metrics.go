package source

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the source fetch metrics: latency by kind, and failures by kind and
// reason ("forbidden": the SSRF policy refused the address; "timeout"; "error").
type Metrics struct {
	seconds *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// NewMetrics registers the source metrics with r.
func NewMetrics(r prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dashsync_source_fetch_seconds",
			Help:    "Time taken by widget source fetches, by source kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dashsync_source_fetch_errors_total",
			Help: "Failed widget source fetches, by source kind and reason (forbidden, timeout, error).",
		}, []string{"kind", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.seconds, m.errors} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(kind string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.seconds.WithLabelValues(kind).Observe(d.Seconds())
	if err != nil {
		m.errors.WithLabelValues(kind, errorReason(err)).Inc()
	}
}
