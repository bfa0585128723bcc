package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/source"
	"github.com/dashsync/dashsync/widgetdata"
)

// openSources returns the registry of widget source kinds, its http kind under the
// SSRF policy allow (nil: nothing allow-listed), and the widget data cache metrics,
// both reporting to registry. The caller closes the registry.
func openSources(allow *source.Policy, registry prometheus.Registerer, log *slog.Logger) (*source.Registry, *widgetdata.Metrics, error) {
	sm, err := source.NewMetrics(registry)
	if err != nil {
		return nil, nil, err
	}
	dm, err := widgetdata.NewMetrics(registry)
	if err != nil {
		return nil, nil, err
	}
	sources, err := source.NewBuiltins(source.Options{HTTP: source.HTTPOptions{Policy: allow}, Metrics: sm})
	if err != nil {
		return nil, nil, err
	}
	if allow != nil && allow.String() != "" {
		log.Info("http sources may reach the allow-listed destinations", "source_allow", allow.String())
	}
	return sources, dm, nil
}
