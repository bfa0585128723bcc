package redis_test

import (
	"testing"

	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/store/redis"
	"github.com/dashsync/dashsync/widgetdata"
	"github.com/dashsync/dashsync/widgetdata/cachetest"
)

func TestCacheConformance(t *testing.T) {
	cachetest.Run(t, func(t testing.TB) widgetdata.Cache {
		return redis.NewCache(testredis.Client(t), testredis.Prefix(t))
	})
}
