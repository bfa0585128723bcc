package sync

import (
	"hash/maphash"
	gosync "sync"
)

// widgetCache keeps widget definitions in memory for a service that is the only
// writer of its store (the embedded default: one process owns the SQLite file).
// It is filled by reads and kept current by this service's own commits; a version
// never goes back, and a deleted widget stays deleted, whatever order a concurrent
// read and a commit finish in.
//
// A read that began before a delete committed may finish after it, and a commit's
// events may be applied after a later commit's: either can put back a deleted
// widget. Nothing tells when such a read is over (one that fails never comes back),
// so a deletion is remembered for good, in deletedFilter's fixed memory.
type widgetCache struct {
	mu      gosync.Mutex
	widgets map[string]Widget // owner "\x00" id → definition
	deleted deletedFilter
}

func newWidgetCache() *widgetCache {
	return &widgetCache{widgets: map[string]Widget{}, deleted: deletedFilter{seed: maphash.MakeSeed()}}
}

// deletedFilter remembers deleted widgets in a fixed amount of memory, however many
// are deleted: a Bloom filter of filterBits bits (allocated at the first deletion)
// and filterHashes hashes. It never forgets a deletion, so a deleted widget is never
// put back. It may take a widget that was never deleted for a deleted one: that one
// is then not kept in memory, and every read of it goes to the store, which is
// always right. The odds of that for one widget are under 1 in 10^21 after a thousand
// deletions, 1 in 2,000 after half a million, and 1 in 50 after a million.
type deletedFilter struct {
	seed maphash.Seed // per cache, so that no one can pick keys that collide
	bits []uint64
}

const (
	filterBits   = 1 << 23 // 1 MiB
	filterHashes = 7
)

// add records k as deleted.
func (f *deletedFilter) add(k string) {
	if f.bits == nil {
		f.bits = make([]uint64, filterBits/64)
	}
	h1, h2 := f.hashes(k)
	for i := range uint64(filterHashes) {
		b := (h1 + i*h2) % filterBits
		f.bits[b/64] |= 1 << (b % 64)
	}
}

// has reports whether k may have been deleted: always true if it was.
func (f *deletedFilter) has(k string) bool {
	if f.bits == nil {
		return false
	}
	h1, h2 := f.hashes(k)
	for i := range uint64(filterHashes) {
		b := (h1 + i*h2) % filterBits
		if f.bits[b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// hashes are the two hashes whose combinations h1 + i·h2 pick k's bits (Kirsch and
// Mitzenmacher): the halves of one 64-bit hash, h2 odd so that it steps through
// every bit.
func (f *deletedFilter) hashes(k string) (h1, h2 uint64) {
	h := maphash.String(f.seed, k)
	return h, (h>>32 | h<<32) | 1
}

// bytes is the memory the filter takes.
func (f *deletedFilter) bytes() int { return len(f.bits) * 8 }

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
	if c.deleted.has(k) {
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
	c.deleted.add(k)
}

// WidgetCacheStats reports what the in-memory widget cache of a SoleWriter service
// holds: the widget definitions, and the bytes that remember deleted widgets, which
// stay the same however many are deleted. Both are 0 for other services.
func (s *Service) WidgetCacheStats() (widgets, deletedBytes int) {
	if s.widgets == nil {
		return 0, 0
	}
	s.widgets.mu.Lock()
	defer s.widgets.mu.Unlock()
	return len(s.widgets.widgets), s.widgets.deleted.bytes()
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
