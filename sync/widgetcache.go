package sync

import (
	gosync "sync"
)

// widgetCache keeps widget definitions in memory for a service that is the only
// writer of its store (the embedded default: one process owns the SQLite file).
// It is filled by reads and kept current by this service's own commits; a version
// never goes back, and a deleted widget stays deleted, whatever order a concurrent
// read and a commit finish in.
type widgetCache struct {
	mu      gosync.Mutex
	widgets map[string]Widget // owner "\x00" id → definition
	deleted map[string]bool
}

func newWidgetCache() *widgetCache {
	return &widgetCache{widgets: map[string]Widget{}, deleted: map[string]bool{}}
}

func widgetKey(owner, id string) string { return owner + "\x00" + id }

func (c *widgetCache) get(owner, id string) (Widget, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.widgets[widgetKey(owner, id)]
	if !ok {
		return Widget{}, false
	}
	return w.Clone(), true
}

// put records w unless a newer version is known or the widget was deleted.
func (c *widgetCache) put(w Widget) {
	k := widgetKey(w.Owner, w.ID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted[k] {
		return
	}
	if old, ok := c.widgets[k]; ok && old.Version >= w.Version {
		return
	}
	c.widgets[k] = w.Clone()
}

func (c *widgetCache) remove(owner, id string) {
	k := widgetKey(owner, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.widgets, k)
	c.deleted[k] = true
}

// committed keeps the cache current with the events of a committed transaction.
func (c *widgetCache) committed(ev Event) {
	w, ok := ev.Payload.(Widget)
	if !ok {
		return
	}
	switch {
	case ev.Type == "widget", ev.Name == "widget.created":
		c.put(w)
	case ev.Name == "widget.deleted":
		c.remove(w.Owner, w.ID)
	}
}
