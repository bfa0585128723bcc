package api_test

// The harness shared by FuzzREST, FuzzWebSocket and TestBadInput_NoLeaks: a real
// server wired as cmd/dashsync wires the embedded default, a small script language the
// seed corpora are written in, a generator of structured requests driven by the fuzz
// input, and the checks every answer and the store must pass.
//
// A fuzz input is (script string, entropy []byte). The script is a list of steps
// separated by lines "---"; the first line of a step says what it is:
//
//	METHOD TARGET [option…]      a REST request; the lines after it are its body
//	WS text|binary [x=N]          a WebSocket frame (FuzzWebSocket); the lines after it are the payload
//	@gen K                        K requests (or frames) generated from entropy
//	@history N M                  N committed versions of M ops each on layout {L}, written
//	                              to the store in one transaction (a long op log, fast)
//	@wait                         judge the answers of the requests sent with bg
//	@sleep MS                     pause (at most 2 s), to let a background request get going
//
// REST options: auth=a|b|expired|garbage|none|empty|basic|query-a|query-b|idp-… (default a),
// ct=json|text|form|multipart|none|<raw> (default json with a body), im=<If-Match>,
// inm=<If-None-Match>, origin=<Origin>, h:Name=Value, x=N (send it N times), gen (the
// body is generated from entropy instead), bg (send it in the background: the steps
// after it run meanwhile), max=DUR (the answer must come within DUR; default 5 s).
//
// Text is expanded before use: "{N}" is the repetition (0…x-1); "<<K,TEXT>>" is TEXT K
// times joined by commas and "<<K;TEXT>>" joined by nothing, "{I}" inside being the
// index; then placeholders: {L} {L2} {W} {WP} {WC} {WS} {WH} (the first user's layouts
// and widgets: static, push, demo.counter, demo.series, http), {BL} {BW} (the second
// user's), {UA} {UB} (users), {TA} {TB} {TX} (tokens of A, B, and A expired), {V} {L2V}
// {WV} {BLV} (current versions of L, L2, W, BL), {NEW} (the id of the last object a
// 201 answer created), {NEW@k} (the k-th, from 0; "{NEW@N}"/"{NEW@I}" name the current
// repetition or index), {NEWV} (its version), {STUB} (a loopback JSON server http
// sources may reach), {UUID} (fresh each time), {EDIT} (one UUID per run).
//
// While fuzzing (not under plain go test) the costly parts of a script are divided by
// fzServer.scale, and minimization gets 2 s unless -fuzzminimizetime says otherwise:
// both keep the executions per second of a whole-server target useful.

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/app"
	"github.com/dashsync/dashsync/internal/testidp"
	"github.com/dashsync/dashsync/internal/testnet"
	"github.com/dashsync/dashsync/jwks"
	"github.com/dashsync/dashsync/source"
	"github.com/dashsync/dashsync/store/sqlite"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/web"
)

// Bounds of the harness itself.
const (
	fzMaxSteps    = 64              // steps of one script
	fzMaxRequests = 4000            // requests and frames of one script, repetitions included
	fzMaxRepeat   = 2000            // x=N
	fzMaxExpanded = 4 << 20         // bytes one expanded text may reach
	fzSlow        = 5 * time.Second // an answer slower than this is unbounded work (SPEC §12)
	fzHang        = 30 * time.Second
)

// fzCodes is the closed set of error codes (SPEC §4, §12) and the status of each.
var fzCodes = map[string]int{
	"bad_request": 400, "validation_failed": 400, "unauthorized": 401, "forbidden": 403,
	"not_found": 404, "version_conflict": 409, "conflict": 409, "too_large": 413,
	"timeout": 408, "precondition_failed": 412, "source_failed": 502, "rate_limited": 429,
	"unavailable": 503, "internal": 500,
}

// fzTrace logs every REST answer (DASHSYNC_FUZZ_TRACE=1), to read what an input did.
var fzTrace = os.Getenv("DASHSYNC_FUZZ_TRACE") != ""

var fzSecret = []byte("fuzz-secret-0123456789abcdef-0123456789")

// fzServer is the server under test: the real api.Server with the real hub, the
// embedded SQLite store and the built-in source kinds, wired as cmd/dashsync wires the
// embedded default (the service is the store's sole writer), with rate limits off. The
// http kind resolves no name and dials loopback only: besides the stub, every
// destination is refused before a packet is sent.
type fzServer struct {
	handler http.Handler
	srv     *httptest.Server
	wsURL   string
	store   dsync.Store
	svc     *dsync.Service
	hub     *hub.Hub
	stub    *httptest.Server
	idp     *testidp.Provider // signs the idp-… tokens; the server checks its issuer and audience
	// stranger is an RSA key the provider does not have (made once: RSA keys are slow
	// to make).
	stranger crypto.Signer
	logs     *fzLog
	users    atomic.Int64
	// scale divides the costly parts of a script (repetitions, requests, macro
	// counts, the long op log of @history) while fuzzing, so that mutations of the big
	// seeds (and their minimization) stay fast; 1 under plain go test, where the seeds
	// run at full size.
	scale int
}

// fzLog keeps the server's last error lines, to show with a failure.
type fzLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *fzLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	if len(l.lines) > 8 {
		l.lines = l.lines[len(l.lines)-8:]
	}
	return len(p), nil
}

// recent returns the error lines logged since the last call.
func (l *fzLog) recent() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		if len(line) > 3000 {
			line = line[:3000] + "…"
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	l.lines = nil
	return b.String()
}

func newFzServer(tb testing.TB) *fzServer {
	tb.Helper()
	ctx := context.Background()
	dir := fzTempDir(tb)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "dashsync.db"))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	stub := httptest.NewServer(http.HandlerFunc(fzStub))
	logs := &fzLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError}))
	reg := prometheus.NewRegistry()
	policy, err := source.NewPolicy([]string{strings.TrimPrefix(stub.URL, "http://")})
	if err != nil {
		tb.Fatal(err)
	}
	sources, err := source.NewBuiltins(source.Options{HTTP: source.HTTPOptions{
		Policy: policy, Resolver: testnet.NewResolver(nil), Dialer: fzLoopbackDialer{}}})
	if err != nil {
		tb.Fatal(err)
	}
	shared := app.Embedded(0)
	idp := testidp.New(tb, false)
	a, err := app.New(ctx, app.Config{
		Store: st, SoleWriter: true, Shared: shared, Secret: fzSecret,
		IdentityProvider: &api.IdentityProvider{Keys: idp.ReadySet(tb, jwks.Options{}), Issuer: testidp.Issuer, Audience: testidp.Audience},
		Sources:          sources, Fetchers: sources.Fetchers(), Logger: log, Registry: reg, Web: web.FS(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	svc, h, handler := a.Service, a.Hub, a.Handler
	srv := httptest.NewServer(handler)
	s := &fzServer{handler: handler, srv: srv, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/ws",
		store: st, svc: svc, hub: h, stub: stub, idp: idp, stranger: testidp.NewPrivateKey(tb, testidp.RS256), logs: logs, scale: 1}
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		s.scale = 10
	}
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
		srv.Close()
		stub.Close()
		_ = sources.Close()
		shared.Close()
		_ = st.Close()
	})
	return s
}

// fzQuickMinimize gives minimization 2 s instead of go test's 60, unless
// -fuzzminimizetime was given: each candidate of a minimization is a whole run (two
// users and their fixture, the requests, the store check), and the fuzzer minimizes
// every input that finds new coverage, which would otherwise take most of a short run.
func fzQuickMinimize() {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.fuzzminimizetime" })
	if !given {
		_ = flag.Set("test.fuzzminimizetime", "2s")
	}
}

// fzTempDir is a temporary directory on tmpfs when the machine has one (the store
// syncs every commit; fuzzing commits a lot), else the test's own. Fuzz workers are
// killed when fuzzing ends, before their cleanups run: the directory names its process,
// and the directories of processes that are gone are removed here.
func fzTempDir(tb testing.TB) string {
	tb.Helper()
	const shm = "/dev/shm"
	if fi, err := os.Stat(shm); err != nil || !fi.IsDir() {
		return tb.TempDir()
	}
	old, _ := filepath.Glob(filepath.Join(shm, "dashsync-fuzz-*-*"))
	for _, d := range old {
		pid, err := strconv.Atoi(strings.Split(filepath.Base(d), "-")[2])
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
	dir, err := os.MkdirTemp(shm, fmt.Sprintf("dashsync-fuzz-%d-", os.Getpid()))
	if err != nil {
		return tb.TempDir()
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// fzStub is what http sources may reach: JSON, except where the path asks otherwise.
func fzStub(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/notjson":
		fmt.Fprint(w, "not json")
	case "/big":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "%q", strings.Repeat("x", 2<<20))
	case "/redirect":
		http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
	case "/500":
		http.Error(w, "failed", http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
	}
}

// fzLoopbackDialer connects to loopback addresses only; anything else is refused
// without a packet sent (a fuzzed URL may name any address the policy allows).
type fzLoopbackDialer struct{}

func (fzLoopbackDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("dial %s %s: refused: the fuzz server reaches loopback only", network, address)
	}
	return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, address)
}

// fzUser is one user of a run and its tokens.
type fzUser struct {
	id, token, expired string
	// idp are tokens of the identity provider by auth option: idp-rs, idp-es and
	// idp-ed are good (RS256, ES256, EdDSA); the others are each wrong in one way.
	idp map[string]string
}

// fzRun is one fuzz input executed against the server: two fresh users with a
// fixture each, so that inputs never meet and a failing input fails again alone.
type fzRun struct {
	s       *fzServer
	t       testing.TB
	fail    func(format string, args ...any) // an invariant broke
	a, b    fzUser
	ids     map[string]string // placeholder name → id
	owner   map[string]string // object id → its owner
	created []string          // ids of 201 answers, in order
	// mentioned holds "user id" for another user's ids a user's requests named.
	mentioned map[string]bool
	edit      string
	ent       *fzBytes
	sent      int // requests and frames so far
	ws        *fzConn
	pending   chan *fzResult // answers of background requests
	bg        int            // background requests not judged yet
	// sharedWith lists, per actor (a user id, or a link's "link:<id>"), the layouts
	// an access or link answer gave it (SPEC §10): it may see them and the widgets
	// they place. link is the last link made ("auth=link" sends its token).
	sharedWith map[string][]string
	link       struct{ token, user, id string }
}

// newRun creates the users and their fixtures through the service. fail reports a
// broken invariant; fuzz targets pass t.Fatalf, the leak test a recorder.
func (s *fzServer) newRun(t testing.TB, entropy []byte, fail func(string, ...any)) *fzRun {
	t.Helper()
	n := s.users.Add(1)
	r := &fzRun{s: s, t: t, fail: fail, ids: map[string]string{}, owner: map[string]string{},
		mentioned: map[string]bool{}, sharedWith: map[string][]string{}, pending: make(chan *fzResult, fzMaxRepeat), edit: uuid.NewString(), ent: &fzBytes{b: entropy}}
	r.a = s.user(t, fmt.Sprintf("fz%d-a", n))
	r.b = s.user(t, fmt.Sprintf("fz%d-b", n))
	ctx := context.Background()
	widget := func(u fzUser, name string, src dsync.Source) {
		t.Helper()
		typ, title := "stat", "Fuzz "+name
		w, err := s.svc.CreateWidget(ctx, u.id, dsync.WidgetDoc{Type: &typ, Title: &title, Source: &src}, u.id)
		if err != nil {
			t.Fatalf("fixture widget %s: %v", name, err)
		}
		r.ids[name], r.owner[w.ID] = w.ID, u.id
	}
	layout := func(u fzUser, name string, items ...string) {
		t.Helper()
		title, cols := "Fuzz "+name, 12
		doc := dsync.LayoutDoc{Name: &title, Columns: &cols, Items: map[string]dsync.Item{}}
		for i, it := range items {
			doc.Items[r.ids[it]] = dsync.Item{X: 2 * i, Y: 0, W: 2, H: 2}
		}
		l, err := s.svc.CreateLayout(ctx, u.id, dsync.NewLayout{Doc: doc, Author: u.id})
		if err != nil {
			t.Fatalf("fixture layout %s: %v", name, err)
		}
		r.ids[name], r.owner[l.ID] = l.ID, u.id
	}
	widget(r.a, "W", dsync.Source{Kind: "static", Data: json.RawMessage(`{"value":42}`)})
	widget(r.a, "WP", dsync.Source{Kind: "push"})
	widget(r.a, "WC", dsync.Source{Kind: "demo.counter"})
	widget(r.a, "WS", dsync.Source{Kind: "demo.series", RefreshSeconds: 1})
	widget(r.a, "WH", dsync.Source{Kind: "http", URL: s.stub.URL + "/"})
	layout(r.a, "L", "W", "WP", "WH")
	layout(r.a, "L2", "WC")
	widget(r.b, "BW", dsync.Source{Kind: "static", Data: json.RawMessage(`{"value":7}`)})
	layout(r.b, "BL", "BW")
	return r
}

func (s *fzServer) user(t testing.TB, id string) fzUser {
	t.Helper()
	tok, err := api.MintToken(fzSecret, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := api.MintTokenAt(fzSecret, id, time.Now().Add(-2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return fzUser{id: id, token: tok, expired: exp, idp: s.idpTokens(t, id)}
}

// idpTokens are the identity provider's tokens for user: fzUser.idp.
func (s *fzServer) idpTokens(t testing.TB, user string) map[string]string {
	t.Helper()
	p := s.idp
	claims := func(kv ...any) jwt.MapClaims {
		c := testidp.Claims(user)
		for i := 0; i+1 < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
	confused.Header["kid"] = p.KID(testidp.RS256)
	confusedTok, err := confused.SignedString(p.PublicKeyPEM(t, testidp.RS256))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"idp-rs":          p.Sign(t, testidp.RS256, claims()),
		"idp-es":          p.Sign(t, testidp.ES256, claims()),
		"idp-ed":          p.Sign(t, testidp.EdDSA, claims()),
		"idp-bad-iss":     p.Sign(t, testidp.RS256, claims("iss", "https://other.test/")),
		"idp-bad-aud":     p.Sign(t, testidp.ES256, claims("aud", "another-api")),
		"idp-expired":     p.Sign(t, testidp.EdDSA, claims("exp", time.Now().Add(-time.Hour).Unix())),
		"idp-unknown-kid": testidp.SignWith(t, testidp.RS256, "no-such-kid", s.stranger, claims()),
		"idp-none":        none,
		"idp-confused":    confusedTok,
		"idp-link-sub":    p.Sign(t, testidp.ES256, claims("sub", dsync.LinkUserPrefix+"x")),
		"idp-nul-kid":     testidp.SignWith(t, testidp.RS256, "\x00", s.stranger, claims()),
	}
}

// fzStep is one parsed step of a script.
type fzStep struct {
	kind    string // "rest", "ws", "gen", "history"
	method  string
	target  string
	auth    string
	ct      *string
	headers [][2]string
	body    *string
	gen     bool
	repeat  int
	binary  bool
	bg      bool          // send in the background; "@wait" (or the end) judges it
	max     time.Duration // max=DUR: the answer's time bound
	n, m    int
}

// fzParse reads a script; what does not parse is skipped, so mutated scripts still
// run what they can.
func fzParse(script string) []fzStep {
	var steps []fzStep
	for block := range strings.SplitSeq(strings.ReplaceAll(script, "\r\n", "\n"), "\n---\n") {
		block = strings.TrimPrefix(block, "---\n")
		if len(steps) == fzMaxSteps {
			break
		}
		head, rest, hasBody := strings.Cut(block, "\n")
		fields := strings.Fields(head)
		if len(fields) == 0 {
			continue
		}
		st := fzStep{repeat: 1, auth: "a"}
		if hasBody {
			st.body = &rest
		}
		switch {
		case fields[0] == "@gen":
			st.kind, st.n = "gen", 1
			if len(fields) > 1 {
				st.n, _ = strconv.Atoi(fields[1])
			}
			st.n = min(max(st.n, 0), 16)
		case fields[0] == "@wait":
			st.kind = "wait"
		case fields[0] == "@sleep":
			st.kind = "sleep"
			if len(fields) > 1 {
				st.n, _ = strconv.Atoi(fields[1])
			}
			st.n = min(max(st.n, 0), 2000)
		case fields[0] == "@history":
			if len(fields) < 3 {
				continue
			}
			st.kind = "history"
			st.n, _ = strconv.Atoi(fields[1])
			st.m, _ = strconv.Atoi(fields[2])
			if st.n < 1 || st.n > 1100 || st.m < 1 || st.m > 1000 {
				continue
			}
		case fields[0] == "WS":
			st.kind = "ws"
			for _, o := range fields[1:] {
				switch {
				case o == "binary":
					st.binary = true
				case strings.HasPrefix(o, "x="):
					st.repeat, _ = strconv.Atoi(o[2:])
				}
			}
		default:
			if len(fields) < 2 || !strings.HasPrefix(fields[1], "/") {
				continue
			}
			st.kind, st.method, st.target = "rest", fields[0], fields[1]
			for _, o := range fields[2:] {
				k, v, _ := strings.Cut(o, "=")
				switch {
				case k == "auth":
					st.auth = v
				case k == "ct":
					st.ct = &v
				case k == "im":
					st.headers = append(st.headers, [2]string{"If-Match", v})
				case k == "inm":
					st.headers = append(st.headers, [2]string{"If-None-Match", v})
				case k == "origin":
					st.headers = append(st.headers, [2]string{"Origin", v})
				case strings.HasPrefix(k, "h:"):
					st.headers = append(st.headers, [2]string{k[2:], v})
				case k == "x":
					st.repeat, _ = strconv.Atoi(v)
				case k == "gen":
					st.gen = true
				case k == "bg":
					st.bg = true
				case k == "max":
					st.max, _ = time.ParseDuration(v)
				}
			}
		}
		st.repeat = min(max(st.repeat, 1), fzMaxRepeat)
		steps = append(steps, st)
	}
	return steps
}

// expand turns step text into bytes: the repetition, the macros, the placeholders.
func (r *fzRun) expand(s string, n int) []byte {
	s = strings.ReplaceAll(s, "{N}", strconv.Itoa(n))
	s = strings.ReplaceAll(s, "@N}", "@"+strconv.Itoa(n)+"}")
	s = fzMacros(s, r.s.scale)
	if !strings.Contains(s, "{") {
		return []byte(s)
	}
	memo := map[string]string{}
	var b strings.Builder
	for b.Len() <= fzMaxExpanded {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		// Placeholder names are short: look no further, so a body of many braces
		// expands in linear time.
		j := strings.IndexByte(s[:min(len(s), 24)], '}')
		if j < 0 {
			b.WriteByte('{')
			s = s[1:]
			continue
		}
		name := s[1:j]
		v, ok := memo[name]
		if !ok {
			v, ok = r.placeholder(name)
			if ok && name != "UUID" {
				memo[name] = v
			}
		}
		if !ok {
			b.WriteByte('{')
			s = s[1:]
			continue
		}
		b.WriteString(v)
		s = s[j+1:]
	}
	b.WriteString(s)
	return []byte(b.String())
}

// fzMacros expands "<<K,TEXT>>" and "<<K;TEXT>>", K divided by scale (but kept up
// to 10).
func fzMacros(s string, scale int) string {
	if !strings.Contains(s, "<<") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "<<")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i+2:]
		k := 0
		for k < len(s) && k < 7 && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		end := strings.Index(s, ">>")
		if k == 0 || k >= len(s) || (s[k] != ',' && s[k] != ';') || end < k {
			b.WriteString("<<")
			continue
		}
		count, _ := strconv.Atoi(s[:k])
		count = max(count/scale, min(count, 10))
		sep := ""
		if s[k] == ',' {
			sep = ","
		}
		text := s[k+1 : end]
		s = s[end+2:]
		indexed := strings.Contains(text, "{I}") || strings.Contains(text, "@I}")
		for i := 0; i < count && b.Len() < fzMaxExpanded; i++ {
			if i > 0 {
				b.WriteString(sep)
			}
			if indexed {
				x := strings.ReplaceAll(text, "{I}", strconv.Itoa(i))
				b.WriteString(strings.ReplaceAll(x, "@I}", "@"+strconv.Itoa(i)+"}"))
			} else {
				b.WriteString(text)
			}
		}
	}
}

func (r *fzRun) placeholder(name string) (string, bool) {
	ctx := context.Background()
	layoutVersion := func(u fzUser, key string) string {
		l, err := r.s.store.Layout(ctx, u.id, r.ids[key])
		if err != nil {
			return "1"
		}
		return strconv.FormatInt(l.Version, 10)
	}
	switch name {
	case "L", "L2", "W", "WP", "WC", "WS", "WH", "BL", "BW":
		return r.ids[name], true
	case "UA":
		return r.a.id, true
	case "UB":
		return r.b.id, true
	case "TA":
		return r.a.token, true
	case "TB":
		return r.b.token, true
	case "TX":
		return r.a.expired, true
	case "V":
		return layoutVersion(r.a, "L"), true
	case "L2V":
		return layoutVersion(r.a, "L2"), true
	case "BLV":
		return layoutVersion(r.b, "BL"), true
	case "WV":
		if w, err := r.s.store.Widget(ctx, r.a.id, r.ids["W"]); err == nil {
			return strconv.FormatInt(w.Version, 10), true
		}
		return "1", true
	case "NEW":
		if len(r.created) == 0 {
			return "none", true
		}
		return r.created[len(r.created)-1], true
	case "NEWV":
		if len(r.created) == 0 {
			return "1", true
		}
		id := r.created[len(r.created)-1]
		u := r.owner[id]
		if l, err := r.s.store.Layout(ctx, u, id); err == nil {
			return strconv.FormatInt(l.Version, 10), true
		}
		if w, err := r.s.store.Widget(ctx, u, id); err == nil {
			return strconv.FormatInt(w.Version, 10), true
		}
		return "1", true
	case "STUB":
		return r.s.stub.URL, true
	case "LINK":
		return cmp.Or(r.link.id, "none"), true
	case "UUID":
		return uuid.NewString(), true
	case "EDIT":
		return r.edit, true
	}
	if k, ok := strings.CutPrefix(name, "NEW@"); ok {
		i, err := strconv.Atoi(k)
		if err != nil {
			return "", false
		}
		if i >= 0 && i < len(r.created) {
			return r.created[i], true
		}
		return "none", true
	}
	return "", false
}

// runREST executes the REST steps of a script (FuzzREST); other kinds are skipped.
func (r *fzRun) runREST(script string) {
	steps := fzParse(script)
	if len(steps) == 0 && !r.ent.empty() {
		steps = []fzStep{{kind: "gen", n: 1 + int(r.ent.byte()%4)}}
	}
	for _, st := range steps {
		switch st.kind {
		case "rest":
			r.restStep(st)
		case "gen":
			for range st.n {
				r.genREST()
			}
		case "history":
			r.history(st.n, st.m)
		case "wait":
			r.wait()
		case "sleep":
			time.Sleep(time.Duration(st.n) * time.Millisecond)
		}
		if r.sent >= fzMaxRequests/r.s.scale {
			break
		}
	}
	r.wait()
}

func (r *fzRun) restStep(st fzStep) {
	for n := range r.repeat(st) {
		if r.sent >= fzMaxRequests/r.s.scale {
			return
		}
		var body []byte
		switch {
		case st.gen:
			body = r.genBody(st.method, fzTemplateOf(st.target))
		case st.body != nil:
			body = r.expand(*st.body, n)
		}
		q := fzRequest{method: st.method, target: string(r.expand(st.target, n)), auth: st.auth, body: body,
			hasBody: st.gen || st.body != nil, ct: st.ct, max: st.max}
		for _, h := range st.headers {
			q.headers = append(q.headers, [2]string{h[0], string(r.expand(h[1], n))})
		}
		if !st.bg {
			r.do(q)
			continue
		}
		r.sent++
		r.bg++
		go func() { r.pending <- r.send(q) }()
	}
}

// repeat is how often a step runs.
func (r *fzRun) repeat(st fzStep) int { return max(st.repeat/r.s.scale, min(st.repeat, 10)) }

// history commits n versions of m ops each on layout L straight to the store, in one
// transaction: an op log as long as the contract keeps, without n requests' time.
// Each version sets /settings/h to its version m times over, so the log replays.
func (r *fzRun) history(n, m int) {
	n, m = max(n/r.s.scale, 1), max(m/r.s.scale, 1)
	ctx := context.Background()
	err := r.s.store.InTx(ctx, func(tx dsync.Tx) error {
		l, err := tx.Layout(ctx, r.a.id, r.ids["L"])
		if err != nil {
			return err
		}
		for range n {
			v := l.Version + 1
			val := json.RawMessage(strconv.FormatInt(v, 10))
			ops := make([]dsync.Op, m)
			for i := range ops {
				ops[i] = dsync.Op{Op: dsync.OpAdd, Path: "/settings/h", Value: val}
			}
			next := l.Clone()
			next.Settings["h"], next.Version, next.UpdatedAt = val, v, dsync.NewTime(time.Now())
			doc, err := json.Marshal(next)
			if err != nil {
				return err
			}
			if err := tx.UpdateLayout(ctx, next, dsync.Change{Version: v, Ops: ops, Author: r.a.id, Time: next.UpdatedAt, Doc: doc}); err != nil {
				return err
			}
			l = next
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("@history %d %d: %v", n, m, err)
	}
}

// fzRequest is one REST request before it is built.
type fzRequest struct {
	method, target, auth string
	headers              [][2]string
	body                 []byte
	hasBody              bool
	ct                   *string
	max                  time.Duration // the answer's time bound; 0: fzSlow
}

// tokenUser is the user whose valid token the request carries ("" for none).
func (r *fzRun) tokenUser(auth string) string {
	switch auth {
	case "a", "query-a", "idp-rs", "idp-es", "idp-ed":
		return r.a.id
	case "b", "query-b":
		return r.b.id
	case "link":
		return r.link.user
	}
	return ""
}

// reaches reports whether user may see id of another user through a layout shared
// with it: the layout itself, or a widget it places now.
func (r *fzRun) reaches(user, id string) bool {
	for _, lid := range r.sharedWith[user] {
		if lid == id {
			return true
		}
		if l, err := r.s.store.Layout(context.Background(), r.owner[lid], lid); err == nil {
			if _, ok := l.Items[id]; ok {
				return true
			}
		}
	}
	return false
}

// noteSharing records what a sharing answer gave: the users an access list names,
// the actor of a new link.
func (r *fzRun) noteSharing(method, tmpl, path string, status int, body []byte) {
	segs := strings.Split(path, "/")
	if len(segs) < 5 {
		return
	}
	lid := segs[4]
	switch {
	case method == http.MethodPut && tmpl == "/api/dashboard/layouts/:id/access" && status == http.StatusOK:
		var a struct {
			Users map[string]string `json:"users"`
		}
		if json.Unmarshal(body, &a) == nil {
			for u := range a.Users {
				r.sharedWith[u] = append(r.sharedWith[u], lid)
			}
		}
	case method == http.MethodPost && tmpl == "/api/dashboard/layouts/:id/links" && status == http.StatusCreated:
		var l struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		if json.Unmarshal(body, &l) == nil && l.Token != "" {
			r.link.token, r.link.user, r.link.id = l.Token, dsync.LinkUserPrefix+l.ID, l.ID
			r.sharedWith[r.link.user] = append(r.sharedWith[r.link.user], lid)
		}
	}
}

// fzResult is a REST answer as the harness recorded it.
type fzResult struct {
	q        fzRequest
	req      *http.Request
	target   string
	status   int
	header   http.Header
	body     []byte
	took     time.Duration
	panicked any
	stack    []byte
	hung     string // a goroutine dump when the request did not answer within fzHang
}

// do sends one request in-process and checks its answer.
func (r *fzRun) do(q fzRequest) {
	r.sent++
	if res := r.send(q); res != nil {
		r.judge(res)
	}
}

// send serves one request in-process and records the answer; nil when the request
// is not one a client can send. It touches nothing of the run but the server, so it
// may run in the background (the "bg" option).
func (r *fzRun) send(q fzRequest) *fzResult {
	target := q.target
	switch q.auth {
	case "query-a", "query-b":
		tok := r.a.token
		if q.auth == "query-b" {
			tok = r.b.token
		}
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + "access_token=" + url.QueryEscape(tok)
	}
	var rd io.Reader
	if q.hasBody {
		rd = bytes.NewReader(q.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), fzHang)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, q.method, "http://127.0.0.1:8080"+target, rd)
	if err != nil {
		return nil // not a request a client can send (a bad method, a control byte in the URL)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	if req.Body == nil {
		req.Body = http.NoBody // as a server's request always has one
	}
	switch q.auth {
	case "a":
		req.Header.Set("Authorization", "Bearer "+r.a.token)
	case "b":
		req.Header.Set("Authorization", "Bearer "+r.b.token)
	case "expired":
		req.Header.Set("Authorization", "Bearer "+r.a.expired)
	case "garbage":
		req.Header.Set("Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	case "link":
		req.Header.Set("Authorization", "Bearer "+cmp.Or(r.link.token, "dsl_none_none"))
	case "empty":
		req.Header.Set("Authorization", "Bearer ")
	case "basic":
		req.Header.Set("Authorization", "Basic YTpi")
	default:
		if strings.HasPrefix(q.auth, "idp-") {
			req.Header.Set("Authorization", "Bearer "+r.a.idp[q.auth])
		}
	}
	ct := "application/json"
	if q.ct != nil {
		switch *q.ct {
		case "json":
		case "text":
			ct = "text/plain"
		case "form":
			ct = "application/x-www-form-urlencoded"
		case "multipart":
			ct = "multipart/form-data; boundary=x"
		case "none":
			ct = ""
		default:
			ct = *q.ct
		}
	}
	if q.hasBody && ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for _, h := range q.headers {
		req.Header.Add(h[0], h[1])
	}
	// A recorder cannot be hijacked: /api/ws is driven here as the plain GET it is
	// without upgrade headers (FuzzWebSocket drives real upgrades).
	req.Header.Del("Upgrade")
	req.Header.Del("Connection")

	rec := httptest.NewRecorder()
	done := make(chan struct{})
	var panicked any
	var stack []byte
	start := time.Now()
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				panicked, stack = p, debugStack()
			}
		}()
		r.s.handler.ServeHTTP(rec, req)
	}()
	res := &fzResult{q: q, req: req, target: target}
	select {
	case <-done:
	case <-time.After(fzHang):
		res.hung = fzGoroutines()
		return res
	}
	res.took = time.Since(start)
	res.status, res.header, res.body = rec.Code, rec.Header(), rec.Body.Bytes()
	res.panicked, res.stack = panicked, stack
	return res
}

// judge checks a recorded answer, on the test's goroutine.
func (r *fzRun) judge(res *fzResult) {
	q := res.q
	if res.hung != "" {
		r.fail("%s %s did not answer within %s:\n%s", q.method, fzShort(res.target), fzHang, res.hung)
		return
	}
	if fzTrace {
		r.t.Logf("%s %s (auth %s) → %d in %s: %s", q.method, fzShort(res.target), q.auth, res.status, res.took.Round(time.Microsecond), fzShort(string(res.body)))
	}
	if res.panicked != nil {
		r.fail("%s %s panicked: %v\n%s", q.method, fzShort(res.target), res.panicked, res.stack)
		return
	}
	r.checkAnswer(q, res.req, res.status, res.header, res.body, res.took)
}

// wait judges the answers of the requests sent in the background.
func (r *fzRun) wait() {
	for ; r.bg > 0; r.bg-- {
		if res := <-r.pending; res != nil {
			r.judge(res)
		}
	}
}

func debugStack() []byte {
	buf := make([]byte, 64<<10)
	return buf[:runtime.Stack(buf, false)]
}

// fzGoroutines is a dump of every goroutine, for failures that hang.
func fzGoroutines() string {
	buf := make([]byte, 4<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// fzShort keeps failure messages readable when an input is huge.
func fzShort(s string) string {
	if len(s) > 300 {
		return fmt.Sprintf("%q… (%d bytes)", s[:300], len(s))
	}
	return strconv.Quote(s)
}

// mention records the other user's ids that user's request names: answers may carry
// them back (an error naming the id, a batch result under it, a value stored as
// sent) without anything leaking.
func (r *fzRun) mention(user, request string) {
	if user == "" {
		return
	}
	for id, o := range r.owner {
		if o != user && strings.Contains(request, id) {
			r.mentioned[user+" "+id] = true
		}
	}
}

// checkAnswer holds a REST answer to the contract: no 500 (nor 5xx but 502 and 503),
// the §4 error body with a code of the closed set matching the status, JSON bodies,
// bounded time, no other user's object, no string input that is not valid UTF-8
// without NUL accepted, no edit over the §12 bounds accepted, history pages ≤ 1 MiB
// of ops.
func (r *fzRun) checkAnswer(q fzRequest, req *http.Request, status int, h http.Header, body []byte, took time.Duration) {
	what := fmt.Sprintf("%s %s (auth %s, body %s)", q.method, fzShort(q.target), q.auth, fzShort(string(q.body)))
	path := req.URL.Path
	isAPI := strings.HasPrefix(path, "/api/")
	user := r.tokenUser(q.auth)
	r.mention(user, q.target+"\n"+string(q.body))
	if status >= 500 && status != http.StatusBadGateway && status != http.StatusServiceUnavailable {
		r.fail("%s: got status %d, want no 5xx but 502 and 503; body: %s\nserver log:\n%s", what, status, fzShort(string(body)), r.s.logs.recent())
		return
	}
	if bound := cmp.Or(q.max, fzSlow); took > bound {
		r.fail("%s: took %s, want at most %s (no request may make the server do unbounded work, nor hold up others)", what, took.Round(time.Millisecond), bound)
	}
	// The demo page's files are served as files (http.ServeContent answers their
	// preconditions and ranges with bare 304, 412 and 416), and /metrics as text: the
	// §4 body is the API's, and that of every path the router does not know (404).
	page := path == "/" || path == "/metrics" || strings.HasPrefix(path, "/web/") && status != http.StatusNotFound
	if status >= 400 && !page {
		if msg := fzCheckErrorBody(body, status); msg != "" {
			r.fail("%s: status %d: %s; body: %s", what, status, msg, fzShort(string(body)))
		}
		return
	}
	if status >= 400 {
		return
	}
	if status == http.StatusNotModified && req.Header.Get("If-None-Match") == "" && !page {
		r.fail("%s: 304 without If-None-Match", what)
	}
	ok2xx := status >= 200 && status < 300
	if !ok2xx {
		return
	}
	if isAPI && status != http.StatusNoContent && len(body) > 0 {
		// Numbers are kept as written (1e400 is valid JSON); the nesting must be what
		// a JSON decoder accepts.
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			r.fail("%s: status %d with a body that does not decode as JSON (%v): %s", what, status, err, fzShort(string(body)))
		}
	}
	if isAPI && user == "" && path != "/api/openapi.json" {
		r.fail("%s: status %d without a valid token, want 401", what, status)
	}
	if bad := fzBadString([]byte(path)); bad != "" {
		r.fail("%s: status %d for a URL path with %s, want an error (SPEC §12)", what, status, bad)
	}
	if q.hasBody && q.method != http.MethodGet && q.method != http.MethodDelete && q.method != http.MethodHead && isAPI {
		if bad := fzBadString(q.body); bad != "" {
			r.fail("%s: status %d for a body with %s, want an error (SPEC §12)", what, status, bad)
		}
	}
	if user != "" {
		for _, seg := range strings.Split(path, "/") {
			if o, ok := r.owner[seg]; ok && o != user && !r.reaches(user, seg) {
				r.fail("%s: status %d for another user's object %s, want not_found", what, status, seg)
			}
		}
		for id, o := range r.owner {
			if o != user && bytes.Contains(body, []byte(id)) && !r.mentioned[user+" "+id] && !r.reaches(user, id) {
				r.fail("%s: the answer carries %s, an object of another user: %s", what, id, fzShort(string(body)))
			}
		}
	}
	tmpl := fzTemplateOf(path)
	r.noteSharing(q.method, tmpl, path, status, body)
	switch {
	case q.method == http.MethodPatch && tmpl == "/api/dashboard/layouts/:id":
		var p struct {
			Ops json.RawMessage `json:"ops"`
		}
		if json.Unmarshal(q.body, &p) == nil {
			var ops []json.RawMessage
			_ = json.Unmarshal(p.Ops, &ops)
			if len(ops) > 500 || len(p.Ops) > 64<<10 {
				r.fail("%s: accepted an edit of %d ops, %d bytes; want at most 500 ops and 64 KiB (SPEC §12)", what, len(ops), len(p.Ops))
			}
		}
	case q.method == http.MethodGet && tmpl == "/api/dashboard/layouts/:id/versions":
		var hr struct {
			Versions []struct {
				Version int64           `json:"version"`
				Ops     json.RawMessage `json:"ops"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(body, &hr); err != nil {
			r.fail("%s: history answer %s: %v", what, fzShort(string(body)), err)
			break
		}
		size := 0
		for i, v := range hr.Versions {
			size += len(v.Ops)
			if i > 0 && v.Version >= hr.Versions[i-1].Version {
				r.fail("%s: history not newest first: %d after %d", what, v.Version, hr.Versions[i-1].Version)
			}
		}
		if size > 1<<20 {
			r.fail("%s: one history page holds %d bytes of ops, want at most 1 MiB (SPEC §12)", what, size)
		}
	case tmpl == "/api/dashboard/widgets/batch":
		var br struct {
			Results map[string]struct {
				Status int             `json:"status"`
				Error  json.RawMessage `json:"error"`
			} `json:"results"`
		}
		if err := json.Unmarshal(body, &br); err != nil {
			r.fail("%s: batch answer %s: %v", what, fzShort(string(body)), err)
			break
		}
		for id, res := range br.Results {
			if res.Status >= 400 {
				if msg := fzCheckErrorObject(res.Error, res.Status); msg != "" {
					r.fail("%s: batch result %s: %s", what, id, msg)
				}
			}
			if o, ok := r.owner[id]; ok && o != user && res.Status != http.StatusNotFound && !r.reaches(user, id) {
				r.fail("%s: batch result for another user's widget %s has status %d, want 404", what, id, res.Status)
			}
		}
	case q.method == http.MethodPut && tmpl == "/api/dashboard/layouts":
		var br struct {
			Results []struct {
				ID     string          `json:"id"`
				Status int             `json:"status"`
				Error  json.RawMessage `json:"error"`
			} `json:"results"`
		}
		if err := json.Unmarshal(body, &br); err != nil {
			r.fail("%s: bulk answer %s: %v", what, fzShort(string(body)), err)
			break
		}
		for _, res := range br.Results {
			if res.Status >= 400 {
				if msg := fzCheckErrorObject(res.Error, res.Status); msg != "" {
					r.fail("%s: bulk result %s: %s", what, res.ID, msg)
				}
			}
			if o, ok := r.owner[res.ID]; ok && o != user && res.Status < 400 && !r.reaches(user, res.ID) {
				r.fail("%s: bulk result for another user's layout %s has status %d", what, res.ID, res.Status)
			}
		}
	}
	if status == http.StatusCreated && user != "" {
		var obj struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &obj) == nil && obj.ID != "" {
			r.created = append(r.created, obj.ID)
			r.owner[obj.ID] = user
		}
	}
}

// fzCheckErrorBody checks the §4 error body of an answer with status; "" when it is.
func fzCheckErrorBody(body []byte, status int) string {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return "the body is not a JSON object"
	}
	for k := range top {
		if k != "error" && k != "current" && k != "conflicts" {
			return fmt.Sprintf("unexpected field %q beside error", k)
		}
	}
	if msg := fzCheckErrorObject(top["error"], status); msg != "" {
		return msg
	}
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(top["error"], &e)
	if _, ok := top["conflicts"]; ok && e.Code != "version_conflict" && e.Code != "precondition_failed" {
		return "conflicts on an error that is not a version conflict"
	}
	return ""
}

// fzCheckErrorObject checks an {"code","message","details"?} object; status 0 skips
// the status check.
func fzCheckErrorObject(raw json.RawMessage, status int) string {
	var e map[string]json.RawMessage
	if err := json.Unmarshal(raw, &e); err != nil || e == nil {
		return "no error object"
	}
	var code, message string
	if json.Unmarshal(e["code"], &code) != nil {
		return "error.code is not a string"
	}
	want, ok := fzCodes[code]
	switch {
	case !ok:
		return fmt.Sprintf("error.code %q is not in the closed set", code)
	case code == "internal":
		return "error.code internal (a 500)"
	case status != 0 && want != status:
		return fmt.Sprintf("error.code %s answered with status %d, want %d", code, status, want)
	}
	if json.Unmarshal(e["message"], &message) != nil || message == "" {
		return "error.message is missing or empty"
	}
	for k, v := range e {
		switch k {
		case "code", "message":
		case "details":
			var ds []struct {
				Field string `json:"field"`
				Rule  string `json:"rule"`
				Param string `json:"param"`
			}
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ds); err != nil {
				return fmt.Sprintf("error.details is not a list of {field,rule,param}: %v", err)
			}
		case "retryAfterMs":
			var n int64
			if json.Unmarshal(v, &n) != nil || n < 0 {
				return "error.retryAfterMs is not a non-negative integer"
			}
		case "outcome":
			var s string
			if json.Unmarshal(v, &s) != nil {
				return "error.outcome is not a string"
			}
		default:
			return fmt.Sprintf("unexpected field error.%s", k)
		}
	}
	return ""
}

// fzBadString says what makes b unacceptable text input (SPEC §12): bytes that are not
// valid UTF-8, a NUL byte, or a JSON string holding NUL (the \u0000 escape); "" when
// none does.
func fzBadString(b []byte) string {
	switch {
	case !utf8.Valid(b):
		return "invalid UTF-8"
	case bytes.IndexByte(b, 0) >= 0:
		return "a NUL byte"
	}
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return "a NUL character (\\u0000)"
		}
	}
}

// fzRoutes are the route templates of the router (api/server.go routes()) and those the
// contract adds (§10, §11, §13), which answer not_found until they exist.
var fzRoutes = []struct{ method, path string }{
	{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"},
	{"GET", "/api/dashboard"}, {"POST", "/api/dashboard"}, {"PUT", "/api/dashboard"},
	{"GET", "/api/dashboard/widgets"}, {"POST", "/api/dashboard/widgets"},
	{"GET", "/api/dashboard/widgets/batch"}, {"POST", "/api/dashboard/widgets/batch"},
	{"GET", "/api/dashboard/widgets/:id"}, {"POST", "/api/dashboard/widgets/:id"}, {"DELETE", "/api/dashboard/widgets/:id"},
	{"PUT", "/api/dashboard/widgets/:id/data"},
	{"GET", "/api/dashboard/layouts"}, {"POST", "/api/dashboard/layouts"}, {"PUT", "/api/dashboard/layouts"},
	{"GET", "/api/dashboard/layouts/:id"}, {"PUT", "/api/dashboard/layouts/:id"}, {"PATCH", "/api/dashboard/layouts/:id"},
	{"DELETE", "/api/dashboard/layouts/:id"}, {"POST", "/api/dashboard/layouts/:id"},
	{"POST", "/api/dashboard/layouts/:id/default"},
	{"GET", "/api/dashboard/layouts/:id/versions"}, {"POST", "/api/dashboard/layouts/:id/versions/:v/restore"},
	{"GET", "/api/dashboard/templates"}, {"GET", "/api/ws"},
	{"GET", "/"}, {"GET", "/web/app.js"},
	{"GET", "/api/dashboard/layouts/:id/access"}, {"PUT", "/api/dashboard/layouts/:id/access"},
	{"POST", "/api/dashboard/layouts/:id/links"}, {"DELETE", "/api/dashboard/layouts/:id/links/:linkId"},
	{"GET", "/api/dashboard/layouts/:id/versions/:v"}, {"GET", "/api/dashboard/layouts/:id/versions/:v/diff"},
	{"PUT", "/api/dashboard/layouts/:id/versions/:v/label"},
	{"POST", "/api/dashboard/layouts/:id/undo"}, {"POST", "/api/dashboard/layouts/:id/redo"},
	{"GET", "/api/dashboard/trash"}, {"POST", "/api/dashboard/trash/:id/restore"}, {"DELETE", "/api/dashboard/trash/:id"},
	{"GET", "/api/openapi.json"},
}

// fzTemplateOf names the route template a path (or target) matches, "" for none.
func fzTemplateOf(target string) string {
	path, _, _ := strings.Cut(target, "?")
	segs := strings.Split(path, "/")
	for _, rt := range fzRoutes {
		ts := strings.Split(rt.path, "/")
		if len(ts) != len(segs) {
			continue
		}
		match := true
		for i, t := range ts {
			if !strings.HasPrefix(t, ":") && t != segs[i] {
				match = false
				break
			}
		}
		if match && !(rt.path == "/api/dashboard/widgets/:id" && segs[len(segs)-1] == "batch") {
			return rt.path
		}
	}
	if path == "/api/dashboard/widgets/batch" {
		return path
	}
	return ""
}

// checkStore holds the store to the contract for both users of the run: every layout
// valid, with exactly one default, placing existing widgets of its owner, with clean
// strings, and an op log that agrees with it (contiguous, its newest change the
// layout, each kept change the replay of its ops on the one before); every widget
// valid within the §12 bounds, with a log whose newest change is the widget, and the
// service's in-memory copy equal to the stored one; deleted widgets gone from it too.
func (r *fzRun) checkStore() {
	ctx := context.Background()
	st := r.s.store
	for _, u := range []fzUser{r.a, r.b} {
		ls, err := st.Layouts(ctx, u.id)
		if err != nil {
			r.fail("store: layouts of %s: %v", u.id, err)
			return
		}
		defaults := 0
		for _, l := range ls {
			if l.IsDefault {
				defaults++
			}
			r.checkLayout(ctx, u, l)
		}
		if len(ls) > 0 && defaults != 1 {
			r.fail("store: user %s has %d default layouts among %d, want exactly one", u.id, defaults, len(ls))
		}
		ws, err := st.Widgets(ctx, u.id)
		if err != nil {
			r.fail("store: widgets of %s: %v", u.id, err)
			return
		}
		live := map[string]bool{}
		for _, w := range ws {
			live[w.ID] = true
			r.checkWidget(ctx, u, w)
		}
		for id, o := range r.owner {
			if o != u.id || live[id] {
				continue
			}
			if _, err := st.Layout(ctx, u.id, id); err == nil {
				continue // a layout
			}
			if w, err := r.s.svc.Widget(ctx, u.id, id); err == nil {
				r.fail("store: widget %s is deleted but the service still answers it: %+v", id, w)
			}
		}
		d, err := st.Dashboard(ctx, u.id)
		if err != nil {
			r.fail("store: dashboard of %s: %v", u.id, err)
			return
		}
		if len(d.Preferences) > 0 {
			if bad := fzBadString(d.Preferences); bad != "" {
				r.fail("store: preferences of %s hold %s: %s", u.id, bad, fzShort(string(d.Preferences)))
			}
		}
	}
}

func (r *fzRun) checkLayout(ctx context.Context, u fzUser, l dsync.Layout) {
	what := "store: layout " + l.ID
	if err := dsync.ValidateLayout(l); err != nil {
		r.fail("%s is invalid: %v (%+v)", what, err, l)
	}
	if bad := fzBadString([]byte(l.Name)); bad != "" {
		r.fail("%s: name holds %s: %q", what, bad, l.Name)
	}
	for k, v := range l.Settings {
		if bad := fzBadString([]byte(k)); bad != "" {
			r.fail("%s: settings key %q holds %s", what, k, bad)
		}
		if bad := fzBadString(v); bad != "" {
			r.fail("%s: settings.%s holds %s", what, k, bad)
		}
	}
	for id := range l.Items {
		if _, err := r.s.store.Widget(ctx, u.id, id); err != nil {
			r.fail("%s places %q, not a widget of %s: %v", what, id, u.id, err)
		}
	}
	cs, err := r.s.store.LayoutChanges(ctx, l.ID, 0, math.MaxInt64)
	if err != nil {
		r.fail("%s: op log: %v", what, err)
		return
	}
	r.checkLog(what, l.Version, cs)
	if len(cs) == 0 || cs[len(cs)-1].Version != l.Version {
		return
	}
	replayLog(r, what, cs, l, func(d dsync.Layout, ops []dsync.Op) (dsync.Layout, error) {
		return dsync.ApplyLayoutOps(d, ops, true)
	}, dsync.SameLayoutDoc)
}

// replayLog replays an op log from its oldest checkpoint (a row that carries the
// document): each version's ops must apply to the one before, give the document of
// every later checkpoint, and at the end the object as stored.
func replayLog[D any](r *fzRun, what string, cs []dsync.Change, head D, apply func(D, []dsync.Op) (D, error), same func(a, b D) bool) {
	start := 0
	for start < len(cs) && cs[start].Doc == nil {
		start++
	}
	if start == len(cs) {
		r.fail("%s: no version of the op log carries the document", what)
		return
	}
	var doc D
	if err := json.Unmarshal(cs[start].Doc, &doc); err != nil {
		r.fail("%s: the document of version %d: %v", what, cs[start].Version, err)
		return
	}
	for _, c := range cs[start+1:] {
		next, err := apply(doc, c.Ops)
		if err != nil {
			r.fail("%s: version %d's ops do not apply to version %d: %v", what, c.Version, c.Version-1, err)
			return
		}
		if c.Doc != nil {
			var cp D
			if err := json.Unmarshal(c.Doc, &cp); err != nil {
				r.fail("%s: the document of version %d: %v", what, c.Version, err)
				return
			}
			if !same(next, cp) {
				r.fail("%s: version %d's ops replayed give %+v, its checkpoint is %+v", what, c.Version, next, cp)
				return
			}
		}
		doc = next
	}
	if !same(doc, head) {
		r.fail("%s: the op log replayed from version %d gives %+v, the store holds %+v", what, cs[start].Version, doc, head)
	}
}

func (r *fzRun) checkWidget(ctx context.Context, u fzUser, w dsync.Widget) {
	what := "store: widget " + w.ID
	if err := dsync.ValidateWidget(w); err != nil {
		r.fail("%s is invalid: %v (%+v)", what, err, w)
	}
	if rs := w.Source.RefreshSeconds; rs < 1 || rs > 86400 {
		r.fail("%s: source.refreshSeconds %d, want 1…86400 (SPEC §12)", what, rs)
	}
	if ttl := w.Source.TTLSeconds; ttl < 1 || ttl > 2592000 {
		r.fail("%s: source.ttlSeconds %d, want 1…2592000 (SPEC §12)", what, ttl)
	}
	for name, s := range map[string]string{"type": w.Type, "title": w.Title, "source.kind": w.Source.Kind, "source.url": w.Source.URL} {
		if bad := fzBadString([]byte(s)); bad != "" {
			r.fail("%s: %s holds %s: %q", what, name, bad, s)
		}
	}
	if len(w.Source.Data) > 0 {
		if bad := fzBadString(w.Source.Data); bad != "" {
			r.fail("%s: source.data holds %s", what, bad)
		}
	}
	for k, v := range w.Settings {
		if bad := fzBadString([]byte(k)); bad != "" {
			r.fail("%s: settings key %q holds %s", what, k, bad)
		}
		if bad := fzBadString(v); bad != "" {
			r.fail("%s: settings.%s holds %s", what, k, bad)
		}
	}
	if got, err := r.s.svc.Widget(ctx, u.id, w.ID); err != nil || got.Version != w.Version || !dsync.SameWidgetDoc(got, w) {
		r.fail("%s: the service answers %+v (%v), the store holds %+v", what, got, err, w)
	}
	cs, err := r.s.store.WidgetChanges(ctx, w.ID, 0, math.MaxInt64)
	if err != nil {
		r.fail("%s: op log: %v", what, err)
		return
	}
	r.checkLog(what, w.Version, cs)
	if len(cs) == 0 || cs[len(cs)-1].Version != w.Version {
		return
	}
	replayLog(r, what, cs, w, dsync.ApplyWidgetOps, dsync.SameWidgetDoc)
}

// checkLog checks that an op log is contiguous and ends at the object's version.
func (r *fzRun) checkLog(what string, version int64, cs []dsync.Change) {
	if len(cs) == 0 {
		r.fail("%s: version %d but the op log keeps nothing", what, version)
		return
	}
	for i, c := range cs {
		if c.Version != cs[0].Version+int64(i) {
			r.fail("%s: the op log has a gap: version %d after %d", what, c.Version, cs[i-1].Version)
			return
		}
	}
	if last := cs[len(cs)-1].Version; last != version {
		r.fail("%s: version %d but the newest kept change is version %d", what, version, last)
	}
}

// fzBytes reads the fuzz entropy; past its end it reads zeros.
type fzBytes struct {
	b []byte
	i int
}

func (e *fzBytes) empty() bool { return e.i >= len(e.b) }

func (e *fzBytes) byte() byte {
	if e.i >= len(e.b) {
		return 0
	}
	c := e.b[e.i]
	e.i++
	return c
}

func (e *fzBytes) intn(n int) int {
	if n <= 1 {
		return 0
	}
	if n <= 256 {
		return int(e.byte()) % n
	}
	return (int(e.byte())<<8 | int(e.byte())) % n
}

func (e *fzBytes) pick(ss ...string) string { return ss[e.intn(len(ss))] }

func (e *fzBytes) chance(in256 int) bool { return int(e.byte()) < in256 }

// The pools values are drawn from: numbers as JSON writes them, strings as JSON
// literals (some with invalid UTF-8 or NUL), ids, paths.
var (
	fzNumbers = []string{"0", "1", "-1", "2", "3", "12", "48", "49", "100", "101", "200", "10000", "10001",
		"1.5", "1e2", "1E2", "1e400", "-0", "0.0", "1e-7", "2147483648", "2305843009213693952",
		"9223372036854775807", "9223372036854775808", "-9223372036854775809", "123456789012345678901234567890",
		"86400", "86401", "2592000", "2592001", "60", "3600"}
	fzStrings = []string{`"ok"`, `""`, `" "`, `"\u0000"`, `"a\u0000b"`, "\"\xff\xfe\"", "\"a\xc3(b\"", `"\ud800"`,
		`"é漢字"`, `"` + strings.Repeat("x", 101) + `"`, `"` + strings.Repeat("y", 300) + `"`, `"stat"`,
		`"timeseries"`, `"Ops overview"`, `"../x"`, `"\\u0000"`, `"<script>"`, `"layout:x"`, `"null"`}
	fzKeys = []string{"k", "a", "", "\\u0000", "\xff", "a/b", "~", "a~1b", strings.Repeat("k", 70), "h"}
)

func (r *fzRun) genNumber() string { return r.ent.pick(fzNumbers...) }

func (r *fzRun) genString() string { return r.ent.pick(fzStrings...) }

// genID is an id as the request names it: the user's own, the other user's, or none.
func (r *fzRun) genID() string {
	switch r.ent.intn(16) {
	case 0:
		return "nope"
	case 1:
		return uuid.NewString()
	case 2:
		return strings.Repeat("z", 65)
	case 3:
		if len(r.created) > 0 {
			return r.created[r.ent.intn(len(r.created))]
		}
	}
	return r.ids[r.ent.pick("L", "L2", "W", "WP", "WC", "WS", "WH", "BL", "BW", "W", "L")]
}

// genIDLiteral is an id as a JSON string, sometimes a hostile one.
func (r *fzRun) genIDLiteral() string {
	switch r.ent.intn(8) {
	case 0:
		return `"\u0000"`
	case 1:
		return "\"\xff\""
	case 2:
		return r.genNumber()
	}
	return fzQuote(r.genID())
}

// genValue is any JSON value, depth-bounded, sometimes deeply nested.
func (r *fzRun) genValue(depth int) string {
	k := r.ent.intn(10)
	if depth > 3 && k >= 6 {
		k = 0
	}
	switch k {
	case 0:
		return r.genNumber()
	case 1:
		return r.genString()
	case 2:
		return r.ent.pick("null", "true", "false")
	case 3:
		d := r.ent.pick("8", "64", "10001")
		n, _ := strconv.Atoi(d)
		return strings.Repeat("[", n) + strings.Repeat("]", n)
	case 6, 7:
		return r.genObject(depth + 1)
	case 8:
		n := r.ent.intn(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = r.genValue(depth + 1)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return `{"value":` + r.genNumber() + `}`
}

func (r *fzRun) genObject(depth int) string {
	n := r.ent.intn(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"` + r.ent.pick(fzKeys...) + `":` + r.genValue(depth+1)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// fzObj builds a JSON object of the fields the generator decided to send.
type fzObj []string

func (o *fzObj) add(key, val string) { *o = append(*o, fzQuote(key)+":"+val) }

// fzQuote is s as a JSON string.
func fzQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
func (o fzObj) String() string { return "{" + strings.Join(o, ",") + "}" }

func (r *fzRun) genItem() string {
	var o fzObj
	for _, k := range []string{"x", "y", "w", "h"} {
		if !r.ent.chance(16) {
			o.add(k, r.ent.pick(r.genNumber(), "0", "1", "2", "4"))
		}
	}
	if r.ent.chance(8) {
		o.add("z", "1")
	}
	return o.String()
}

// genLayoutFields adds the fields of a layout document.
func (r *fzRun) genLayoutFields(o *fzObj) {
	if !r.ent.chance(40) {
		o.add("name", r.ent.pick(r.genString(), `"Fuzz"`, `"Fuzz"`))
	}
	if r.ent.chance(160) {
		o.add("columns", r.ent.pick(r.genNumber(), "12", "12"))
	}
	if r.ent.chance(160) {
		var items []string
		for range r.ent.intn(4) {
			items = append(items, r.genIDLiteral()+":"+r.genItem())
		}
		o.add("items", "{"+strings.Join(items, ",")+"}")
	}
	if r.ent.chance(100) {
		o.add("settings", r.genObject(1))
	}
	if r.ent.chance(16) {
		o.add(r.ent.pick("isDefault", "createdAt", "updatedAt", "rebased", "bogus", "owner"), r.genValue(2))
	}
}

func (r *fzRun) genVersion() string {
	return r.ent.pick("{V}", "{V}", "{V}", "1", "0", "-1", "1.5", "1e2", `"1"`, "null", "9223372036854775807", "99999999999999999999")
}

func (r *fzRun) genOps() string {
	n := r.ent.pick("0", "1", "1", "2", "3", "5", "500", "501", "1001")
	count, _ := strconv.Atoi(n)
	op := r.genOp()
	ops := make([]string, 0, min(count, 8))
	for i := range min(count, 8) {
		if i > 0 && r.ent.chance(128) {
			op = r.genOp()
		}
		ops = append(ops, op)
	}
	if count > 8 {
		return "[" + strings.Join(ops, ",") + strings.Repeat(","+op, count-8) + "]"
	}
	return "[" + strings.Join(ops, ",") + "]"
}

func (r *fzRun) genOp() string {
	var o fzObj
	o.add("op", r.ent.pick(`"add"`, `"replace"`, `"remove"`, `"replace"`, `"add"`, `"copy"`, `"test"`, `"ADD"`, `""`, "1"))
	id := r.genID()
	o.add("path", fzQuote(r.ent.pick("/name", "/columns", "/settings", "/settings/k", "/settings/\x00", "/items/"+id,
		"/items/"+id+"/"+r.ent.pick("x", "y", "w", "h", "z"), "/isDefault", "", "/", "/items", "/settings/a~1b", "/settings/~2",
		"/title", "/source/refreshSeconds")))
	if !r.ent.chance(40) {
		if r.ent.chance(100) {
			o.add("value", r.genItem())
		} else {
			o.add("value", r.genValue(1))
		}
	}
	if r.ent.chance(8) {
		o.add("from", `"/name"`)
	}
	return o.String()
}

func (r *fzRun) genSource() string {
	var o fzObj
	o.add("kind", r.ent.pick(`"static"`, `"push"`, `"http"`, `"demo.counter"`, `"demo.series"`, `"demo.clock"`, `"nope"`, `""`, `"\u0000"`))
	if r.ent.chance(100) {
		o.add("url", fzQuote(r.ent.pick(r.s.stub.URL+"/", r.s.stub.URL+"/notjson", r.s.stub.URL+"/big",
			r.s.stub.URL+"/redirect", r.s.stub.URL+"/500", "http://127.0.0.1:1/", "http://169.254.169.254/latest/",
			"http://nowhere.invalid/", "gopher://x.invalid/", "", "http://[::1]/", "http://10.0.0.1/", "not a url")))
	}
	if r.ent.chance(128) {
		o.add("refreshSeconds", r.genNumber())
	}
	if r.ent.chance(128) {
		o.add("ttlSeconds", r.genNumber())
	}
	if r.ent.chance(128) {
		o.add("data", r.genValue(1))
	}
	return o.String()
}

func (r *fzRun) genWidgetFields(o *fzObj) {
	if !r.ent.chance(30) {
		o.add("type", r.ent.pick(r.genString(), `"stat"`, `"stat"`, `"a.b-c_d"`, `"UPPER"`))
	}
	if r.ent.chance(160) {
		o.add("title", r.genString())
	}
	if !r.ent.chance(40) {
		o.add("source", r.genSource())
	}
	if r.ent.chance(80) {
		o.add("settings", r.genObject(1))
	}
	if r.ent.chance(16) {
		o.add(r.ent.pick("id", "createdAt", "bogus"), r.genValue(2))
	}
}

// genBody is a body for a request of method on route template tmpl.
func (r *fzRun) genBody(method, tmpl string) []byte {
	switch r.ent.intn(16) {
	case 0: // raw bytes from the input
		n := r.ent.intn(64)
		b := make([]byte, n)
		for i := range b {
			b[i] = r.ent.byte()
		}
		return b
	case 1:
		return []byte(r.genValue(0))
	case 2:
		return nil
	}
	var o fzObj
	switch method + " " + tmpl {
	case "POST /api/dashboard/layouts":
		if r.ent.chance(30) {
			o.add("template", r.ent.pick(`"ops"`, `"demo"`, `"nope"`, `"\u0000"`))
		} else {
			r.genLayoutFields(&o)
		}
	case "PUT /api/dashboard/layouts/:id":
		r.genLayoutFields(&o)
		o.add("version", r.genVersion())
		if r.ent.chance(40) {
			o.add("force", "true")
		}
		if r.ent.chance(40) {
			o.add("editId", r.ent.pick(`"{EDIT}"`, `"{UUID}"`, `"x"`, `"\u0000"`))
		}
	case "PATCH /api/dashboard/layouts/:id":
		o.add("version", r.genVersion())
		o.add("ops", r.genOps())
		if r.ent.chance(40) {
			o.add("force", r.ent.pick("true", "false", `"yes"`))
		}
		if r.ent.chance(60) {
			o.add("editId", r.ent.pick(`"{EDIT}"`, `"{UUID}"`, `"x"`, `"\u0000"`))
		}
	case "PUT /api/dashboard/layouts":
		var ls []string
		for range 1 + r.ent.intn(3) {
			var e fzObj
			e.add("id", r.genIDLiteral())
			r.genLayoutFields(&e)
			e.add("version", r.ent.pick("{V}", "1", "0", "1.5"))
			ls = append(ls, e.String())
		}
		o.add("layouts", "["+strings.Join(ls, ",")+"]")
	case "POST /api/dashboard/layouts/:id":
		o.add("name", r.genString())
	case "POST /api/dashboard/widgets":
		r.genWidgetFields(&o)
	case "POST /api/dashboard/widgets/:id":
		r.genWidgetFields(&o)
		o.add("version", r.ent.pick("{WV}", "{WV}", "1", "0", "1.5", "99999999999999999999"))
		if r.ent.chance(40) {
			o.add("force", "true")
		}
	case "PUT /api/dashboard/widgets/:id/data":
		o.add("data", r.genValue(0))
	case "POST /api/dashboard/widgets/batch":
		n, _ := strconv.Atoi(r.ent.pick("0", "1", "2", "3", "50", "51"))
		ids := make([]string, n)
		for i := range ids {
			ids[i] = r.genIDLiteral()
		}
		o.add("ids", "["+strings.Join(ids, ",")+"]")
		if r.ent.chance(128) {
			o.add("refresh", r.ent.pick("true", "false", `"true"`))
		}
	case "PUT /api/dashboard":
		if r.ent.chance(160) {
			o.add("preferences", r.ent.pick(r.genObject(0), "null", `{"a":null}`, "[]"))
		}
		if r.ent.chance(100) {
			o.add("currentLayoutId", r.ent.pick(r.genIDLiteral(), "null"))
		}
		if r.ent.chance(60) {
			o.add("version", r.genNumber())
		}
	case "POST /api/dashboard":
		if !r.ent.chance(40) {
			var l fzObj
			l.add("id", r.genIDLiteral())
			r.genLayoutFields(&l)
			l.add("version", r.genVersion())
			o.add("layout", l.String())
		}
		if r.ent.chance(128) {
			o.add("preferences", r.genObject(0))
		}
		if r.ent.chance(100) {
			o.add("currentLayoutId", r.genIDLiteral())
		}
	case "PUT /api/dashboard/layouts/:id/access":
		o.add("users", `{"nobody-`+strconv.Itoa(r.ent.intn(9))+`":`+r.ent.pick(`"editor"`, `"viewer"`, `"owner"`, "null")+`}`)
	case "POST /api/dashboard/layouts/:id/links":
		o.add("role", r.ent.pick(`"viewer"`, `"editor"`))
		o.add("ttlSeconds", r.genNumber())
	case "PUT /api/dashboard/layouts/:id/versions/:v/label":
		o.add("label", r.ent.pick(r.genString(), "null"))
	case "POST /api/dashboard/layouts/:id/undo", "POST /api/dashboard/layouts/:id/redo":
		o.add("editId", r.ent.pick(`"{UUID}"`, `"x"`))
	default:
		if r.ent.chance(200) {
			return nil
		}
		return []byte(r.genObject(0))
	}
	return r.expand(o.String(), 0)
}

// genREST sends one request generated from the entropy.
func (r *fzRun) genREST() {
	rt := fzRoutes[r.ent.intn(len(fzRoutes))]
	method := rt.method
	if r.ent.chance(40) {
		method = r.ent.pick("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "BREW")
	}
	var path strings.Builder
	for i, seg := range strings.Split(rt.path, "/") {
		if i > 0 {
			path.WriteByte('/')
		}
		switch seg {
		case ":id", ":linkId":
			switch r.ent.intn(12) {
			case 0:
				path.WriteString(r.ent.pick("%00", "a%00b", "%FF", "%C3%28", "..", "%2F", "batch", "%20"))
			default:
				path.WriteString(url.PathEscape(r.genID()))
			}
		case ":v":
			path.WriteString(r.ent.pick("1", "0", "-1", "{V}", "{V}", "9223372036854775807", "99999999999999999999", "1.5", "x", "%00"))
		default:
			path.WriteString(seg)
		}
	}
	target := path.String()
	switch r.ent.intn(8) {
	case 0:
		target += "?limit=" + r.ent.pick("1", "0", "-1", "100", "101", "9223372036854775807", "99999999999999999999", "abc", "%00")
	case 1:
		target += "?before=" + r.ent.pick("1", "0", "-5", "{V}", "9223372036854775807", "99999999999999999999") +
			"&limit=" + r.ent.pick("1", "2", "100")
	case 2:
		target += "?refresh=" + r.ent.pick("true", "false", "yes", "1", "%00")
	case 3:
		target += "?remove=" + r.ent.pick("true", "false", "maybe")
	case 4:
		n, _ := strconv.Atoi(r.ent.pick("0", "1", "2", "50", "51"))
		ids := make([]string, n)
		for i := range ids {
			ids[i] = url.QueryEscape(r.genID())
		}
		target += "?ids=" + strings.Join(ids, ",") + r.ent.pick("", "&refresh=true", ",,", "%00")
	case 5:
		target += "?" + r.ent.pick("to={V}", "to=0", "include=shared", "x=%FF")
	}
	q := fzRequest{method: method, target: string(r.expand(target, 0)),
		auth: r.ent.pick("a", "a", "a", "a", "a", "b", "expired", "garbage", "none", "empty", "basic", "query-a")}
	if method != "GET" || r.ent.chance(20) {
		q.body, q.hasBody = r.genBody(method, rt.path), true
		if q.body == nil {
			q.hasBody = false
		}
	}
	if r.ent.chance(40) {
		ct := r.ent.pick("text", "none", "form", "multipart", "application/json; charset=latin1", "application/merge-patch+json")
		q.ct = &ct
	}
	if r.ent.chance(40) {
		q.headers = append(q.headers, [2]string{"If-Match", string(r.expand(r.ent.pick(`"{V}"`, `"1"`, `*`, `W/"1"`, `garbage`, `"99999999999999999999"`), 0))})
	}
	if r.ent.chance(40) {
		q.headers = append(q.headers, [2]string{"If-None-Match", string(r.expand(r.ent.pick(`"{V}"`, `"1"`, `*`, `"{WV}"`), 0))})
	}
	r.do(q)
}
