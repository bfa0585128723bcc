package redis

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dashsync/dashsync/hub"
)

var _ hub.Broker = (*Broker)(nil)

// ErrClosed is returned by a Broker after Close, or before Start.
var ErrClosed = errors.New("redis broker closed or not started")

// BrokerOptions configure a Broker.
type BrokerOptions struct {
	// Prefix is put before every channel name; default "dashsync:".
	Prefix string
	// SubscribeWait bounds how long Subscribe waits for Redis to confirm; past it, the
	// subscription stays pending (go-redis renews it on reconnect) and a loss is
	// reported once the connection is back. Default 2s.
	SubscribeWait time.Duration
	// PingEvery is how often an idle subscription connection is checked; default 5s.
	PingEvery time.Duration
	// PublishTimeout bounds one publish; default 300ms. An edit's acknowledgement
	// waits for its publish, so a Redis that is gone or hung must not hold it up: past
	// the timeout the hub serves local subscribers itself and the op log repairs the
	// rest. The bound holds only on a client whose options set ContextTimeoutEnabled.
	PublishTimeout time.Duration
	Logger         *slog.Logger
}

// Broker is the hub.Broker on Redis pub/sub: one subscription connection per instance,
// subscribed only to the channels that have local subscribers. Redis pub/sub is at
// most once; when the subscription connection breaks, go-redis reconnects and
// resubscribes, and the broker then reports a possible loss (Handler.HandleLoss) so
// that the hub re-reads the op log.
type Broker struct {
	rdb *goredis.Client
	o   BrokerOptions

	mu      sync.Mutex
	h       hub.Handler
	ps      *goredis.PubSub
	waiters map[string][]chan struct{} // channel → Subscribe calls awaiting confirmation
	lost    bool                       // a loss is to be reported once the connection is back
	closed  bool

	stop   chan struct{}
	done   chan struct{}
	probes sync.WaitGroup // pings sent after a publish timed out
}

// NewBroker returns a broker on rdb. The caller keeps ownership of rdb, whose options
// should set ContextTimeoutEnabled: without it go-redis waits out the client's
// ReadTimeout (3 s by default, then retries) on a Redis that stopped answering,
// whatever PublishTimeout says.
func NewBroker(rdb *goredis.Client, o BrokerOptions) *Broker {
	if o.Prefix == "" {
		o.Prefix = "dashsync:"
	}
	if o.SubscribeWait <= 0 {
		o.SubscribeWait = 2 * time.Second
	}
	if o.PingEvery <= 0 {
		o.PingEvery = 5 * time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 300 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if !rdb.Options().ContextTimeoutEnabled {
		o.Logger.Warn("the redis client does not set ContextTimeoutEnabled: a hung redis holds each publish, and the edit acknowledgement waiting for it, past the publish timeout")
	}
	return &Broker{rdb: rdb, o: o, waiters: map[string][]chan struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
}

// Start implements hub.Broker: it opens the subscription connection and starts the
// receive loop.
func (b *Broker) Start(ctx context.Context, h hub.Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.h != nil {
		return errors.New("redis broker already started")
	}
	b.h = h
	b.ps = b.rdb.Subscribe(context.WithoutCancel(ctx))
	go b.receive()
	return nil
}

func (b *Broker) receive() {
	defer close(b.done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-b.stop
		cancel()
	}()
	for {
		msg, err := b.ps.ReceiveTimeout(ctx, b.o.PingEvery)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var nerr interface{ Timeout() bool }
			if errors.As(err, &nerr) && nerr.Timeout() {
				// Idle: a ping proves the connection (its pong comes back here).
				if perr := b.ps.Ping(ctx); perr != nil {
					b.markLost(perr)
				}
				continue
			}
			b.markLost(err)
			select {
			case <-time.After(100 * time.Millisecond): // go-redis reconnects on the next receive
			case <-ctx.Done():
				return
			}
			continue
		}
		b.recovered()
		switch m := msg.(type) {
		case *goredis.Message:
			if name, ok := strings.CutPrefix(m.Channel, b.o.Prefix); ok {
				b.h.HandleMessage(name, []byte(m.Payload))
			}
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				b.confirm(m.Channel)
			}
		}
	}
}

func (b *Broker) markLost(err error) {
	if b.setLost() {
		b.o.Logger.Warn("redis subscription connection lost; deliveries will be repaired from the op log", "err", err)
	}
}

// setLost marks the connection down and reports whether it was up.
func (b *Broker) setLost() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := !b.lost
	b.lost = true
	return first
}

// recovered reports a loss, once, after the connection works again. go-redis has
// resubscribed before any reply is read, so everything published from now on arrives.
func (b *Broker) recovered() {
	b.mu.Lock()
	lost := b.lost
	b.lost = false
	h := b.h
	b.mu.Unlock()
	if lost {
		b.o.Logger.Info("redis subscription connection back; re-reading subscribed layouts")
		go h.HandleLoss()
	}
}

func (b *Broker) confirm(channel string) {
	b.mu.Lock()
	ws := b.waiters[channel]
	delete(b.waiters, channel)
	b.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// ErrDown is returned by Publish while the subscription connection is known to be
// broken: publishing would most likely fail too, after retries that would delay the
// caller.
var ErrDown = errors.New("redis connection is down")

// Publish implements hub.Broker. It fails fast while the subscription connection is
// down, and within PublishTimeout otherwise. A publish Redis leaves unanswered past
// PublishTimeout marks the connection down as well: a hung Redis (stopped, not gone)
// keeps its sockets open and answers none of the next publishes either, so they fail
// fast too, until the subscription connection hears from Redis again (the answer to a
// ping sent at once) and the loss is reported.
func (b *Broker) Publish(ctx context.Context, channel string, payload []byte) error {
	b.mu.Lock()
	closed, lost := b.closed || b.h == nil, b.lost
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if lost {
		return ErrDown
	}
	pctx, cancel := context.WithTimeout(ctx, b.o.PublishTimeout)
	defer cancel()
	err := b.rdb.Publish(pctx, b.o.Prefix+channel, payload).Err()
	if err != nil && ctx.Err() == nil && pctx.Err() != nil && b.setLost() {
		b.o.Logger.Warn("redis did not answer a publish in time; publishing locally until it answers again",
			"timeout", b.o.PublishTimeout, "err", err)
		b.probe()
	}
	return err
}

// probe pings on the subscription connection, whose receive loop reports the
// connection back once the answer arrives, instead of at its next idle ping.
func (b *Broker) probe() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.probes.Add(1)
	go func() {
		defer b.probes.Done()
		ctx, cancel := context.WithTimeout(context.Background(), b.o.SubscribeWait)
		defer cancel()
		if err := b.ps.Ping(ctx); err != nil {
			b.o.Logger.Debug("redis ping after a publish timeout failed", "err", err)
		}
	}()
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed || b.h == nil
}

// Subscribe implements hub.Broker. It waits for Redis to confirm; if Redis does not
// answer in time the subscription stays pending and a loss will be reported when the
// connection is back, so Subscribe still returns nil: the instance keeps serving its
// local subscribers meanwhile.
func (b *Broker) Subscribe(ctx context.Context, channel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	full := b.o.Prefix + channel
	w := make(chan struct{})
	b.mu.Lock()
	if b.closed || b.h == nil {
		b.mu.Unlock()
		return ErrClosed
	}
	b.waiters[full] = append(b.waiters[full], w)
	b.mu.Unlock()
	err := b.ps.Subscribe(ctx, full)
	if err == nil {
		select {
		case <-w:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.o.SubscribeWait):
			err = errors.New("no confirmation from redis")
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.markLost(err)
	return nil
}

// Unsubscribe implements hub.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, channel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.isClosed() {
		return ErrClosed
	}
	return b.ps.Unsubscribe(ctx, b.o.Prefix+channel)
}

// Close implements hub.Broker; calling it twice is safe.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	started := b.h != nil
	b.mu.Unlock()
	if !started {
		return nil
	}
	close(b.stop)
	err := b.ps.Close()
	<-b.done
	b.probes.Wait()
	return err
}
