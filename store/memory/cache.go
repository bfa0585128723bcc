package memory

import (
	"context"
	"errors"
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
	lru *lru.Cache[string, entry]
	now func() time.Time

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

func (c *Cache) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

// Get implements widgetdata.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := c.check(ctx); err != nil {
		return nil, false, err
	}
	e, ok := c.lru.Get(key)
	if !ok {
		return nil, false, nil
	}
	if !c.now().Before(e.expires) {
		c.lru.Remove(key)
		return nil, false, nil
	}
	return e.val, true, nil
}

// Set implements widgetdata.Cache.
func (c *Cache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := c.check(ctx); err != nil {
		return err
	}
	c.lru.Add(key, entry{val: append([]byte(nil), val...), expires: c.now().Add(ttl)})
	return nil
}

// Delete implements widgetdata.Cache.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if err := c.check(ctx); err != nil {
		return err
	}
	for _, k := range keys {
		c.lru.Remove(k)
	}
	return nil
}

// Close drops every entry; later calls fail with ErrClosed. Closing twice is safe.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.lru.Purge()
	return nil
}
