package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/dashsync/dashsync/widgetdata"
)

var _ widgetdata.Cache = (*Cache)(nil)

// ErrClosed is returned by a Cache after Close.
var ErrClosed = errors.New("memory cache closed")

type entry struct {
	val     []byte
	expires time.Time
}

// Cache is a bounded in-process cache: least recently used entries are evicted past
// its size, and each entry expires after its own TTL.
type Cache struct {
	lru *lru.Cache[string, entry] // safe for concurrent use on its own
	now func() time.Time

	// mu is held for reading by every operation and for writing by Close (and by the
	// removal of an expired entry, which must not remove a fresh one set meanwhile).
	mu     sync.RWMutex
	closed bool
}

// DefaultCacheSize is the default number of entries a Cache keeps.
const DefaultCacheSize = 100_000

// NewCache returns a Cache holding at most size entries (0: DefaultCacheSize), using
// now as its clock (nil: time.Now).
func NewCache(size int, now func() time.Time) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	if now == nil {
		now = time.Now
	}
	l, _ := lru.New[string, entry](size) // fails only for size <= 0
	return &Cache{lru: l, now: now}
}

// use runs f unless ctx is done or the cache closed; Close waits for it.
func (c *Cache) use(ctx context.Context, f func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	f()
	return nil
}

// Get implements widgetdata.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var (
		val     []byte
		ok      bool
		expired bool
	)
	err := c.use(ctx, func() {
		e, found := c.lru.Get(key)
		switch {
		case !found:
		case !c.now().Before(e.expires):
			expired = true
		default:
			val, ok = bytes.Clone(e.val), true
			if val == nil {
				val = []byte{}
			}
		}
	})
	if expired {
		c.dropExpired(key)
	}
	return val, ok, err
}

// dropExpired removes key if it is (still) expired: a Set since the Get stays.
func (c *Cache) dropExpired(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.lru.Peek(key); ok && !c.now().Before(e.expires) {
		c.lru.Remove(key)
	}
}

// Set implements widgetdata.Cache.
func (c *Cache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory cache: set %q: ttl %v is not positive", key, ttl)
	}
	return c.use(ctx, func() {
		c.lru.Add(key, entry{val: bytes.Clone(val), expires: c.now().Add(ttl)})
	})
}

// Delete implements widgetdata.Cache.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	return c.use(ctx, func() {
		for _, k := range keys {
			c.lru.Remove(k)
		}
	})
}

// Close drops every entry; later calls fail with ErrClosed. Closing twice is safe.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.lru.Purge()
	return nil
}
