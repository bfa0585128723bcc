package hub

import "context"

// Handler receives what a Broker carries. Calls for one channel come in the order the
// broker received them; calls for different channels may be concurrent.
type Handler interface {
	// HandleMessage is called for every message published on a channel this instance
	// is subscribed to, this instance's own publications included. payload becomes
	// the handler's: the broker must not change it afterwards.
	HandleMessage(channel string, payload []byte)
	// HandleLoss is called when messages may have been lost (a reconnect to the
	// broker's server); the hub then re-reads every channel from the op log.
	HandleLoss()
}

// Broker carries messages between instances. Delivery is at most once and may be out
// of order; the hub never relies on it being lossless.
type Broker interface {
	// Start begins delivering to h. It is called once, before any other method.
	Start(ctx context.Context, h Handler) error
	// Publish sends payload to the subscribers of channel on every instance. An error
	// means it was certainly not sent (the op log still has the version).
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe makes this instance receive channel's messages. When it returns,
	// every message published afterwards is delivered (or its loss reported).
	Subscribe(ctx context.Context, channel string) error
	// Unsubscribe stops delivery of channel's messages to this instance.
	Unsubscribe(ctx context.Context, channel string) error
	// Close stops delivery and releases the broker; calling it twice is safe.
	Close() error
}
