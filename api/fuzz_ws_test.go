package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	dsync "github.com/dashsync/dashsync/sync"
)

// FuzzWebSocket feeds frames (text and binary; messages of every client type of SPEC
// §5 and §9, hostile ones among them) to a real WebSocket connection of a real
// httptest server (api + hub, SQLite) and reads every reply. Scripts may mix REST
// requests in (to create what frames then name) and seed a long op log. It asserts:
// the server survives (a ping after the frames gets its pong, unless the connection
// was closed with a documented code: 1009, 4001, 4003, 1013); every line the server
// sends is JSON of a known type; every `error` has a code of the closed set other than
// internal; every request with an id gets exactly one reply of a type that fits it;
// frames with invalid UTF-8 or NUL are answered with an error; an edit over the §12
// bounds is not acknowledged; a resume carries the versions after since in order and
// at most 1 MiB of ops (else a reset snapshot); a `refresh` of a subscribed widget is
// followed by `data`; the REST answers pass FuzzREST's checks; and the store is valid
// afterwards. The server is built once and shared; each input gets two fresh users.
func FuzzWebSocket(f *testing.F) {
	s := newFzServer(f)
	fzQuickMinimize()
	f.Fuzz(func(t *testing.T, script string, entropy []byte) {
		r := s.newRun(t, entropy, t.Fatalf)
		r.runWS(script)
	})
}

// fzWSReadLimit is how large a server message the harness reads: far over any bound,
// so that an unbounded reply is seen and judged rather than cut.
const fzWSReadLimit = 256 << 20

// fzPingBase is where the harness's own ping ids start, clear of the script's ids.
const fzPingBase = int64(1) << 52

// fzMsg is one server message.
type fzMsg struct {
	raw      []byte
	ID       *int64          `json:"id"`
	Type     string          `json:"type"`
	Channel  string          `json:"channel"`
	Version  *int64          `json:"version"`
	Snapshot json.RawMessage `json:"snapshot"`
	Reset    bool            `json:"reset"`
	Ops      json.RawMessage `json:"ops"`
	Data     json.RawMessage `json:"data"`
	Error    json.RawMessage `json:"error"`
}

// fzInbound is SPEC §5's client message, read independently of the hub's own decoder
// (hub/protocol.go), so that the oracle does not share its mistakes: a frame
// that decodes into it is a request the server must answer by its id.
type fzInbound struct {
	ID      *int64     `json:"id"`
	Type    string     `json:"type"`
	Channel string     `json:"channel"`
	Since   *int64     `json:"since"`
	Base    *int64     `json:"base"`
	EditID  string     `json:"editId"`
	Ops     []dsync.Op `json:"ops"`
	Force   bool       `json:"force"`
	Token   string     `json:"token"`
}

// fzFrame is one frame the harness sent.
type fzFrame struct {
	at      int // messages received before it was written
	payload []byte
	in      *fzInbound
	dirty   string // what makes it unacceptable text (fzBadString)
}

// fzConn is the harness's end of a WebSocket.
type fzConn struct {
	ws     *websocket.Conn
	mu     sync.Mutex
	msgs   []fzMsg
	bad    []string // lines that are not JSON objects, frames that are not text
	wake   chan struct{}
	done   chan struct{}
	err    error // why reading stopped, once done
	gone   bool  // a write failed: the connection is closed
	frames []fzFrame
	pings  int64
}

func (r *fzRun) dial() *fzConn {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, r.s.wsURL, &websocket.DialOptions{HTTPHeader: map[string][]string{
		"Authorization": {"Bearer " + r.a.token}}})
	if err != nil {
		r.t.Fatalf("dial %s: %v", r.s.wsURL, err)
	}
	ws.SetReadLimit(fzWSReadLimit)
	c := &fzConn{ws: ws, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	return c
}

func (c *fzConn) read() {
	defer close(c.done)
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if typ != websocket.MessageText {
			c.bad = append(c.bad, fmt.Sprintf("a binary frame of %d bytes", len(b)))
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var m fzMsg
			if err := json.Unmarshal(line, &m); err != nil || m.Type == "" {
				c.bad = append(c.bad, fmt.Sprintf("a line that is not a JSON message: %s", fzShort(string(line))))
				continue
			}
			m.raw = line
			c.msgs = append(c.msgs, m)
		}
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// snapshot returns the messages so far.
func (c *fzConn) snapshot() []fzMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[:len(c.msgs):len(c.msgs)]
}

func (c *fzConn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.gone
	}
}

// write sends one frame and records it.
func (r *fzRun) write(c *fzConn, binary bool, payload []byte) {
	r.sent++
	if c.closed() {
		return
	}
	f := fzFrame{payload: payload}
	c.mu.Lock()
	f.at = len(c.msgs)
	c.mu.Unlock()
	if !binary {
		f.dirty = fzBadString(payload)
		var in fzInbound
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		if dec.Decode(&in) == nil && !dec.More() {
			f.in = &in
		}
	}
	typ := websocket.MessageText
	if binary {
		typ = websocket.MessageBinary
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, payload); err != nil {
		c.gone = true
		return
	}
	c.frames = append(c.frames, f)
}

// sync sends a ping and waits for its pong: every frame sent before it has then been
// handled. It reports false when the connection closed instead.
func (r *fzRun) sync(c *fzConn) bool {
	if c.closed() {
		return false
	}
	c.pings++
	id := fzPingBase + c.pings
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := c.ws.Write(ctx, websocket.MessageText, []byte(`{"id":`+strconv.FormatInt(id, 10)+`,"type":"ping"}`))
	cancel()
	if err != nil {
		c.gone = true
		return false
	}
	deadline := time.After(fzHang)
	for {
		for _, m := range c.snapshot() {
			if m.ID != nil && *m.ID == id {
				if m.Type != "pong" {
					r.fail("ping %d answered %s", id, m.raw)
				}
				return true
			}
		}
		select {
		case <-c.wake:
		case <-c.done:
			// The pong may have come with the last frame read.
			for _, m := range c.snapshot() {
				if m.ID != nil && *m.ID == id {
					return true
				}
			}
			return false
		case <-deadline:
			r.fail("the server answered no pong within %s (frames sent: %d):\n%s", fzHang, len(c.frames), fzGoroutines())
			return false
		}
	}
}

// runWS executes a script on one connection of user A, then checks everything it got.
func (r *fzRun) runWS(script string) {
	steps := fzParse(script)
	if len(steps) == 0 && !r.ent.empty() {
		steps = []fzStep{{kind: "gen", n: 1 + int(r.ent.byte()%8)}}
	}
	c := r.dial()
	r.ws = c
	defer func() {
		c.ws.CloseNow()
		<-c.done
	}()
	for _, st := range steps {
		if r.sent >= fzMaxRequests/r.s.scale {
			break
		}
		switch st.kind {
		case "ws":
			for n := range r.repeat(st) {
				if r.sent >= fzMaxRequests/r.s.scale {
					break
				}
				var payload []byte
				if st.body != nil {
					payload = r.expand(*st.body, n)
				}
				r.write(c, st.binary, payload)
			}
		case "gen":
			for range st.n {
				r.genFrame(c)
			}
		case "rest":
			r.sync(c)
			r.restStep(st)
		case "history":
			r.sync(c)
			r.history(st.n, st.m)
		case "wait":
			r.wait()
		case "sleep":
			time.Sleep(time.Duration(st.n) * time.Millisecond)
		}
	}
	r.wait()
	r.finishWS(c)
	r.checkStore()
}

// fzIDPattern finds the ids a frame may carry.
var fzIDPattern = regexp.MustCompile(`"id"\s*:\s*(-?[0-9]+)`)

// fzCloseCodes are the codes the server may close a connection with on bad input or
// load (SPEC §5, §9); anything else is a failure.
var fzCloseCodes = map[websocket.StatusCode]bool{
	websocket.StatusMessageTooBig: true, 4001: true, 4003: true, websocket.StatusTryAgainLater: true,
}

// fzReplyTypes are the replies that fit each request type.
var fzReplyTypes = map[string][]string{
	"ping": {"pong"}, "subscribe": {"subscribed"}, "unsubscribe": {"unsubscribed"}, "edit": {"ack", "conflict"},
	"refresh": {"refreshed"}, "auth": {"authed"}, "undo": {"ack", "conflict"}, "redo": {"ack", "conflict"},
}

// fzServerTypes are the message types the server sends (SPEC §5, §9, §10).
var fzServerTypes = map[string]bool{
	"hello": true, "subscribed": true, "unsubscribed": true, "ack": true, "conflict": true, "refreshed": true,
	"pong": true, "authed": true, "error": true, "op": true, "snapshot": true, "data": true, "widget": true,
	"presence": true, "event": true, "access": true,
}

func (r *fzRun) finishWS(c *fzConn) {
	alive := r.sync(c)
	if !alive {
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			r.fail("the connection neither answered a ping nor closed within 10s:\n%s", fzGoroutines())
			return
		}
		if code := websocket.CloseStatus(c.err); !fzCloseCodes[code] {
			r.fail("the connection closed with %v (code %d), want a pong or a close with 1009, 4001, 4003 or 1013", c.err, code)
		}
	}
	msgs := c.snapshot()
	c.mu.Lock()
	bad := c.bad
	c.mu.Unlock()
	for _, b := range bad {
		r.fail("the server sent %s", b)
	}
	replies := map[int64][]int{} // id → indices in msgs
	for i, m := range msgs {
		if !fzServerTypes[m.Type] {
			r.fail("the server sent a message of unknown type: %s", fzShort(string(m.raw)))
		}
		if m.Type == "error" {
			if msg := fzCheckErrorObject(m.Error, 0); msg != "" {
				r.fail("error message %s: %s", fzShort(string(m.raw)), msg)
			}
		}
		if m.ID != nil && *m.ID < fzPingBase {
			replies[*m.ID] = append(replies[*m.ID], i)
		}
	}
	// An id is judged only when one frame carries it: a frame the server cannot
	// decode may still have given it its id (decoding stops at the first error), so
	// every "id" in every frame counts.
	sentIDs := map[int64]int{}
	for _, f := range c.frames {
		for _, m := range fzIDPattern.FindAllSubmatch(f.payload, -1) {
			if id, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil {
				sentIDs[id]++
			}
		}
	}
	subs := map[string]bool{}      // channels subscribed at the end
	refreshes := map[int]fzFrame{} // index of a `refreshed` reply → its frame
	for _, f := range c.frames {
		if f.in == nil || f.in.ID == nil || sentIDs[*f.in.ID] != 1 || *f.in.ID >= fzPingBase {
			continue
		}
		in := f.in
		what := fmt.Sprintf("frame %s", fzShort(string(f.payload)))
		rs := replies[*in.ID]
		switch {
		case f.dirty != "":
			if len(rs) > 1 || len(rs) == 1 && msgs[rs[0]].Type != "error" {
				r.fail("%s holds %s: got %d replies (%s), want an error (SPEC §12)", what, f.dirty, len(rs), fzReplies(msgs, rs))
			}
			continue
		case alive && len(rs) != 1:
			r.fail("%s: got %d replies (%s), want exactly one", what, len(rs), fzReplies(msgs, rs))
			continue
		case len(rs) > 1:
			r.fail("%s: got %d replies (%s), want at most one", what, len(rs), fzReplies(msgs, rs))
			continue
		case len(rs) == 0:
			continue
		}
		m := msgs[rs[0]]
		if m.Type != "error" && !fzFits(in.Type, m.Type) {
			r.fail("%s: answered %s, which does not fit a %q request", what, fzShort(string(m.raw)), in.Type)
			continue
		}
		switch {
		case in.Type == "edit" && m.Type == "ack":
			ops, _ := json.Marshal(in.Ops)
			if len(in.Ops) > 500 || len(ops) > 64<<10 {
				r.fail("%s: acknowledged an edit of %d ops, %d bytes; want at most 500 ops and 64 KiB (SPEC §12)", what, len(in.Ops), len(ops))
			}
		case in.Type == "subscribe" && m.Type == "subscribed":
			subs[in.Channel] = true
			if strings.HasPrefix(in.Channel, "layout:") {
				r.checkResume(what, in, m)
			}
		case in.Type == "unsubscribe" && m.Type == "unsubscribed":
			delete(subs, in.Channel)
		case in.Type == "refresh" && m.Type == "refreshed":
			refreshes[rs[0]] = f
		}
	}
	if !alive {
		return
	}
	for _, m := range msgs {
		if m.Type == "unsubscribed" && m.ID == nil {
			delete(subs, m.Channel) // revoked or deleted
		}
	}
	for _, f := range refreshes {
		if !subs[f.in.Channel] || r.widgetKind(f.in.Channel) == "push" {
			continue // push data comes from pushes: a refresh has nothing new to send
		}
		if !r.awaitData(c, f) {
			r.fail("frame %s was answered refreshed, but no data on %s followed (SPEC §12)", fzShort(string(f.payload)), f.in.Channel)
		}
	}
}

// widgetKind is the source kind of the widget of a widget channel of user A, or "".
func (r *fzRun) widgetKind(channel string) string {
	id, ok := strings.CutPrefix(channel, "widget:")
	if !ok {
		return ""
	}
	w, err := r.s.store.Widget(context.Background(), r.a.id, id)
	if err != nil {
		return ""
	}
	return w.Source.Kind
}

// awaitData waits a little for a `data` message on the frame's channel, sent after it.
func (r *fzRun) awaitData(c *fzConn, f fzFrame) bool {
	deadline := time.After(2 * time.Second)
	for {
		msgs := c.snapshot()
		for _, m := range msgs[min(f.at, len(msgs)):] {
			if m.Type == "data" && m.Channel == f.in.Channel {
				return true
			}
		}
		select {
		case <-c.wake:
		case <-c.done:
			return false
		case <-deadline:
			return false
		}
	}
}

// checkResume holds a layout `subscribed` to SPEC §5 and §12: with since, the versions
// after it in order (at most 1 MiB of ops), or a snapshot marked reset; without, a
// snapshot.
func (r *fzRun) checkResume(what string, in *fzInbound, m fzMsg) {
	hasOps := len(m.Ops) > 0 && string(m.Ops) != "null"
	if in.Since == nil {
		if len(m.Snapshot) == 0 || m.Reset {
			r.fail("%s: subscribed without since answered %s, want a snapshot", what, fzShort(string(m.raw)))
		}
		return
	}
	if m.Version == nil {
		r.fail("%s: subscribed without a version: %s", what, fzShort(string(m.raw)))
		return
	}
	if !hasOps {
		if len(m.Snapshot) == 0 || !m.Reset {
			r.fail("%s: a resume answered %s, want ops or a snapshot with reset", what, fzShort(string(m.raw)))
		}
		return
	}
	if len(m.Ops) > 1<<20 {
		r.fail("%s: a resume carries %d bytes of ops, want at most 1 MiB, else a reset snapshot (SPEC §12)", what, len(m.Ops))
	}
	var vs []struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(m.Ops, &vs); err != nil {
		r.fail("%s: resume ops: %v", what, err)
		return
	}
	since := *in.Since
	if since < 0 || since > *m.Version || int64(len(vs)) != *m.Version-since {
		r.fail("%s: a resume from %d to %d carries %d versions", what, since, *m.Version, len(vs))
		return
	}
	for i, v := range vs {
		if v.Version != since+1+int64(i) {
			r.fail("%s: a resume from %d carries version %d at %d", what, since, v.Version, i)
			return
		}
	}
}

func fzFits(req, reply string) bool {
	fits, known := fzReplyTypes[req]
	if !known {
		return false // an unknown type is answered with an error only
	}
	for _, t := range fits {
		if t == reply {
			return true
		}
	}
	return false
}

func fzReplies(msgs []fzMsg, idx []int) string {
	var parts []string
	for _, i := range idx {
		parts = append(parts, fzShort(string(msgs[i].raw)))
	}
	return strings.Join(parts, "; ")
}

// genFrame sends one frame generated from the entropy (now and then a REST request).
func (r *fzRun) genFrame(c *fzConn) {
	switch r.ent.intn(16) {
	case 0, 1:
		n := r.ent.intn(48)
		b := make([]byte, n)
		for i := range b {
			b[i] = r.ent.byte()
		}
		r.write(c, r.ent.chance(128), b)
		return
	case 2:
		r.sync(c)
		r.genREST()
		return
	}
	var o fzObj
	if !r.ent.chance(20) {
		o.add("id", r.ent.pick(strconv.Itoa(len(c.frames)+1), strconv.Itoa(len(c.frames)+1), strconv.Itoa(len(c.frames)+1),
			"1.5", `"1"`, "-1", "9223372036854775807", "1e3", "null"))
	}
	typ := r.ent.pick("subscribe", "subscribe", "unsubscribe", "edit", "edit", "refresh", "ping", "auth", "undo", "nope", "")
	o.add("type", fzQuote(typ))
	if typ != "ping" || r.ent.chance(30) {
		o.add("channel", r.ent.pick(`"layout:{L}"`, `"layout:{L}"`, `"widget:{W}"`, `"widget:{WS}"`, `"widget:{WC}"`,
			`"widget:{WP}"`, `"widget:{WH}"`, `"user"`, `"layout:{BL}"`, `"widget:{BW}"`, `"layout:"`, `"layout:{L}\u0000"`,
			"\"layout:\xff\"", `"widget:`+strings.Repeat("z", 65)+`"`, `"nope:x"`, `"layout:{L2}"`, `"layout:{NEW}"`, `"widget:{NEW}"`))
	}
	switch typ {
	case "subscribe":
		if r.ent.chance(128) {
			o.add("since", r.ent.pick("0", "1", "{V}", "-1", "-9223372036854775808", "9223372036854775807", "1.5", "null"))
		}
	case "edit":
		o.add("base", r.ent.pick("{V}", "{V}", "1", "0", "-1", "9223372036854775807", "1.5", "null"))
		ops := r.genOps()
		if len(ops) > 60<<10 && r.ent.chance(200) {
			ops = "[]" // a frame over the limit ends the connection: now and then only
		}
		o.add("ops", ops)
		if r.ent.chance(60) {
			o.add("force", r.ent.pick("true", "false", `"yes"`))
		}
		if r.ent.chance(80) {
			o.add("editId", r.ent.pick(`"{EDIT}"`, `"{UUID}"`, `"x"`, `"\u0000"`))
		}
	case "auth":
		o.add("token", r.ent.pick(`"{TA}"`, `"{TA}"`, `"{TB}"`, `"{TX}"`, `"garbage"`, `""`, `"\u0000"`))
	}
	if r.ent.chance(10) {
		o.add(r.ent.pick("bogus", "ID", "value"), r.genValue(2))
	}
	r.write(c, false, r.expand(o.String(), 0))
}
