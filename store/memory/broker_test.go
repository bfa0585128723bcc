package memory_test

import (
	"testing"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/hub/brokertest"
	"github.com/dashsync/dashsync/store/memory"
)

func TestBrokerConformance(t *testing.T) {
	brokertest.Run(t, func(t testing.TB, n int) []hub.Broker {
		bus := memory.NewBus()
		out := make([]hub.Broker, n)
		for i := range out {
			out[i] = bus.Broker()
		}
		return out
	})
}
