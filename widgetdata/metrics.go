package widgetdata

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the widget data cache metrics: reads of push and fetched widgets served
// from the cache (hits) or not found there unexpired (misses; a fetch follows for
// fetched kinds), and last good copies served after a failed fetch (stale). Reads with
// refresh=true count as neither, whether they fetch or are answered with a fetch less
// than MinFetchInterval old. Refreshes counts the live refreshes this instance fetched.
type Metrics struct {
	hits, misses, stale, refreshes prometheus.Counter
}

// NewMetrics registers the cache metrics with r.
func NewMetrics(r prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		hits:      prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_widget_data_cache_hits_total", Help: "Widget data reads served from the cache."}),
		misses:    prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_widget_data_cache_misses_total", Help: "Widget data reads that found nothing cached."}),
		stale:     prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_widget_data_stale_total", Help: "Last good copies served, marked stale, after a failed fetch."}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{Name: "dashsync_widget_refreshes_total", Help: "Live widget refreshes this instance fetched."}),
	}
	for _, c := range []prometheus.Collector{m.hits, m.misses, m.stale, m.refreshes} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) read(hit bool) {
	switch {
	case m == nil:
	case hit:
		m.hits.Inc()
	default:
		m.misses.Inc()
	}
}

func (m *Metrics) servedStale() {
	if m != nil {
		m.stale.Inc()
	}
}

func (m *Metrics) refreshed() {
	if m != nil {
		m.refreshes.Inc()
	}
}
