package memory_test

import (
	"testing"

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
