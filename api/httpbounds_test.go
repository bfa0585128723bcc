package api_test

// This file tests the bounds of SPEC §12 that hold at the HTTP layer: a request body
// must arrive within the read timeout (else 408 timeout, whoever sends it), and in
// --dev the token minting and the demo sign-in answer only a loopback Host.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/web"
)

// slowBodyTimeout is the read timeout of the slow-body tests' servers.
const slowBodyTimeout = 300 * time.Millisecond

// answerBound is how long past the read timeout an answer may take in those tests:
// generous, for a loaded machine.
const answerBound = 5 * time.Second

// startSlowBody opens a connection to the harness and sends a request whose headers
// announce a 100-byte body of which only the first byte follows, then nothing.
func startSlowBody(t *testing.T, h *harness, method, path, token string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n", method, path)
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(conn, head+"\r\n{"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readAnswer reads the response on conn, failing t if none comes within bound.
func readAnswer(t *testing.T, conn net.Conn, rd *bufio.Reader, bound time.Duration) (*http.Response, errorBody) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(bound))
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", bound, err)
	}
	defer res.Body.Close()
	var e errorBody
	if b, err := io.ReadAll(res.Body); err != nil || json.Unmarshal(b, &e) != nil {
		t.Fatalf("answer %d: body %q (%v) is not the error body", res.StatusCode, b, err)
	}
	return res, e
}

// wantClosed fails t unless the server closes conn within bound (reading EOF).
func wantClosed(t *testing.T, conn net.Conn, rd *bufio.Reader, bound time.Duration) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(bound))
	_, err := rd.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still holds the connection %v after its answer", bound)
	}
	if err == nil {
		t.Fatal("the server sent more after its answer, want the connection closed")
	}
}

func TestReadTimeout_SlowBodyIsAnswered408AndItsConnectionClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, backends[0].open(t), func(c *api.Config) { c.ReadTimeout = slowBodyTimeout })
	c := h.newUser(t)
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/api/dashboard"},
		{"POST", "/api/dashboard/layouts"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			conn := startSlowBody(t, h, tc.method, tc.path, c.token)
			rd := bufio.NewReader(conn)
			start := time.Now()
			res, e := readAnswer(t, conn, rd, slowBodyTimeout+answerBound)
			if res.StatusCode != http.StatusRequestTimeout || e.Error.Code != "timeout" || e.Error.Message == "" {
				t.Fatalf("got %d %+v, want 408 timeout", res.StatusCode, e.Error)
			}
			if waited := time.Since(start); waited < slowBodyTimeout/2 {
				t.Errorf("answered after %v, before the read timeout of %v", waited, slowBodyTimeout)
			}
			wantClosed(t, conn, rd, answerBound)
		})
	}
	t.Run("a body in time is answered", func(t *testing.T) {
		t.Parallel()
		c.do(t, "POST", "/api/dashboard/layouts", `{"name":"In time"}`).want(t, http.StatusCreated, nil)
	})
}

func TestReadTimeout_UnauthenticatedSlowBodyIsAnswered401AtOnceAndNotHeld(t *testing.T) {
	t.Parallel()
	h := newHarness(t, backends[0].open(t), func(c *api.Config) { c.ReadTimeout = slowBodyTimeout })
	for _, tc := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"no token", "", http.StatusUnauthorized, "unauthorized"},
		{"bad token", "not-a-token", http.StatusUnauthorized, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn := startSlowBody(t, h, "PUT", "/api/dashboard", tc.token)
			rd := bufio.NewReader(conn)
			res, e := readAnswer(t, conn, rd, answerBound)
			if res.StatusCode != tc.status || e.Error.Code != tc.code {
				t.Fatalf("got %d %+v, want %d %s", res.StatusCode, e.Error, tc.status, tc.code)
			}
			if !res.Close {
				t.Errorf("the answer does not close the connection, whose body never came")
			}
			wantClosed(t, conn, rd, slowBodyTimeout+answerBound)
		})
	}
}

// hostRequest sends GET path to the harness with the given Host header.
func hostRequest(t *testing.T, h *harness, host, path string) (int, errorBody) {
	t.Helper()
	req, err := http.NewRequest("GET", h.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e errorBody
	if res.StatusCode != http.StatusOK {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("GET %s (Host %s): %d %q is not the error body", path, host, res.StatusCode, b)
		}
	}
	return res.StatusCode, e
}

func TestDevSignIn_AnswersOnlyALoopbackHost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, backends[0].open(t), func(c *api.Config) { c.DevTokens = true; c.Web = web.FS() })
	loopback := []string{"127.0.0.1", "127.0.0.1:8080", "localhost", "LocalHost:9", "[::1]", "[::1]:8080"}
	other := []string{"evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example:80",
		"10.0.0.5:8080", "[::2]:8080", "dashboard.internal"}
	for _, path := range []string{"/dev/token?user=alice", "/?user=alice"} {
		for _, host := range loopback {
			if status, e := hostRequest(t, h, host, path); status != http.StatusOK {
				t.Errorf("GET %s with Host %s: got %d %+v, want 200", path, host, status, e.Error)
			}
		}
		for _, host := range other {
			status, e := hostRequest(t, h, host, path)
			if status != http.StatusForbidden || e.Error.Code != "forbidden" || e.Error.Message == "" {
				t.Errorf("GET %s with Host %s: got %d %+v, want 403 forbidden", path, host, status, e.Error)
			}
		}
	}
	// The page itself, without a sign-in, is served to any Host: it asks for a token.
	if status, e := hostRequest(t, h, "dashboard.example", "/"); status != http.StatusOK {
		t.Errorf("GET / with another Host: got %d %+v, want the page", status, e.Error)
	}
}
