// Package hub owns WebSocket connections, channel subscriptions and fan-out.
//
// The domain and the widget data service announce typed events (dsync.Event:
// LayoutCommitted, WidgetChanged, UserEvent; widgetdata.DataChanged) to an Announcer,
// which New binds to its Hub. The Announcer turns each event into the frame its
// subscribers receive, encoded once, and publishes it on the Broker under the channel
// the hub names for it (layout:<id>, widget:<id>, user:<owner>; protocol.go). The
// Broker carries it to every instance (in-process in embedded mode, Redis pub/sub with
// several instances), and each instance's Hub, the broker's Handler, hands it to its
// own subscribers. Brokers may lose or reorder messages; the hub delivers each
// layout's versions to each subscriber strictly in order, each exactly once, filling
// gaps from the op log (Domain.ChangesSince, or a reset snapshot) before anything
// later goes out, and its sweeper re-reads subscribed layouts for a loss that nothing
// later reveals.
//
// Access (SPEC §10) is checked when a connection subscribes (Domain.LayoutWithRole,
// WidgetWithRole) and kept with the subscription; the domain checks every edit in its
// transaction. Access changes (dsync.AccessChanged, LinkRevoked, LayoutDeleted) go out
// as notices on one broker channel every hub subscribes to, and each instance re-reads
// the affected roles of its own connections: `access`, or `unsubscribed` with a reason,
// and a revoked link's sockets closed with 4003 (access.go).
//
// It declares the seams it consumes: Domain and Data (what its messages ask of the
// domain and of widget data), Broker, Presence (who is on each layout, across
// instances) and ConnSlots (each user's connections, SPEC §12). Every implementation
// of the last three passes hub/brokertest, hub/presencetest or hub/slotstest.
//
// Each connection has a bounded send queue and one writer goroutine; publishing never
// blocks on a subscriber, and a subscriber that falls behind past its queue is closed
// with 1013. hub imports sync, widgetdata, ratelimit and wire, never api or a store
// implementation.
package hub
