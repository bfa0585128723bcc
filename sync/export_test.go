package sync

// WidgetCacheStats reports what the in-memory widget cache of a SoleWriter service
// holds: the widget definitions and their bytes; 0, 0 for other services.
func (s *Service) WidgetCacheStats() (widgets, bytes int) {
	if s.widgets == nil {
		return 0, 0
	}
	return s.widgets.stats()
}

// SetWidgetCacheBytes bounds a SoleWriter service's widget cache, for tests.
func (s *Service) SetWidgetCacheBytes(n int) {
	if s.widgets != nil {
		s.widgets.maxBytes = n
	}
}
