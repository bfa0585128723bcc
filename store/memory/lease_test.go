package memory_test

import (
	"testing"

	"github.com/dashsync/dashsync/store/memory"
	"github.com/dashsync/dashsync/widgetdata"
	"github.com/dashsync/dashsync/widgetdata/leasetest"
)

func TestLeasesConformance(t *testing.T) {
	leasetest.Run(t, func(t testing.TB, n int) []widgetdata.Leases {
		l := memory.NewLeases(nil) // one process: every "instance" shares it (real clock)
		out := make([]widgetdata.Leases, n)
		for i := range out {
			out[i] = l
		}
		return out
	})
}
