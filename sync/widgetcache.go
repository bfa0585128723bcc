package sync

import (
	"container/list"
	gosync "sync"
)

// widgetCache keeps widget definitions in memory for a service that is the only
// writer of its store (the embedded default: one process owns the SQLite file).
// It is filled by reads and kept current by this service's own commits; a version
// never goes back, and a deleted widget stays deleted, whatever order a concurrent
// read and a commit finish in.
//
// A read that began before a delete committed may finish after it, and a commit's
// events may be applied after a later delete's: either would put back a deleted
// widget. So every delete starts a new generation, and what was read (or committed)
// in an older generation is not kept: it may be stale. That costs a cache miss now and
// then, never a wrong answer, and nothing is remembered of deleted widgets.
//
// The cache holds at most maxBytes of definitions (about: their sizes as stored),
// least recently used dropped first.
type widgetCache struct {
	mu       gosync.Mutex
	gen      uint64                   // +1 per delete
	entries  map[string]*list.Element // owner "\x00" id → element of lru
	lru      list.List                // of *widgetEntry, most recently used first
	bytes    int
	maxBytes int
}

type widgetEntry struct {
	key  string
	w    Widget
	size int
}

// defaultWidgetCacheBytes bounds the widget definitions kept in memory.
const defaultWidgetCacheBytes = 64 << 20

func newWidgetCache(maxBytes int) *widgetCache {
	if maxBytes <= 0 {
		maxBytes = defaultWidgetCacheBytes
	}
	return &widgetCache{entries: map[string]*list.Element{}, maxBytes: maxBytes}
}

func widgetKey(owner, id string) string { return owner + "\x00" + id }

// widgetSize is about the memory a definition takes.
func widgetSize(w Widget) int {
	n := 256 + len(w.ID) + len(w.Owner) + len(w.Type) + len(w.Title) + len(w.Source.Kind) + len(w.Source.URL) + len(w.Source.Data)
	for k, v := range w.Settings {
		n += len(k) + len(v) + 32
	}
	return n
}

// generation is the token a read or a commit takes before it starts; put keeps what
// it brings only if no delete came in between.
func (c *widgetCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns the cached definition, or the generation to hand to put with what the
// store gives.
func (c *widgetCache) get(owner, id string) (Widget, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[widgetKey(owner, id)]
	if !ok {
		return Widget{}, c.gen, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*widgetEntry).w.Clone(), c.gen, true
}

// put records w, read or committed in generation gen, unless a delete came since or
// a newer version is known.
func (c *widgetCache) put(w Widget, gen uint64) {
	k := widgetKey(w.Owner, w.ID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	size := widgetSize(w)
	if e, ok := c.entries[k]; ok {
		old := e.Value.(*widgetEntry)
		if old.w.Version >= w.Version {
			return
		}
		c.bytes += size - old.size
		old.w, old.size = w.Clone(), size
		c.lru.MoveToFront(e)
	} else {
		if size > c.maxBytes {
			return
		}
		c.entries[k] = c.lru.PushFront(&widgetEntry{key: k, w: w.Clone(), size: size})
		c.bytes += size
	}
	for c.bytes > c.maxBytes {
		c.drop(c.lru.Back())
	}
}

func (c *widgetCache) drop(e *list.Element) {
	we := c.lru.Remove(e).(*widgetEntry)
	delete(c.entries, we.key)
	c.bytes -= we.size
}

func (c *widgetCache) remove(owner, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if e, ok := c.entries[widgetKey(owner, id)]; ok {
		c.drop(e)
	}
}

// stats reports how many definitions the cache holds and their bytes.
func (c *widgetCache) stats() (widgets, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}

// committed keeps the cache current with the events of a transaction committed in
// generation gen.
func (c *widgetCache) committed(ev Event, gen uint64) {
	switch ev := ev.(type) {
	case WidgetChanged:
		c.put(ev.Widget, gen)
	case UserEvent:
		switch {
		case ev.Widget == nil:
		case ev.Name == EventWidgetCreated:
			c.put(*ev.Widget, gen)
		case ev.Name == EventWidgetDeleted:
			c.remove(ev.Widget.Owner, ev.Widget.ID)
		}
	}
}
