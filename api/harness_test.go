package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/app"
	"github.com/dashsync/dashsync/internal/testlog"
	"github.com/dashsync/dashsync/internal/testnet"
	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/source"
	"github.com/dashsync/dashsync/store/postgres"
	"github.com/dashsync/dashsync/store/sqlite"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// backend opens a fresh store of one kind for a test.
type backend struct {
	name string
	open func(t testing.TB) dsync.Store
}

var backends = []backend{
	{"sqlite", func(t testing.TB) dsync.Store {
		t.Helper()
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dashsync.db"))
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"postgres", func(t testing.TB) dsync.Store {
		t.Helper()
		url := testpg.NewDatabase(t)
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

// testCase is one behaviour of the REST suite; it gets a server of its backend to
// itself only through fresh users, so cases run in parallel on one server.
type testCase struct {
	name string
	run  func(t *testing.T, h *harness)
}

// suites are the REST test cases, one list per resource (see the *_test.go files).
var suites = [][]testCase{authCases, healthCases, layoutCases, widgetCases, dashboardCases, inputCases, boundsCases}

// TestREST runs the whole REST suite against a real server on each store backend.
func TestREST(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, b.open(t))
			for _, suite := range suites {
				for _, tc := range suite {
					t.Run(tc.name, func(t *testing.T) {
						t.Parallel()
						tc.run(t, h)
					})
				}
			}
		})
	}
}

// newTestSources is a registry of the built-in source kinds, whose http kind resolves
// with resolver (nil: no name resolves) and connects to loopback only
// (internal/testnet) under the SSRF allow-list allow, plus fetched test kinds:
// "test.echo" answers {"id": <widget id>}, "test.fail" always fails, "test.slow"
// answers only after its deadline has passed, once its test lets it (slowAnswers),
// and "test.pair" answers only once a second fetch of a test.pair widget of the same
// owner has begun (pairs).
func newTestSources(t testing.TB, allow []string, resolver *testnet.Resolver) *source.Registry {
	t.Helper()
	p, err := source.NewPolicy(allow)
	if err != nil {
		t.Fatal(err)
	}
	if resolver == nil {
		resolver = testnet.NewResolver(nil)
	}
	r, err := source.NewBuiltins(source.Options{HTTP: source.HTTPOptions{
		Policy: p, Resolver: resolver, Dialer: testnet.NewDialer(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	for name, f := range map[string]source.Funcs{
		"test.echo": {FetchFunc: func(_ context.Context, w dsync.Widget) (json.RawMessage, error) {
			return json.Marshal(map[string]string{"id": w.ID})
		}},
		"test.fail": {FetchFunc: func(context.Context, dsync.Widget) (json.RawMessage, error) {
			return nil, errors.New("the test source always fails")
		}},
		"test.slow": {FetchFunc: func(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
			<-ctx.Done()
			slowAnswers.gate(w.ID).wait() // answers late, whatever its context says
			return json.RawMessage(`{"late":true}`), nil
		}},
		"test.pair": {FetchFunc: func(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
			if err := pairs.meet(ctx, w.Owner); err != nil {
				return nil, err
			}
			return json.RawMessage(`{"paired":true}`), nil
		}},
	} {
		if err := r.Register(name, f); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// fetchDeadline is the per-widget fetch deadline of the test servers: generous, as
// none of their sources but test.slow should ever meet it, on however slow a machine.
const fetchDeadline = 10 * time.Second

// slowSourceDeadline is the per-widget fetch deadline of the server of the test that
// waits it out (TestWidgetBatch_SlowSourceIsCutAtItsDeadline).
const slowSourceDeadline = 500 * time.Millisecond

// slowGiveUp is how long test.slow waits for its test to let it answer before it
// answers anyway, noting that it had to: far past any deadline of the servers.
const slowGiveUp = 30 * time.Second

// slowAnswers holds the answers of test.slow widgets, by widget id.
var slowAnswers = &slowGates{gates: map[string]*slowGate{}}

type slowGates struct {
	mu    sync.Mutex
	gates map[string]*slowGate
}

// slowGate holds the answer of one test.slow widget until its test opens it.
type slowGate struct {
	open      chan struct{}
	once      sync.Once
	waitedOut atomic.Bool // the source answered at slowGiveUp, not opened
}

// gate is widget id's gate, made at its first use (by the test or the source).
func (g *slowGates) gate(id string) *slowGate {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gates[id] == nil {
		g.gates[id] = &slowGate{open: make(chan struct{})}
	}
	return g.gates[id]
}

func (g *slowGate) wait() {
	select {
	case <-g.open:
	case <-time.After(slowGiveUp):
		g.waitedOut.Store(true)
	}
}

// release lets the source answer.
func (g *slowGate) release() { g.once.Do(func() { close(g.open) }) }

// pairs are the test.pair fetches, met by owner: each waits (within its deadline) for
// another of its owner, so that two succeed only when they run at the same time.
var pairs = &pairing{met: map[string]chan struct{}{}, begun: map[string]int{}}

type pairing struct {
	mu    sync.Mutex
	begun map[string]int
	met   map[string]chan struct{} // closed when the second fetch of the owner begins
}

func (p *pairing) meet(ctx context.Context, owner string) error {
	p.mu.Lock()
	if p.met[owner] == nil {
		p.met[owner] = make(chan struct{})
	}
	met := p.met[owner]
	if p.begun[owner]++; p.begun[owner] == 2 {
		close(met)
	}
	p.mu.Unlock()
	select {
	case <-met:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no other test.pair fetch of %s began before the deadline: %w", owner, ctx.Err())
	}
}

// harness is a real HTTP server (httptest) over a real store.
type harness struct {
	url      string
	secret   []byte
	store    dsync.Store
	registry *prometheus.Registry
	logs     *testlog.Buffer
}

// newHarness starts a server on store with the test source kinds; change adjusts its
// API's Config.
func newHarness(t testing.TB, store dsync.Store, change ...func(*api.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, store, newTestSources(t, nil, nil), change...)
}

// newHarnessWith is newHarness with the source kinds of sources.
func newHarnessWith(t testing.TB, store dsync.Store, sources *source.Registry, change ...func(*api.Config)) *harness {
	t.Helper()
	return newHarnessFetching(t, store, sources, fetchDeadline, change...)
}

// newHarnessFetching is newHarnessWith with a per-widget fetch deadline of its own.
func newHarnessFetching(t testing.TB, store dsync.Store, sources *source.Registry, deadline time.Duration, change ...func(*api.Config)) *harness {
	t.Helper()
	h := &harness{secret: []byte(rand.Text() + rand.Text()), store: store, registry: prometheus.NewRegistry(), logs: &testlog.Buffer{}}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.url = serveApp(t, app.Config{
		Store: store, Secret: h.secret, Sources: sources, Fetchers: sources.Fetchers(),
		Logger: log, Registry: h.registry,
		Data: func(o *widgetdata.Options) { o.FetchTimeout = deadline },
		API: func(c *api.Config) {
			for _, f := range change {
				f(c)
			}
		},
	})
	return h
}

// serveApp builds the app of cfg on an embedded shared layer of its own (cfg.Shared)
// and serves it over loopback HTTP until the test ends, when it is shut down; it
// returns the server's URL.
func serveApp(t testing.TB, cfg app.Config) string {
	t.Helper()
	cfg.Shared = app.Embedded(0)
	t.Cleanup(cfg.Shared.Close)
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

// client is one user talking to the server.
type client struct {
	h     *harness
	user  string
	token string
}

// newUser returns a client for a fresh user, so that parallel cases never meet.
func (h *harness) newUser(t testing.TB) *client {
	t.Helper()
	user := "u-" + strings.ToLower(rand.Text()[:12])
	return &client{h: h, user: user, token: h.token(t, user, time.Hour)}
}

func (h *harness) token(t testing.TB, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := api.MintToken(h.secret, user, ttl)
	if err != nil {
		t.Fatalf("mint token: %v", err)
	}
	return tok
}

// resp is an answer, read whole.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the client's token. body is nil (none), a string or []byte
// (sent as is) or anything else (sent as JSON).
func (c *client) do(t testing.TB, method, path string, body any) *resp {
	t.Helper()
	return c.h.do(t, method, path, body, map[string]string{"Authorization": "Bearer " + c.token})
}

func (h *harness) do(t testing.TB, method, path string, body any, header map[string]string) *resp {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.url+path, r)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &resp{status: res.StatusCode, header: res.Header, body: b}
}

// want checks the status and, when v is not nil, decodes the body into it.
func (r *resp) want(t testing.TB, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d, want %d; body: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// errorBody is the contract's error answer.
type errorBody struct {
	Error struct {
		Code         string             `json:"code"`
		Message      string             `json:"message"`
		Details      []dsync.FieldError `json:"details"`
		RetryAfterMs int64              `json:"retryAfterMs"`
	} `json:"error"`
	Current   json.RawMessage  `json:"current"`
	Conflicts []dsync.Conflict `json:"conflicts"`
}

// wantError checks an error answer's status and code, and returns its body.
func (r *resp) wantError(t testing.TB, status int, code string) errorBody {
	t.Helper()
	var e errorBody
	r.want(t, status, &e)
	if e.Error.Code != code {
		t.Fatalf("got error code %q, want %q; body: %s", e.Error.Code, code, r.body)
	}
	if e.Error.Message == "" {
		t.Fatalf("error without a message: %s", r.body)
	}
	return e
}

// badCreate is a create the API refuses: its body, and the error it answers (field,
// when not empty, named in the error's details).
type badCreate struct {
	name, body string
	status     int
	code       string
	field      string
}

// wantCreatesRefused posts each case's body to the collection at path, a subtest
// each, wanting its error; then it wants the collection (items of type T, listed
// under the path's last segment) still empty: a refused create leaves nothing.
func wantCreatesRefused[T any](t *testing.T, c *client, path string, cases []badCreate) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := c.do(t, "POST", path, tc.body).wantError(t, tc.status, tc.code)
			if tc.field != "" {
				e.wantDetail(t, tc.field, "")
			}
		})
	}
	key := path[strings.LastIndex(path, "/")+1:]
	var list map[string][]T
	c.do(t, "GET", path, nil).want(t, http.StatusOK, &list)
	if len(list[key]) != 0 {
		t.Errorf("refused creates left %s: %+v", key, list[key])
	}
}

// wantDetail checks that an error names field (and rule, when not empty).
func (e errorBody) wantDetail(t testing.TB, field, rule string) {
	t.Helper()
	for _, d := range e.Error.Details {
		if d.Field == field && (rule == "" || d.Rule == rule) {
			return
		}
	}
	t.Fatalf("got details %+v, want one with field %q rule %q", e.Error.Details, field, rule)
}

// layout is a layout as the API answers it.
type layout struct {
	ID        string                `json:"id"`
	Name      string                `json:"name"`
	IsDefault bool                  `json:"isDefault"`
	Columns   int                   `json:"columns"`
	Items     map[string]dsync.Item `json:"items"`
	Settings  map[string]any        `json:"settings"`
	Version   int64                 `json:"version"`
	CreatedAt string                `json:"createdAt"`
	UpdatedAt string                `json:"updatedAt"`
	Rebased   *bool                 `json:"rebased,omitempty"`
}

type widget struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Source   dsync.Source   `json:"source"`
	Settings map[string]any `json:"settings"`
	Version  int64          `json:"version"`
	Rebased  *bool          `json:"rebased,omitempty"`
}

// createWidget creates a widget of kind ("static" or "push" or a test kind).
func (c *client) createWidget(t testing.TB, kind string) widget {
	t.Helper()
	src := map[string]any{"kind": kind}
	if kind == "static" {
		src["data"] = map[string]int{"value": 42}
	}
	var w widget
	c.do(t, "POST", "/api/dashboard/widgets", map[string]any{"type": "stat", "title": "T", "source": src}).
		want(t, http.StatusCreated, &w)
	return w
}

// createLayout creates a layout placing the widgets at (0,0,2,2), (2,0,2,2), ….
func (c *client) createLayout(t testing.TB, name string, widgets ...string) layout {
	t.Helper()
	items := map[string]dsync.Item{}
	for i, id := range widgets {
		items[id] = dsync.Item{X: (2 * i) % 12, Y: 2 * ((2 * i) / 12), W: 2, H: 2}
	}
	var l layout
	c.do(t, "POST", "/api/dashboard/layouts", map[string]any{"name": name, "columns": 12, "items": items}).
		want(t, http.StatusCreated, &l)
	return l
}

// getLayout reads a layout.
func (c *client) getLayout(t testing.TB, id string) layout {
	t.Helper()
	var l layout
	c.do(t, "GET", "/api/dashboard/layouts/"+id, nil).want(t, http.StatusOK, &l)
	return l
}

// snapshot is the raw state of what a request might change: used to show that a
// refused request changed nothing.
func (c *client) snapshot(t testing.TB, paths ...string) []string {
	t.Helper()
	out := make([]string, len(paths))
	for i, p := range paths {
		r := c.do(t, "GET", p, nil)
		out[i] = fmt.Sprintf("%d %s", r.status, r.body)
	}
	return out
}

// wantUnchanged compares a snapshot taken before a request with the state after it.
func (c *client) wantUnchanged(t testing.TB, before []string, paths ...string) {
	t.Helper()
	after := c.snapshot(t, paths...)
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("GET %s changed:\nbefore: %s\nafter:  %s", paths[i], before[i], after[i])
		}
	}
}

func ptr[T any](v T) *T { return &v }
