package memory

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dashsync/dashsync/widgetdata"
)

var _ widgetdata.Cache = (*Cache)(nil)

// ErrClosed is returned by a Cache after Close.
var ErrClosed = errors.New("memory cache closed")

// DefaultCacheBytes is how many bytes of keys and values a Cache holds by default
// (SPEC §12).
const DefaultCacheBytes int64 = 256 << 20

type entry struct {
	key     string
	val     []byte // never changed once stored: a Set stores a new entry
	expires time.Time
}

// weight is what an entry counts against the cache's bound.
func (e *entry) weight() int64 { return int64(len(e.key)) + int64(len(e.val)) }

// Cache is a bounded in-process cache: it holds at most its bound of bytes of keys
// and values, the least recently used entries (by Get or Set) evicted first past it,
// and each entry expires after its own TTL. A value that does not fit within the
// bound on its own (with its key) is not kept: its Set succeeds, replacing any value
// the key had, and a Get misses.
type Cache struct {
	max int64
	now func() time.Time

	mu     sync.Mutex
	items  map[string]*list.Element // each holds an *entry
	order  *list.List               // most recently used first
	bytes  int64                    // the weight of every entry
	closed bool
}

// NewCache returns a Cache holding at most maxBytes of keys and values (0 or less:
// DefaultCacheBytes), using now as its clock (nil: time.Now).
func NewCache(maxBytes int64, now func() time.Time) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{max: maxBytes, now: now, items: map[string]*list.Element{}, order: list.New()}
}

// use runs f with c.mu held unless ctx is done or the cache closed.
func (c *Cache) use(ctx context.Context, f func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	f()
	return nil
}

// Get implements widgetdata.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var (
		val []byte
		ok  bool
	)
	err := c.use(ctx, func() {
		el, found := c.items[key]
		if !found {
			return
		}
		e := el.Value.(*entry)
		if !c.now().Before(e.expires) {
			c.remove(el)
			return
		}
		c.order.MoveToFront(el)
		val, ok = e.val, true
	})
	if !ok {
		return nil, false, err
	}
	// Stored values are never changed, so the copy is made outside the lock.
	if val = bytes.Clone(val); val == nil {
		val = []byte{}
	}
	return val, true, nil
}

// Set implements widgetdata.Cache.
func (c *Cache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory cache: set %q: ttl %v is not positive", key, ttl)
	}
	e := &entry{key: key, val: val}
	fits := e.weight() <= c.max
	if fits {
		e.val = bytes.Clone(val) // and a value that is not kept is not copied either
	}
	return c.use(ctx, func() {
		if el, ok := c.items[key]; ok {
			c.remove(el)
		}
		if !fits {
			return
		}
		e.expires = c.now().Add(ttl)
		c.items[key] = c.order.PushFront(e)
		c.bytes += e.weight()
		for c.bytes > c.max {
			c.remove(c.order.Back())
		}
	})
}

// remove drops one entry. Called with c.mu held.
func (c *Cache) remove(el *list.Element) {
	e := c.order.Remove(el).(*entry)
	delete(c.items, e.key)
	c.bytes -= e.weight()
}

// Delete implements widgetdata.Cache.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	return c.use(ctx, func() {
		for _, k := range keys {
			if el, ok := c.items[k]; ok {
				c.remove(el)
			}
		}
	})
}

// Bytes reports the weight of what the cache holds: the bytes of its keys and values,
// expired entries not yet dropped included.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Close drops every entry; later calls fail with ErrClosed. Closing twice is safe.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	clear(c.items)
	c.order.Init()
	c.bytes = 0
	return nil
}
