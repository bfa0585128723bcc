package memory

import (
	"context"
	"errors"
	"sync"

	"github.com/dashsync/dashsync/hub"
)

var _ hub.Broker = (*Broker)(nil)

// Bus connects in-process brokers: what one publishes reaches every broker of the bus
// subscribed to the channel. The embedded default has one broker on its own bus; tests
// put several hubs on one bus to play several instances.
type Bus struct {
	mu      sync.RWMutex
	brokers map[*Broker]struct{}
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{brokers: map[*Broker]struct{}{}} }

// Broker returns a new broker attached to the bus.
func (b *Bus) Broker() *Broker {
	br := &Broker{bus: b, subs: map[string]bool{}}
	b.mu.Lock()
	b.brokers[br] = struct{}{}
	b.mu.Unlock()
	return br
}

// NewBroker returns a broker on a bus of its own: the embedded default.
func NewBroker() *Broker { return NewBus().Broker() }

// ErrBrokerClosed is returned by a Broker after Close, or before Start.
var ErrBrokerClosed = errors.New("memory broker closed or not started")

// Broker is the in-process hub.Broker. It delivers synchronously, in the publisher's
// goroutine, and loses nothing.
type Broker struct {
	bus *Bus

	mu     sync.RWMutex
	h      hub.Handler
	subs   map[string]bool
	closed bool
}

// Start implements hub.Broker.
func (b *Broker) Start(_ context.Context, h hub.Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBrokerClosed
	}
	b.h = h
	return nil
}

// Publish implements hub.Broker.
func (b *Broker) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	ok := !b.closed && b.h != nil
	b.mu.RUnlock()
	if !ok {
		return ErrBrokerClosed
	}
	b.bus.mu.RLock()
	targets := make([]*Broker, 0, len(b.bus.brokers))
	for br := range b.bus.brokers {
		targets = append(targets, br)
	}
	b.bus.mu.RUnlock()
	for _, br := range targets {
		br.mu.RLock()
		h, sub := br.h, br.subs[channel] && !br.closed
		br.mu.RUnlock()
		if sub && h != nil {
			h.HandleMessage(channel, payload)
		}
	}
	return nil
}

// Subscribe implements hub.Broker.
func (b *Broker) Subscribe(ctx context.Context, channel string) error {
	return b.set(ctx, channel, true)
}

// Unsubscribe implements hub.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, channel string) error {
	return b.set(ctx, channel, false)
}

func (b *Broker) set(ctx context.Context, channel string, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.h == nil {
		return ErrBrokerClosed
	}
	if on {
		b.subs[channel] = true
	} else {
		delete(b.subs, channel)
	}
	return nil
}

// Close implements hub.Broker; calling it twice is safe.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	b.subs = map[string]bool{}
	b.mu.Unlock()
	b.bus.mu.Lock()
	delete(b.bus.brokers, b)
	b.bus.mu.Unlock()
	return nil
}
