package memory_test

import (
	"testing"
	"time"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/hub/presencetest"
	"github.com/dashsync/dashsync/store/memory"
)

func TestPresenceConformance(t *testing.T) {
	presencetest.Run(t, func(t testing.TB, n int, ttl time.Duration) []hub.Presence {
		p := memory.NewPresence(ttl, nil) // one process: every "instance" shares it
		out := make([]hub.Presence, n)
		for i := range out {
			out[i] = p
		}
		return out
	})
}
