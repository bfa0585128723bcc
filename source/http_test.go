package source_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dashsync/dashsync/internal/testnet"
	"github.com/dashsync/dashsync/source"
	dsync "github.com/dashsync/dashsync/sync"
)

// These tests never let a connection leave loopback: the http kind gets a resolver
// answering from a table and a dialer that refuses (and fails the test on) anything but
// a loopback address, so a broken policy fails here instead of sending traffic.

// jsonServer is a loopback test server answering {"ok":true} and counting requests.
type jsonServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newJSONServer(t testing.TB, h http.HandlerFunc) *jsonServer {
	t.Helper()
	s := &jsonServer{}
	if h == nil {
		h = func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"ok":true}`)
		}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// hostPort is the server's "127.0.0.1:port".
func (s *jsonServer) hostPort() string { return strings.TrimPrefix(s.URL, "http://") }

func (s *jsonServer) port() string {
	_, p, _ := net.SplitHostPort(s.hostPort())
	return p
}

type rig struct {
	kind     *source.HTTP
	resolver *testnet.Resolver
	dialer   *testnet.Dialer
}

func newRig(t testing.TB, allow []string, hosts map[string][]string, change ...func(*source.HTTPOptions)) *rig {
	t.Helper()
	p, err := source.NewPolicy(allow)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{resolver: testnet.NewResolver(hosts), dialer: testnet.NewDialer(t)}
	o := source.HTTPOptions{Policy: p, Resolver: r.resolver, Dialer: r.dialer, Timeout: 2 * time.Second}
	for _, f := range change {
		f(&o)
	}
	r.kind, err = source.NewHTTP(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.kind.Close() })
	return r
}

func httpWidget(u string) dsync.Widget {
	return dsync.Widget{ID: "w1", Owner: "alice", Type: "stat",
		Source: dsync.Source{Kind: "http", URL: u, RefreshSeconds: 60, TTLSeconds: 60}}
}

func wantForbidden(t testing.TB, err error, reason string, redirect bool) {
	t.Helper()
	if dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("got %v, want source_failed", err)
	}
	var fe *source.ForbiddenError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *source.ForbiddenError in the chain", err)
	}
	if fe.Reason != reason || fe.Redirect != redirect {
		t.Fatalf("got reason %q redirect %v (%v), want %q redirect %v", fe.Reason, fe.Redirect, err, reason, redirect)
	}
	var de *dsync.Error
	errors.As(err, &de)
	if !strings.Contains(de.Message, reason) {
		t.Fatalf("message %q does not say why (%s)", de.Message, reason)
	}
}

func wantInvalidURL(t testing.TB, err error, rule string) {
	t.Helper()
	var de *dsync.Error
	if !errors.As(err, &de) || de.Code != dsync.CodeValidation || len(de.Details) != 1 ||
		de.Details[0].Field != "source.url" || de.Details[0].Rule != rule {
		t.Fatalf("got %#v, want validation_failed on source.url rule %q", err, rule)
	}
}

func TestHTTP_RefusesForbiddenDestinations(t *testing.T) {
	t.Parallel()
	srv := newJSONServer(t, nil) // a real loopback server: a broken policy would reach it
	port := srv.port()
	cases := []struct {
		name, url, reason string
	}{
		{"loopback v4", "http://127.0.0.1:" + port + "/", source.ReasonLoopback},
		{"loopback v6", "http://[::1]:" + port + "/", source.ReasonLoopback},
		{"loopback mapped", "http://[::ffff:127.0.0.1]:" + port + "/", source.ReasonLoopback},
		{"private", "http://10.0.0.1/data", source.ReasonPrivate},
		{"private https", "https://192.168.0.10/data", source.ReasonPrivate},
		{"metadata", "http://169.254.169.254/latest/meta-data/", source.ReasonMetadata},
		{"metadata v6", "http://[fd00:ec2::254]/latest/meta-data/", source.ReasonMetadata},
		{"unspecified", "http://0.0.0.0:" + port + "/", source.ReasonUnspecified},
		{"name resolving to loopback", "http://loop.test:" + port + "/", source.ReasonLoopback},
		{"name resolving to private", "http://intranet.test/", source.ReasonPrivate},
		{"name resolving only to forbidden", "http://multi.test:" + port + "/", source.ReasonLoopback},
	}
	r := newRig(t, nil, map[string][]string{
		"loop.test":     {"127.0.0.1"},
		"intranet.test": {"10.1.2.3"},
		"multi.test":    {"127.0.0.1", "10.0.0.7", "::1"},
	})
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantInvalidURL(t, r.kind.Check(ctx, httpWidget(c.url).Source), "forbidden")
			_, err := r.kind.Fetch(ctx, httpWidget(c.url))
			wantForbidden(t, err, c.reason, false)
		})
	}
	if d := r.dialer.Dialed(); len(d) != 0 {
		t.Errorf("dialled %v; want no connection at all", d)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests, want 0", n)
	}
	if got := r.resolver.Lookups(); !contains(got, "loop.test") {
		t.Errorf("lookups %v: the host name was never resolved through the injected resolver", got)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestHTTP_CheckRefusesBadURLs(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, nil)
	ctx := context.Background()
	for _, c := range []struct{ url, rule string }{
		{"", "required"},
		{"ftp://example.test/x", "url"},
		{"http://", "url"},
		{"not a url", "url"},
		{"http://nowhere.test/", "resolve"},
	} {
		wantInvalidURL(t, r.kind.Check(ctx, dsync.Source{Kind: "http", URL: c.url}), c.rule)
	}
	_, err := r.kind.Fetch(ctx, httpWidget("http://nowhere.test/"))
	if dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("fetch of an unresolvable host: got %v, want source_failed", err)
	}
}

func TestHTTP_AllowListedLoopbackServerWorks(t *testing.T) {
	t.Parallel()
	srv := newJSONServer(t, nil)
	cases := []struct {
		name  string
		allow string
		url   string
		hosts map[string][]string
	}{
		{"address and port", srv.hostPort(), srv.URL + "/x", nil},
		{"range", "127.0.0.0/8", srv.URL + "/x", nil},
		{"host name and port", "api.test:" + srv.port(), "http://api.test:" + srv.port() + "/x", map[string][]string{"api.test": {"127.0.0.1"}}},
		{"name resolving to an allowed address", srv.hostPort(), "http://api.test:" + srv.port() + "/x", map[string][]string{"api.test": {"10.0.0.1", "127.0.0.1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, []string{c.allow}, c.hosts)
			ctx := context.Background()
			if err := r.kind.Check(ctx, httpWidget(c.url).Source); err != nil {
				t.Fatalf("check: %v", err)
			}
			raw, err := r.kind.Fetch(ctx, httpWidget(c.url))
			if err != nil || string(raw) != `{"ok":true}` {
				t.Fatalf("fetch: got %s, %v; want {\"ok\":true}", raw, err)
			}
			if d := r.dialer.Dialed(); len(d) != 1 || d[0] != srv.hostPort() {
				t.Fatalf("dialled %v, want exactly [%s]", d, srv.hostPort())
			}
		})
	}
}

func TestHTTP_DefaultDialerWorksForAllowedLoopback(t *testing.T) {
	t.Parallel()
	srv := newJSONServer(t, nil)
	// The default dialer (its ControlContext re-checks the address) with a literal
	// loopback address: nothing is resolved and nothing leaves loopback.
	p, err := source.NewPolicy([]string{srv.hostPort()})
	if err != nil {
		t.Fatal(err)
	}
	k, err := source.NewHTTP(source.HTTPOptions{Policy: p, Resolver: testnet.NewResolver(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if raw, err := k.Fetch(context.Background(), httpWidget(srv.URL)); err != nil || string(raw) != `{"ok":true}` {
		t.Fatalf("got %s, %v", raw, err)
	}
}

func TestHTTP_Redirects(t *testing.T) {
	t.Parallel()
	other := newJSONServer(t, nil) // loopback, not allow-listed
	var target atomic.Value
	allowed := newJSONServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/data":
			fmt.Fprint(w, `{"ok":true}`)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			http.Redirect(w, r, target.Load().(string), http.StatusFound)
		}
	})
	hosts := map[string][]string{"other.test": {"127.0.0.1"}, "intranet.test": {"10.0.0.9"}}
	cases := []struct {
		name, to, reason string
	}{
		{"to another loopback port", other.URL + "/", source.ReasonLoopback},
		{"to another loopback address", "http://127.0.0.2:" + allowed.port() + "/data", source.ReasonLoopback},
		{"to a name resolving to loopback", "http://other.test:" + other.port() + "/", source.ReasonLoopback},
		{"to a private address", "http://10.0.0.1/", source.ReasonPrivate},
		{"to a name resolving to private", "http://intranet.test/", source.ReasonPrivate},
		{"to metadata", "http://169.254.169.254/latest/meta-data/", source.ReasonMetadata},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, []string{allowed.hostPort()}, hosts)
			target.Store(c.to)
			_, err := r.kind.Fetch(context.Background(), httpWidget(allowed.URL+"/start"))
			wantForbidden(t, err, c.reason, true)
			if d := r.dialer.Dialed(); len(d) != 1 || d[0] != allowed.hostPort() {
				t.Fatalf("dialled %v, want only the allow-listed server", d)
			}
		})
	}
	if n := other.hits.Load(); n != 0 {
		t.Errorf("the server behind the redirect got %d requests, want 0", n)
	}

	t.Run("to an allowed URL", func(t *testing.T) {
		r := newRig(t, []string{allowed.hostPort()}, nil)
		target.Store(allowed.URL + "/data")
		raw, err := r.kind.Fetch(context.Background(), httpWidget(allowed.URL+"/start"))
		if err != nil || string(raw) != `{"ok":true}` {
			t.Fatalf("got %s, %v", raw, err)
		}
	})
	t.Run("endless", func(t *testing.T) {
		r := newRig(t, []string{allowed.hostPort()}, nil)
		_, err := r.kind.Fetch(context.Background(), httpWidget(allowed.URL+"/loop"))
		var de *dsync.Error
		if !errors.As(err, &de) || de.Code != dsync.CodeSourceFailed || !strings.Contains(de.Message, "more than 5") {
			t.Fatalf("got %v, want source_failed after 5 redirects", err)
		}
	})
	t.Run("to another scheme", func(t *testing.T) {
		r := newRig(t, []string{allowed.hostPort()}, nil)
		target.Store("file:///etc/passwd")
		_, err := r.kind.Fetch(context.Background(), httpWidget(allowed.URL+"/start"))
		if dsync.ErrorCode(err) != dsync.CodeSourceFailed {
			t.Fatalf("got %v, want source_failed", err)
		}
	})
}

// A host that passed the check at create time and later resolves elsewhere (DNS
// rebinding) is refused at the dial: the address dialled is the one checked.
func TestHTTP_RebindingRefusedAtDial(t *testing.T) {
	t.Parallel()
	srv := newJSONServer(t, nil)
	r := newRig(t, []string{srv.hostPort()}, map[string][]string{"rebind.test": {"127.0.0.1"}})
	u := "http://rebind.test:" + srv.port() + "/"
	if err := r.kind.Check(context.Background(), httpWidget(u).Source); err != nil {
		t.Fatalf("check: %v", err)
	}
	r.resolver.Set("rebind.test", "10.0.0.1")
	_, err := r.kind.Fetch(context.Background(), httpWidget(u))
	wantForbidden(t, err, source.ReasonPrivate, false)
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestHTTP_AnswerRules(t *testing.T) {
	t.Parallel()
	const maxBody = 1 << 20
	srv := newJSONServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/exact":
			fmt.Fprint(w, `"`+strings.Repeat("a", maxBody-2)+`"`)
		case "/big":
			fmt.Fprint(w, `"`+strings.Repeat("a", maxBody-1)+`"`)
		case "/html":
			fmt.Fprint(w, `<html></html>`)
		case "/500":
			http.Error(w, `{"error":"x"}`, http.StatusInternalServerError)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/headers":
			fmt.Fprintf(w, `{"accept":%q,"ua":%q}`, r.Header.Get("Accept"), r.Header.Get("User-Agent"))
		}
	})
	r := newRig(t, []string{srv.hostPort()}, nil, func(o *source.HTTPOptions) { o.Timeout = 300 * time.Millisecond })
	ctx := context.Background()
	cases := []struct {
		path, wantMessage string // "" succeeds
	}{
		{"/exact", ""},
		{"/big", "more than 1048576 bytes"},
		{"/html", "did not answer JSON"},
		{"/500", "answered 500"},
		{"/slow", "did not answer within 300ms"},
	}
	for _, c := range cases {
		raw, err := r.kind.Fetch(ctx, httpWidget(srv.URL+c.path))
		if c.wantMessage == "" {
			if err != nil || len(raw) != maxBody {
				t.Errorf("%s: got %d bytes, %v; want %d bytes", c.path, len(raw), err, maxBody)
			}
			continue
		}
		var de *dsync.Error
		if !errors.As(err, &de) || de.Code != dsync.CodeSourceFailed || !strings.Contains(de.Message, c.wantMessage) {
			t.Errorf("%s: got %v, want source_failed saying %q", c.path, err, c.wantMessage)
		}
	}
	raw, err := r.kind.Fetch(ctx, httpWidget(srv.URL+"/headers"))
	if err != nil || string(raw) != `{"accept":"application/json","ua":"dashsync"}` {
		t.Errorf("headers: got %s, %v", raw, err)
	}
}

func TestHTTP_ContextCancelled(t *testing.T) {
	t.Parallel()
	srv := newJSONServer(t, nil)
	r := newRig(t, []string{srv.hostPort()}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.kind.Fetch(ctx, httpWidget(srv.URL)); dsync.ErrorCode(err) != dsync.CodeSourceFailed {
		t.Fatalf("got %v, want source_failed", err)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("server got %d requests after cancel", n)
	}
}
