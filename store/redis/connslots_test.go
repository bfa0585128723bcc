package redis_test

import (
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/hub/slotstest"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/store/redis"
)

func TestConnSlotsConformance(t *testing.T) {
	slotstest.Run(t, func(t testing.TB, n int, ttl time.Duration) []hub.ConnSlots {
		prefix := testredis.Prefix(t)
		out := make([]hub.ConnSlots, n)
		for i := range out {
			// One client per instance, as each has its own.
			out[i] = redis.NewConnSlots(testredis.Client(t), prefix, ttl)
		}
		return out
	})
}
