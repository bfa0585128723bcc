package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/ratelimit"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// Identity is who a connection acts for, and until when its token is good. A link's
// connection (User "link:<id>") also names the one layout it may read, which `hello`
// tells its client (SPEC §10: the link page knows only its token).
type Identity struct {
	User   string
	Exp    time.Time
	Layout string
}

// Config wires a Hub. Domain, Announcer, Broker, Presence and Verify are required.
type Config struct {
	// Domain answers subscriptions and edits.
	Domain Domain
	// Announcer is the one the domain and the data service announce to; New binds it
	// to the hub.
	Announcer *Announcer
	// Data answers widget subscriptions and refreshes and keeps subscribed widgets
	// refreshed; nil: widget channels answer with no data.
	Data   Data
	Broker Broker
	// Verify checks a token sent in an `auth` message; ctx bounds a fetch of an
	// identity provider's keys. Its error's code is the reply's when it is
	// unavailable, else the reply is unauthorized.
	Verify func(ctx context.Context, token string) (Identity, error)
	// Presence keeps who is on each layout (across instances with Redis).
	Presence Presence

	Logger   *slog.Logger
	Registry prometheus.Registerer

	// QueueSize is the per-connection send queue, in messages; default 1024.
	QueueSize int
	// MaxSubscriptions per connection; default 100.
	MaxSubscriptions int
	// ReadLimit is the largest client frame in bytes; default 64 KiB.
	ReadLimit int64
	// PresenceInterval coalesces presence messages; default 250 ms.
	PresenceInterval time.Duration
	// SweepInterval is how often subscribed layouts are checked against the op log
	// for versions whose message was lost with no later one to reveal the gap;
	// default 2 s.
	SweepInterval time.Duration
	// PresenceRefresh is how often this instance renews its clients' presence
	// entries and expires those of dead instances; default 5 s.
	PresenceRefresh time.Duration
	// WriteTimeout bounds one frame write; default 10 s.
	WriteTimeout time.Duration
	// MaxFrame bounds how many bytes of queued messages one frame carries; default 64 KiB.
	MaxFrame int
	// Now is the clock; default time.Now.
	Now func() time.Time

	// Limiter keeps the per-user edit budget (SPEC §9), shared with the API's edits;
	// nil: no rate limits. When it fails, the message is allowed (fail open), and the
	// failure logged and counted.
	Limiter ratelimit.Limiter
	// MessageLimiter keeps each connection's message budget; default Limiter. A
	// connection lives on one instance, so an in-process limiter keeps it exactly with
	// no round trip per message.
	MessageLimiter ratelimit.Limiter
	// Limits are the budgets spent here: Messages per connection (every client
	// message) and Edits per user (every `edit`). REST is the API's. A zero Limit is
	// unlimited.
	Limits ratelimit.Limits

	// MaxConnsPerUser bounds each user's open WebSocket connections (SPEC §12), as
	// counted by Slots: across instances when they share its backend. Over it,
	// ServeWS refuses the upgrade with rate_limited. 0: unlimited.
	MaxConnsPerUser int
	// Slots counts the connections; required when MaxConnsPerUser > 0. When it fails,
	// connections are admitted (fail open), and the failure logged and counted.
	Slots ConnSlots
	// SlotTimeout bounds each call to Slots; default DefaultSlotTimeout (500 ms).
	SlotTimeout time.Duration
}

// Hub fans committed changes out to WebSocket subscribers: what its Announcer is told
// goes out on the broker, and what the broker delivers (it is the broker's Handler)
// goes to this instance's subscribers.
type Hub struct {
	cfg   Config
	svc   Domain
	log   *slog.Logger
	m     *metrics
	slots *slotMetrics

	mu       sync.Mutex
	conns    map[*conn]struct{}
	channels map[string]*channel // by broker channel name
	closing  bool
	edits    sync.WaitGroup // in-flight edits, waited for at shutdown
	connsWG  sync.WaitGroup

	access *accessWork

	stop     chan struct{}
	stopOnce sync.Once
	workers  sync.WaitGroup // the sweeper and the access worker
}

var _ Handler = (*Hub)(nil)

// New returns a Hub and starts its broker and its sweeper. Call Shutdown to stop it.
func New(ctx context.Context, cfg Config) (*Hub, error) {
	if cfg.Domain == nil || cfg.Announcer == nil || cfg.Broker == nil || cfg.Verify == nil || cfg.Presence == nil {
		return nil, errors.New("hub: Domain, Announcer, Broker, Presence and Verify are required")
	}
	if cfg.MaxConnsPerUser > 0 && cfg.Slots == nil {
		return nil, errors.New("hub: MaxConnsPerUser needs Slots")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = 100
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 64 << 10
	}
	if cfg.PresenceInterval <= 0 {
		cfg.PresenceInterval = 250 * time.Millisecond
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 2 * time.Second
	}
	if cfg.PresenceRefresh <= 0 {
		cfg.PresenceRefresh = 5 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = 64 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MessageLimiter == nil {
		cfg.MessageLimiter = cfg.Limiter
	}
	if cfg.SlotTimeout <= 0 {
		cfg.SlotTimeout = DefaultSlotTimeout
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	sm, err := newSlotMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, svc: cfg.Domain, log: cfg.Logger, m: m, slots: sm,
		conns: map[*conn]struct{}{}, channels: map[string]*channel{}, access: newAccessWork(), stop: make(chan struct{})}
	if err := cfg.Broker.Start(ctx, h); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	if err := cfg.Broker.Subscribe(ctx, accessChannel); err != nil {
		_ = cfg.Broker.Close()
		return nil, fmt.Errorf("subscribe to access notices: %w", err)
	}
	if !cfg.Announcer.hub.CompareAndSwap(nil, h) {
		return nil, errors.New("hub: the Announcer belongs to another hub")
	}
	h.workers.Add(2)
	go h.sweep()
	go h.runAccess()
	return h, nil
}

// publishRaw hands one frame to the broker, prefixed with its version ("<version>
// <frame>"; 0 for unversioned channels, presenceVersion for presence changes). When the
// broker cannot publish, this instance's own subscribers are served directly; other
// instances catch up from the op log once their broker reports the loss (or their
// sweeper runs).
func (h *Hub) publishRaw(ctx context.Context, name string, version int64, frame []byte) {
	payload := make([]byte, 0, len(frame)+21)
	payload = strconv.AppendInt(payload, version, 10)
	payload = append(payload, ' ')
	payload = append(payload, frame...)
	if err := h.cfg.Broker.Publish(ctx, name, payload); err != nil {
		h.m.publishErrors.Inc()
		h.log.Warn("broker publish failed; delivering locally", "channel", name, "err", err)
		h.HandleMessage(name, payload)
	}
}

func rawPtr(b []byte) *json.RawMessage { r := json.RawMessage(b); return &r }

// HandleMessage implements Handler.
func (h *Hub) HandleMessage(name string, payload []byte) {
	// The frame is a slice of payload, not a copy: it is queued as it is.
	sp, frame, ok := bytes.Cut(payload, []byte(" "))
	if !ok {
		return
	}
	version, err := strconv.ParseInt(string(sp), 10, 64)
	if err != nil {
		return
	}
	if name == accessChannel {
		h.handleAccess(frame)
		return
	}
	h.mu.Lock()
	ch := h.channels[name]
	h.mu.Unlock()
	if ch == nil {
		return
	}
	ch.deliver(version, frame)
}

// HandleLoss implements Handler: every subscribed layout is re-read from the op log.
func (h *Hub) HandleLoss() {
	h.m.losses.Inc()
	for _, ch := range h.layoutChannels() {
		ch.catchUp()
	}
	// An access notice may have been lost too.
	h.recheckAll()
}

func (h *Hub) layoutChannels() []*channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*channel, 0, len(h.channels))
	for _, ch := range h.channels {
		if ch.kind == kindLayout {
			out = append(out, ch)
		}
	}
	return out
}

// sweep periodically checks every subscribed layout for versions the broker lost with
// no later version to reveal the gap, and renews this instance's presence entries and
// connection slots.
func (h *Hub) sweep() {
	defer h.workers.Done()
	t := time.NewTicker(h.cfg.SweepInterval)
	defer t.Stop()
	p := time.NewTicker(h.cfg.PresenceRefresh)
	defer p.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			for _, ch := range h.layoutChannels() {
				ch.catchUp()
			}
			h.dropStuckWriters()
		case <-p.C:
			ctx, cancel := context.WithTimeout(context.Background(), h.cfg.PresenceRefresh)
			for _, ch := range h.layoutChannels() {
				h.refreshPresence(ctx, ch)
			}
			h.refreshSlots(ctx)
			cancel()
		}
	}
}

// ServeWS admits, upgrades and serves an authenticated request (the caller has checked
// the token and the origin) until the connection closes. When the connection is not
// admitted, ServeWS writes nothing and returns the refusal for the caller to answer:
// unavailable once shutdown has begun, rate_limited (with RetryAfterMs) when the user
// holds MaxConnsPerUser connections already. Otherwise it returns nil, the request
// answered (upgraded, or refused by the WebSocket handshake itself).
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, id Identity) error {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return dsync.Errorf(dsync.CodeUnavailable, "the server is shutting down")
	}
	h.connsWG.Add(1)
	h.mu.Unlock()
	// The slot is taken before the upgrade, so that a refusal is still an HTTP answer.
	client := newClientID()
	if err := h.admit(r.Context(), id.User, client); err != nil {
		h.connsWG.Done()
		return err
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		h.release(id.User, client)
		h.connsWG.Done()
		h.log.Debug("websocket accept failed", "err", err)
		return nil
	}
	c := newConn(h, ws, id)
	c.id = client // the id its slot is held under
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		h.release(id.User, client)
		h.connsWG.Done()
		_ = ws.Close(wire.CloseGoingAway, "server shutting down")
		return nil
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.m.connections.Inc()
	// The connection is served on a goroutine of its own and the request's returns:
	// that one's stack grew through the router's middleware, and an idle connection
	// should keep only the small stack its read loop needs.
	ctx := context.WithoutCancel(r.Context())
	go func() {
		defer h.connsWG.Done()
		c.run(ctx)
		h.m.connections.Dec()
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.release(c.uid, c.id)
	}()
	return nil
}

// Connections returns how many connections user has open (all users for "").
func (h *Hub) Connections(user string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if user == "" {
		return len(h.conns)
	}
	n := 0
	for c := range h.conns {
		if c.user() == user {
			n++
		}
	}
	return n
}

// beginEdit registers an in-flight edit; it fails once shutdown has begun.
func (h *Hub) beginEdit() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.edits.Add(1)
	return true
}

// Shutdown stops accepting connections, lets in-flight edits commit, then closes
// every connection with 1001 and waits for them (or for ctx). Calling it twice is safe.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	h.stopOnce.Do(func() { close(h.stop) })
	h.workers.Wait()

	edits := make(chan struct{})
	go func() { h.edits.Wait(); close(edits) }()
	select {
	case <-edits:
	case <-ctx.Done():
	}

	h.mu.Lock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeFor(dsync.CodeUnavailable, "server shutting down", true)
	}
	done := make(chan struct{})
	go func() { h.connsWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newClientID() string { return "c-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12] }

// dropStuckWriters cuts every connection whose write has not finished within
// WriteTimeout (a peer that stopped reading and whose buffers are full): its writer
// is unblocked and its client reconnects and resumes.
func (h *Hub) dropStuckWriters() {
	now := time.Now()
	h.mu.Lock()
	var stuck []*conn
	for c := range h.conns {
		if c.writeStuck(now, h.cfg.WriteTimeout) {
			stuck = append(stuck, c)
		}
	}
	h.mu.Unlock()
	for _, c := range stuck {
		h.log.Info("dropping a connection whose write is stuck", "client", c.id, "user", c.uid)
		c.close(websocket.StatusAbnormalClosure, "", false)
		_ = c.ws.CloseNow()
	}
}
