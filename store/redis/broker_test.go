package redis_test

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/hub/brokertest"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/store/redis"
)

func TestBrokerConformance(t *testing.T) {
	brokertest.Run(t, func(t testing.TB, n int) []hub.Broker {
		prefix := testredis.Prefix(t)
		out := make([]hub.Broker, n)
		for i := range out {
			// One client per broker, as each instance has its own.
			opt, _ := testredis.ParseURL(testredis.URL())
			rdb := goredis.NewClient(opt)
			t.Cleanup(func() { _ = rdb.Close() })
			out[i] = redis.NewBroker(rdb, redis.BrokerOptions{Prefix: prefix})
		}
		return out
	})
}
