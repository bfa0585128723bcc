// Package hub owns WebSocket connections, channel subscriptions and fan-out.
//
// A Hub is the dsync.Publisher of the edit pipeline: every commit is encoded once as the
// frame subscribers receive and handed to a Broker, which carries it to every instance
// (in-process in embedded mode, Redis pub/sub with several instances). Brokers may lose
// or reorder messages; the hub delivers each layout's versions to each subscriber
// strictly in order, each exactly once, filling gaps from the op log (or sending a
// reset snapshot) before anything later goes out.
//
// Each connection has a bounded send queue and one writer goroutine; publishing never
// blocks on a subscriber, and a subscriber that falls behind past its queue is closed
// with 1013. hub imports sync and widgetdata, never api or a store implementation.
package hub
