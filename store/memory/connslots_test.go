package memory_test

import (
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/hub/slotstest"
	"github.com/dashsync/dashsync/store/memory"
)

func TestConnSlotsConformance(t *testing.T) {
	slotstest.Run(t, func(t testing.TB, n int, ttl time.Duration) []hub.ConnSlots {
		s := memory.NewConnSlots(ttl, nil) // one process: every "instance" shares it
		out := make([]hub.ConnSlots, n)
		for i := range out {
			out[i] = s
		}
		return out
	})
}
