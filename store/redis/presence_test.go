package redis_test

import (
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/hub/presencetest"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/store/redis"
)

func TestPresenceConformance(t *testing.T) {
	presencetest.Run(t, func(t testing.TB, n int, ttl time.Duration) []hub.Presence {
		prefix := testredis.Prefix(t)
		out := make([]hub.Presence, n)
		for i := range out {
			out[i] = redis.NewPresence(testredis.Client(t), prefix, ttl)
		}
		return out
	})
}
