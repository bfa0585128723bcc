package cluster_test

// This file tests SPEC §1's promise that, with Postgres and Redis configured, several
// dashsync instances behave as one server: two instances in one test process, each
// with a Postgres pool and a Redis client of its own on one database and one Redis key
// prefix, as two processes behind a load balancer would have. Tabs on either
// instance co-edit one layout and see every version exactly once, in order (SPEC §3);
// an editId resent to the other instance is applied once; presence, `user` events and
// REST writes cross instances (SPEC §5, §9).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/testdoc"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/internal/testpresence"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/internal/testtab"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/postgres"
	dsync "github.com/dashsync/dashsync/sync"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // the API's route listing is noise here
	os.Exit(m.Run())
}

// waitLimit bounds every wait for a condition in these tests.
const waitLimit = 30 * time.Second

// owner is the user who owns every layout these tests make, and the one most tests
// act as; sharing_test.go shares layouts with other users and links (SPEC §10).
const owner = "alice"

// clusterOptions configure newCluster.
type clusterOptions struct {
	// RedisURL is what both instances' Redis clients dial; default the test server.
	RedisURL string
	// DatabaseURL is the Postgres database both instances open a pool on; default a
	// fresh database on the test server.
	DatabaseURL string
	// Hub adjusts both hubs' configuration.
	Hub func(*hub.Config)
	// Retention is the op log retention of both instances (0: the default).
	Retention int
}

// cluster is two dashsync instances sharing one Postgres database and one Redis.
type cluster struct {
	a, b *testenv.Server
}

// newCluster starts two instances wired as cmd/dashsync wires them with
// DASHSYNC_DATABASE_URL and DASHSYNC_REDIS_URL set: each has its own Postgres pool,
// its own Redis client (broker, presence and the "redis" readiness check on it) and
// its own hub, under one Redis prefix.
func newCluster(t testing.TB, o clusterOptions) cluster {
	t.Helper()
	if o.RedisURL == "" {
		testredis.Require(t)
		o.RedisURL = testredis.URL()
	}
	if o.DatabaseURL == "" {
		o.DatabaseURL = testpg.NewDatabase(t)
	}
	prefix := testredis.Prefix(t)
	instance := func() *testenv.Server {
		br, pr, check := testenv.RedisWithCheck(t, o.RedisURL, prefix)
		return testenv.New(t, testenv.Options{Backend: "postgres", Store: openPostgres(t, o.DatabaseURL),
			Broker: br, Presence: pr, Hub: o.Hub, Retention: o.Retention,
			API: func(c *api.Config) { c.Checks = append(c.Checks, check) }})
	}
	return cluster{a: instance(), b: instance()}
}

// openPostgres opens a store (a pool of its own) on the database at url, closed at
// cleanup.
func openPostgres(t testing.TB, url string) dsync.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// seed creates n push widgets and a layout on 12 columns placing each of them two
// columns wide, widget i on row 5i.
func seed(t testing.TB, s *testenv.Server, n int) (dsync.Layout, []string) {
	t.Helper()
	ctx := context.Background()
	items := map[string]dsync.Item{}
	var ids []string
	for i := range n {
		title := fmt.Sprintf("w%d", i)
		w, err := s.Service.CreateWidget(ctx, owner, dsync.WidgetDoc{Type: ptr("stat"), Title: &title,
			Source: &dsync.Source{Kind: "push"}}, owner)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
		items[w.ID] = dsync.Item{X: 0, Y: 5 * i, W: 2, H: 1}
	}
	l, err := s.Service.CreateLayout(ctx, owner, dsync.NewLayout{Author: owner,
		Doc: dsync.LayoutDoc{Name: ptr("Ops"), Columns: ptr(12), Items: items}})
	if err != nil {
		t.Fatal(err)
	}
	return l, ids
}

func ptr[T any](v T) *T { return &v }

// jsonOp is one op with its value marshalled.
func jsonOp(o, path string, v any) dsync.Op {
	op := dsync.Op{Op: o, Path: path}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		op.Value = b
	}
	return op
}

// req sends one request and waits for its reply.
func req(t testing.TB, c *wsclient.Client, m map[string]any) wsclient.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	r, err := c.Request(ctx, m)
	if err != nil {
		t.Fatalf("request %v: %v", m, err)
	}
	return r
}

// rest sends one authenticated REST request as the owner and returns the status and
// body.
func rest(t testing.TB, s *testenv.Server, method, path string, body any) (int, []byte) {
	t.Helper()
	return s.REST(t, owner, method, path, body)
}

// eventually polls cond every 20 ms until it holds, failing t after waitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inbox collects a connection's pushed (non-reply) messages.
type inbox struct {
	mu   sync.Mutex
	msgs []wsclient.Msg
}

func (b *inbox) add(m wsclient.Msg) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
}

func (b *inbox) all() []wsclient.Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

// waitFor waits until one of the messages so far satisfies pred, and returns it.
func (b *inbox) waitFor(t testing.TB, what string, pred func(wsclient.Msg) bool) wsclient.Msg {
	t.Helper()
	var got wsclient.Msg
	eventually(t, what, func() bool {
		i := slices.IndexFunc(b.all(), pred)
		if i >= 0 {
			got = b.all()[i]
		}
		return i >= 0
	})
	return got
}

// tabOptions are the options of every tab in these tests: each wait bounded by
// waitLimit, and the replies that come after their request stopped waiting kept (the
// fault tests give up on requests).
var tabOptions = testtab.Options{Wait: waitLimit, KeepLate: true}

// dialTab opens a connection as the owner on s that edits layoutID; it receives
// versions once subscribed.
func dialTab(t testing.TB, s *testenv.Server, layoutID, name string) *testtab.Tab {
	t.Helper()
	return testtab.Dial(t, s, owner, layoutID, name, tabOptions)
}

// openTab dials s as the owner and subscribes to layoutID, starting from the snapshot.
func openTab(t testing.TB, s *testenv.Server, layoutID, name string) *testtab.Tab {
	t.Helper()
	tb := dialTab(t, s, layoutID, name)
	r := req(t, tb.Conn, map[string]any{"type": "subscribe", "channel": tb.Channel})
	if r.Type != "subscribed" || r.Reset || len(r.Snapshot) == 0 {
		t.Fatalf("%s: subscribe: got %s, want subscribed with a snapshot", name, r.Raw)
	}
	tb.Subscribed(t, r, nil)
	return tb
}

// acked is one acknowledged edit.
type acked struct {
	EditID  string
	Version int64
	Ops     []dsync.Op
}

// checkOpLog fails t unless the op log of layoutID holds versions 1 … last, each once,
// every acknowledged edit at its acknowledged version with its ops, and every editId
// at most once.
func checkOpLog(t testing.TB, st dsync.Store, layoutID string, last int64, acks []acked) {
	t.Helper()
	log, err := st.LayoutChanges(context.Background(), layoutID, 0, last+1000)
	if err != nil {
		t.Fatal(err)
	}
	byVersion := map[int64]dsync.Change{}
	editIDs := map[string]int{}
	for i, c := range log {
		if c.Version != int64(i)+1 {
			t.Fatalf("op log: entry %d is version %d, want %d: the log has a hole or a repeat", i, c.Version, i+1)
		}
		byVersion[c.Version] = c
		if c.EditID != "" {
			editIDs[c.EditID]++
		}
	}
	if int64(len(log)) != last {
		t.Errorf("op log: got versions 1…%d, want 1…%d", len(log), last)
	}
	for id, n := range editIDs {
		if n != 1 {
			t.Errorf("op log: editId %s committed %d times, want once", id, n)
		}
	}
	for _, a := range acks {
		c, ok := byVersion[a.Version]
		if !ok || c.EditID != a.EditID || !testdoc.SameOps(c.Ops, a.Ops) {
			t.Errorf("acknowledged edit %s as version %d: the op log has %+v there, want its ops %+v", a.EditID, a.Version, c, a.Ops)
		}
	}
}

// editor is a tab whose user edits: it moves its own widget (paths no other editor
// touches) and, as often, the shared widget and the layout's name (paths every editor
// touches), each edit on the last version it has seen.
type editor struct {
	*testtab.Tab
	own string // the widget only this editor moves

	x, y      int // the own widget's coordinates as this editor last set them
	acks      []acked
	conflicts int // conflict replies, each followed by a resend on a newer base
	rebased   int // acks with rebased: true
}

// coedit is one run of several editors on a layout.
type coedit struct {
	shared string       // the widget every editor moves
	next   atomic.Int64 // source of values no edit has set before, so no edit is a no-op
	acked  atomic.Int64 // edits acknowledged so far, all editors together
	// gate, when set, is called before each edit and may hold it back.
	gate func(ctx context.Context) error
}

// opsFor is editor e's k-th edit. Edits alternate between a path of its own (never a
// conflict, at most rebased), the shared widget's y or the whole shared item, and the
// layout's name together with its own y (one overlapping op makes it all conflict).
func (r *coedit) opsFor(e *editor, k int) []dsync.Op {
	n := r.next.Add(1)
	switch k % 4 {
	case 0:
		e.x = (e.x + 1) % 11 // 2 wide on 12 columns
		return []dsync.Op{jsonOp("replace", "/items/"+e.own+"/x", e.x)}
	case 1:
		return []dsync.Op{jsonOp("replace", "/items/"+r.shared+"/y", n)}
	case 2:
		e.y++
		return []dsync.Op{jsonOp("replace", "/name", "name "+strconv.FormatInt(n, 10)),
			jsonOp("replace", "/items/"+e.own+"/y", e.y)}
	default:
		return []dsync.Op{jsonOp("replace", "/items/"+r.shared, dsync.Item{X: int(n % 11), Y: int(n), W: 2, H: 1 + int(n%4)})}
	}
}

// run has e commit n edits one after the other, each on the last version its tab has
// seen. An ack must name a version after the base, rebased exactly when the base was
// behind it; after it the editor waits to see its own version, as a browser would. A
// conflict is answered as a browser would: apply what was received up to the
// conflict's version, then resend the edit (same editId: it never committed) on it.
func (r *coedit) run(ctx context.Context, e *editor, n int) error {
	for k := range n {
		if r.gate != nil {
			if err := r.gate(ctx); err != nil {
				return err
			}
		}
		ops, id := r.opsFor(e, k), uuid.NewString()
		for {
			base := e.Doc().Version
			rctx, cancel := context.WithTimeout(ctx, waitLimit)
			m, err := e.Edit(rctx, base, id, ops)
			cancel()
			if err != nil {
				return fmt.Errorf("%s: edit %d: %w", e.Name, k, err)
			}
			if m.Type == "conflict" {
				e.conflicts++
				if err := e.AwaitWithin(ctx, m.Version); err != nil {
					return err
				}
				continue
			}
			if m.Type != "ack" {
				return fmt.Errorf("%s: edit %d %+v on base %d: got %s, want ack or conflict", e.Name, k, ops, base, m.Raw)
			}
			if wantRebased := base < m.Version-1; m.Version <= base || m.Rebased != wantRebased {
				return fmt.Errorf("%s: edit %d on base %d: got %s, want a version after the base, rebased %v", e.Name, k, base, m.Raw, wantRebased)
			}
			if m.Rebased {
				e.rebased++
			}
			e.acks = append(e.acks, acked{EditID: id, Version: m.Version, Ops: ops})
			r.acked.Add(1)
			if err := e.AwaitWithin(ctx, m.Version); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// editorsOn opens one editor per own widget, alternating between the instances.
func editorsOn(t testing.TB, c cluster, l dsync.Layout, own []string) []*editor {
	t.Helper()
	var es []*editor
	for i, w := range own {
		s, on := c.a, "A"
		if i%2 == 1 {
			s, on = c.b, "B"
		}
		it := l.Items[w]
		es = append(es, &editor{Tab: openTab(t, s, l.ID, fmt.Sprintf("editor %d on %s", i, on)), own: w, x: it.X, y: it.Y})
	}
	return es
}

// withWatchers opens a watcher tab on each instance of c and returns them followed
// by the editors' own tabs: every tab a run's checks cover.
func withWatchers(t testing.TB, c cluster, layoutID string, editors []*editor) []*testtab.Tab {
	t.Helper()
	tabs := []*testtab.Tab{openTab(t, c.a, layoutID, "watcher on A"), openTab(t, c.b, layoutID, "watcher on B")}
	for _, e := range editors {
		tabs = append(tabs, e.Tab)
	}
	return tabs
}

// runEditors runs every editor's n edits concurrently and returns the acks.
func (r *coedit) runEditors(ctx context.Context, es []*editor, n int) ([]acked, error) {
	errs := make([]error, len(es))
	var wg sync.WaitGroup
	for i, e := range es {
		wg.Go(func() { errs[i] = r.run(ctx, e, n) })
	}
	wg.Wait()
	var acks []acked
	for _, e := range es {
		acks = append(acks, e.acks...)
	}
	return acks, errors.Join(errs...)
}

// checkRun checks SPEC §3 after a run of edits that ended at version last: every
// tab was sent versions 2 … last exactly once, in order, and holds the store's
// document on both instances; the op log has every acknowledged edit once.
func checkRun(t *testing.T, c cluster, layoutID string, last int64, acks []acked, tabs []*testtab.Tab) {
	t.Helper()
	for _, tb := range tabs {
		tb.WaitVersion(t, last)
	}
	for _, tb := range tabs {
		tb.CheckVersions(t, 2, last)
	}
	for _, s := range []*testenv.Server{c.a, c.b} {
		if l := testtab.CheckConverged(t, s, owner, layoutID, tabs...); l.Version != last {
			t.Errorf("store: got version %d, want %d (one per acknowledged edit)", l.Version, last)
		}
	}
	checkOpLog(t, c.a.Store, layoutID, last, acks)
}

func TestCluster_EditsFromBothInstancesReachEverySubscriberOnceInOrder(t *testing.T) {
	t.Parallel()
	// The sweeper would repair what the broker lost; here it stays out of the way, so
	// every version must travel through Redis pub/sub.
	c := newCluster(t, clusterOptions{Hub: func(h *hub.Config) { h.SweepInterval = time.Hour }})
	l, ws := seed(t, c.a, 5)
	editors := editorsOn(t, c, l, ws[1:])
	tabs := withWatchers(t, c, l.ID, editors)

	const edits = 500
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	r := &coedit{shared: ws[0]}
	acks, err := r.runEditors(ctx, editors, edits/len(editors))
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, c, l.ID, 1+edits, acks, tabs)

	conflicts, rebased := 0, 0
	for _, e := range editors {
		conflicts += e.conflicts
		rebased += e.rebased
	}
	t.Logf("%d edits from %d editors on two instances in %v: %d rebased, %d conflicts resent",
		edits, len(editors), time.Since(start).Round(time.Millisecond), rebased, conflicts)
	// Without both, the editors never raced each other and the test proved little.
	if rebased == 0 || conflicts == 0 {
		t.Errorf("got %d rebased edits and %d conflicts, want some of each: the editors did not edit concurrently", rebased, conflicts)
	}
}

func TestCluster_EditIDResentToTheOtherInstanceIsAppliedOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	l, ws := seed(t, c.a, 2)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	onA, onB := openTab(t, c.a, l.ID, "tab on A"), openTab(t, c.b, l.ID, "tab on B")
	bare := dialTab(t, c.b, l.ID, "unsubscribed connection on B")
	var acks []acked

	// A lost ack: the edit commits on A, the client resends it to B.
	editID := uuid.NewString()
	move := []dsync.Op{jsonOp("replace", "/items/"+ws[0]+"/x", 3)}
	first, err := onA.Edit(ctx, 1, editID, move)
	if err != nil || first.Type != "ack" || first.Version != 2 {
		t.Fatalf("first send on A: got %s, %v; want an ack of version 2", first.Raw, err)
	}
	acks = append(acks, acked{EditID: editID, Version: 2, Ops: move})
	for _, via := range []*testtab.Tab{onB, bare} {
		r, err := via.Edit(ctx, 1, editID, move)
		if err != nil || r.Type != "ack" || r.Version != first.Version || r.Rebased != first.Rebased {
			t.Fatalf("resend on %s: got %s, %v; want the original ack %s", via.Name, r.Raw, err, first.Raw)
		}
	}
	// After a later version, a resend is still the original ack, not a conflict.
	later := []dsync.Op{jsonOp("replace", "/items/"+ws[1]+"/y", 7)}
	r, err := onB.Edit(ctx, 2, uuid.NewString(), later)
	if err != nil || r.Type != "ack" || r.Version != 3 {
		t.Fatalf("a later edit on B: got %s, %v; want an ack of version 3", r.Raw, err)
	}
	if r, err := onB.Edit(ctx, 1, editID, move); err != nil || r.Type != "ack" || r.Version != 2 {
		t.Fatalf("resend on B after version 3: got %s, %v; want the original ack of version 2", r.Raw, err)
	}

	// A client that gives up waiting resends while the first send is still in flight:
	// both instances run the edit at once, and it commits once.
	last := int64(3)
	for i := range 20 {
		id := uuid.NewString()
		ops := []dsync.Op{jsonOp("replace", "/items/"+ws[1]+"/x", i%10+1)}
		var replies [2]wsclient.Msg
		var errs [2]error
		var wg sync.WaitGroup
		for j, tb := range []*testtab.Tab{onA, onB} {
			wg.Go(func() { replies[j], errs[j] = tb.Edit(ctx, last, id, ops) })
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatal(err)
		}
		a, b := replies[0], replies[1]
		if a.Type != "ack" || b.Type != "ack" || a.Version != last+1 || b.Version != a.Version || a.Rebased != b.Rebased {
			t.Fatalf("editId %s sent to A and B at once on version %d: got %s and %s, want one ack of version %d twice",
				id, last, a.Raw, b.Raw, last+1)
		}
		last++
		acks = append(acks, acked{EditID: id, Version: last, Ops: ops})
	}

	// Subscribers were sent each version once: the resends published nothing.
	for _, tb := range []*testtab.Tab{onA, onB} {
		tb.WaitVersion(t, last)
	}
	for _, tb := range []*testtab.Tab{onA, onB} {
		tb.CheckVersions(t, 2, last)
	}
	testtab.CheckConverged(t, c.b, owner, l.ID, onA, onB)
	checkOpLog(t, c.b.Store, l.ID, last, acks)
}

// presenceNames reports whether a presence message lists client as joined, as left.
func presenceNames(t testing.TB, m wsclient.Msg, client string) (joined, left bool) {
	t.Helper()
	j, l := testpresence.Changes(t, m)
	want := testpresence.Entry{User: owner, Client: client}
	return slices.Contains(j, want), slices.Contains(l, want)
}

func TestCluster_PresenceCrossesInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	l, _ := seed(t, c.a, 1)
	ch := "layout:" + l.ID
	subscribe := func(t *testing.T, wc *wsclient.Client) []testpresence.User {
		t.Helper()
		r := req(t, wc, map[string]any{"type": "subscribe", "channel": ch})
		var p []testpresence.User
		if r.Type != "subscribed" || json.Unmarshal(r.Presence, &p) != nil {
			t.Fatalf("subscribe %s: got %s, want subscribed with a presence list", ch, r.Raw)
		}
		return p
	}

	var onB inbox
	b := c.b.Dial(t, owner, onB.add)
	subscribe(t, b)
	a := c.a.Dial(t, owner, nil)
	aClient := a.Hello.Client

	p := subscribe(t, a)
	if want := []testpresence.User{{User: owner, Clients: sortedOf(aClient, b.Hello.Client)}}; !equalPresence(p, want) {
		t.Errorf("subscribed.presence on A: got %+v, want %+v (B's tab and A's own)", p, want)
	}
	onB.waitFor(t, "a presence message on B naming A's tab as joined", func(m wsclient.Msg) bool {
		j, _ := presenceNames(t, m, aClient)
		return m.Type == "presence" && m.Channel == ch && j
	})

	// A second tab on B lists A's tab among those on the layout.
	p = subscribe(t, c.b.Dial(t, owner, nil))
	if !slices.ContainsFunc(p, func(u testpresence.User) bool { return u.User == owner && slices.Contains(u.Clients, aClient) }) {
		t.Errorf("subscribed.presence on B: got %+v, want it to list %s, the tab on A", p, aClient)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	onB.waitFor(t, "a presence message on B naming A's tab as left", func(m wsclient.Msg) bool {
		_, left := presenceNames(t, m, aClient)
		return m.Type == "presence" && m.Channel == ch && left
	})
	eventually(t, "subscribed.presence on B no longer listing A's closed tab", func() bool {
		wc := c.b.Dial(t, owner, nil)
		defer wc.CloseNow()
		return !slices.ContainsFunc(subscribe(t, wc), func(u testpresence.User) bool { return slices.Contains(u.Clients, aClient) })
	})
}

func sortedOf(s ...string) []string { slices.Sort(s); return s }

func equalPresence(a, b []testpresence.User) bool {
	return slices.EqualFunc(a, b, func(x, y testpresence.User) bool {
		return x.User == y.User && slices.Equal(sortedOf(x.Clients...), sortedOf(y.Clients...))
	})
}

func TestCluster_UserEventsCrossInstances(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	seed(t, c.a, 1)
	var onB inbox
	b := c.b.Dial(t, owner, onB.add)
	if r := req(t, b, map[string]any{"type": "subscribe", "channel": "user"}); r.Type != "subscribed" {
		t.Fatalf("subscribe user: got %s", r.Raw)
	}

	status, body := rest(t, c.a, http.MethodPost, "/api/dashboard/layouts", map[string]any{"name": "Created on A", "columns": 12})
	var created dsync.Layout
	if status != http.StatusCreated || json.Unmarshal(body, &created) != nil {
		t.Fatalf("POST /api/dashboard/layouts on A: got %d %s, want 201", status, body)
	}
	ev := onB.waitFor(t, "layout.created on B", func(m wsclient.Msg) bool { return m.Type == "event" })
	var summary struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Version int64  `json:"version"`
	}
	if err := json.Unmarshal(ev.Layout, &summary); err != nil || ev.Channel != "user" || ev.Event != "layout.created" ||
		summary.ID != created.ID || summary.Name != "Created on A" || summary.Version != 1 {
		t.Fatalf("event on B: got %s, want layout.created on user for %s (Created on A, version 1)", ev.Raw, created.ID)
	}
}

func TestCluster_RESTWriteOnOneInstanceReachesSocketsOnTheOther(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	l, ws := seed(t, c.a, 2)
	onB := openTab(t, c.b, l.ID, "tab on B")

	ops := []dsync.Op{jsonOp("replace", "/items/"+ws[0]+"/x", 4), jsonOp("add", "/settings/theme", "dark")}
	status, body := rest(t, c.a, http.MethodPatch, "/api/dashboard/layouts/"+l.ID, map[string]any{"version": 1, "ops": ops})
	if status != http.StatusOK {
		t.Fatalf("PATCH on A: got %d %s, want 200", status, body)
	}
	onB.WaitVersion(t, 2)
	onB.CheckVersions(t, 2, 2)
	m := onB.Ops()[0]
	var got []dsync.Op
	if err := json.Unmarshal(m.Ops, &got); err != nil || m.Author != owner || m.Client != "" || !testdoc.SameOps(got, ops) {
		t.Errorf("op on B: got %s, want version 2 by %s (no client: REST) with ops %+v", m.Raw, owner, ops)
	}
	testtab.CheckConverged(t, c.b, owner, l.ID, onB)
}
