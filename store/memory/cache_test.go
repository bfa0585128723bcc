package memory_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dashsync/dashsync/store/memory"
	"github.com/dashsync/dashsync/widgetdata"
	"github.com/dashsync/dashsync/widgetdata/cachetest"
)

func TestCacheConformance(t *testing.T) {
	cachetest.Run(t, func(t testing.TB) widgetdata.Cache {
		c := memory.NewCache(0, nil)
		t.Cleanup(func() { _ = c.Close() })
		return c
	})
}

func mustSet(t testing.TB, c *memory.Cache, key, val string) {
	t.Helper()
	if err := c.Set(context.Background(), key, []byte(val), time.Minute); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

// present lists which of keys the cache answers.
func present(t testing.TB, c *memory.Cache, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		_, ok, err := c.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

func TestCache_EvictsTheLeastRecentlyUsedPastItsBytes(t *testing.T) {
	t.Parallel()
	c := memory.NewCache(100, nil) // five entries of 1 + 19 bytes
	val := strings.Repeat("v", 19)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		mustSet(t, c, k, val)
	}
	if got := c.Bytes(); got != 100 {
		t.Fatalf("five entries of 20 bytes: %d bytes, want 100", got)
	}
	present(t, c, "a") // a is now the most recently used; b the least
	mustSet(t, c, "f", val)
	if got, want := present(t, c, "a", "b", "c", "d", "e", "f"), []string{"a", "c", "d", "e", "f"}; !slices.Equal(got, want) {
		t.Fatalf("after one more: got %v, want %v (b evicted)", got, want)
	}
	// The reads above used a, c, d, e, f in that order. One large value evicts as
	// many of the least recently used as it needs.
	mustSet(t, c, "g", strings.Repeat("v", 59))
	if got, want := present(t, c, "g", "f", "e", "d", "c", "a"), []string{"g", "f", "e"}; !slices.Equal(got, want) {
		t.Fatalf("after a 60-byte entry: got %v, want %v", got, want)
	}
	if got := c.Bytes(); got != 100 {
		t.Fatalf("got %d bytes, want 100", got)
	}
	// Replaced and deleted entries give their bytes back.
	c = memory.NewCache(100, nil)
	mustSet(t, c, "k", strings.Repeat("v", 99)) // the whole bound
	mustSet(t, c, "k", "v")
	mustSet(t, c, "x", strings.Repeat("v", 97)) // 98 bytes: room enough beside k's 2
	if got, want := present(t, c, "k", "x"), []string{"k", "x"}; !slices.Equal(got, want) {
		t.Fatalf("after a replace: got %v, want %v", got, want)
	}
	if err := c.Delete(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if got := c.Bytes(); got != 2 {
		t.Fatalf("after a delete: %d bytes, want 2", got)
	}
}

func TestCache_ValueLargerThanTheBoundIsNotKept(t *testing.T) {
	t.Parallel()
	c := memory.NewCache(100, nil)
	mustSet(t, c, "small", "x")
	mustSet(t, c, "big", "old")
	mustSet(t, c, "big", strings.Repeat("v", 98)) // 3 + 98 bytes: one over
	if got, want := present(t, c, "small", "big"), []string{"small"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v: a value over the bound is not kept, and replaces the old one", got, want)
	}
	mustSet(t, c, "big", strings.Repeat("v", 97)) // exactly the bound: kept, alone
	if got, want := present(t, c, "small", "big"), []string{"big"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// However many writers, the cache never holds more than its bound.
func TestCache_BoundHoldsUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	const bound = 16 << 10
	c := memory.NewCache(bound, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprintf("g%d:%d", g, i)
				if err := c.Set(ctx, k, make([]byte, 1+i%1024), time.Minute); err != nil {
					t.Error(err)
					return
				}
				if got := c.Bytes(); got > bound {
					t.Errorf("%d bytes held, bound %d", got, bound)
					return
				}
				_, _, _ = c.Get(ctx, fmt.Sprintf("g%d:%d", (g+1)%8, i))
			}
		})
	}
	wg.Wait()
	if got := c.Bytes(); got > bound || got < bound/2 {
		t.Fatalf("after the writers: %d bytes, want at most %d and a good part of it in use", got, bound)
	}
}

func TestCache_DefaultBoundIs256MiB(t *testing.T) {
	t.Parallel()
	if memory.DefaultCacheBytes != 256<<20 {
		t.Fatalf("DefaultCacheBytes %d, want 256 MiB (SPEC §12)", memory.DefaultCacheBytes)
	}
	// Zero and below take the default: a value of the whole default with its key is
	// one byte over it, and not kept; a small one is.
	over := make([]byte, memory.DefaultCacheBytes)
	for _, n := range []int64{0, -1} {
		c := memory.NewCache(n, nil)
		mustSet(t, c, "small", "v")
		if err := c.Set(context.Background(), "k", over, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, want := present(t, c, "small", "k"), []string{"small"}; !slices.Equal(got, want) {
			t.Fatalf("NewCache(%d): got %v, want %v", n, got, want)
		}
	}
}
