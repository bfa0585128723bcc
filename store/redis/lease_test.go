package redis_test

import (
	"fmt"
	"testing"

	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/store/redis"
	"github.com/dashsync/dashsync/widgetdata"
	"github.com/dashsync/dashsync/widgetdata/leasetest"
)

func TestLeasesConformance(t *testing.T) {
	leasetest.Run(t, func(t testing.TB, n int) []widgetdata.Leases {
		prefix := testredis.Prefix(t)
		out := make([]widgetdata.Leases, n)
		for i := range out {
			// One client and one id per instance, as each has its own.
			out[i] = redis.NewLeases(testredis.Client(t), prefix, fmt.Sprintf("instance-%d", i))
		}
		return out
	})
}
