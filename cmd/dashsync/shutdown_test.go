package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/dashsync/dashsync/internal/testlog"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/sqlite"
)

// buildBinary builds cmd/dashsync into a temp dir, as `make build` does.
func buildBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "dashsync")
	build := exec.Command("go", "build", "-tags", "nomsgpack", "-o", bin, "./cmd/dashsync")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a dashsync binary running as a child process.
type process struct {
	cmd        *exec.Cmd
	url, token string        // set before banner is closed
	banner     chan struct{} // closed once the URL and the dev token are printed
	exited     chan struct{} // closed once the process has exited (cmd.ProcessState is set)
	stderr     *testlog.Buffer
}

// startProcess runs `bin serve --dev args…` with no DASHSYNC_* variable from the
// test's environment, and waits for it to print its URL and dev token. The process
// is killed at cleanup if it is still running.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--dev"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DASHSYNC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	p := &process{cmd: cmd, banner: make(chan struct{}), exited: make(chan struct{}), stderr: &testlog.Buffer{}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.exited)
		var url, token string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				url = m[1]
			}
			if m := tokenLine.FindStringSubmatch(sc.Text()); m != nil {
				token = m[1]
			}
			if url != "" && token != "" && p.url == "" {
				p.url, p.token = url, token
				close(p.banner)
			}
		}
		_ = cmd.Wait() // after the last read from stdout, as Wait requires
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	select {
	case <-p.banner:
		return p
	case <-p.exited:
		t.Fatalf("dashsync exited before printing its URL and token; stderr:\n%s", p.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dashsync printed no URL and token in time; stderr:\n%s", p.stderr.String())
	}
	return nil
}

// ackedEdit is an edit the server acknowledged.
type ackedEdit struct {
	editID  string
	value   int
	version int64
}

// editStream is one WebSocket client that sets /settings/<key> to 1, 2, 3, … one
// edit at a time, each with its own editId, until the server stops it.
type editStream struct {
	c   *wsclient.Client
	key string

	mu       sync.Mutex
	acks     []ackedEdit
	inFlight *ackedEdit // sent and unanswered when the stream ended (version unknown)
	refused  int        // answered `unavailable`: the server was shutting down
	err      error      // anything else, which fails the test
}

func (s *editStream) run(ctx context.Context, channel string, acked chan<- struct{}) {
	base := int64(1)
	for n := 1; ; n++ {
		id := uuid.NewString()
		s.mu.Lock()
		s.inFlight = &ackedEdit{editID: id, value: n}
		s.mu.Unlock()
		r, err := s.c.Request(ctx, map[string]any{"type": "edit", "channel": channel, "base": base, "editId": id,
			"ops": []any{map[string]any{"op": "add", "path": "/settings/" + s.key, "value": n}}})
		if err != nil {
			// The server closed the connection while this edit was on its way: the
			// error comes first, the end of the read loop just after.
			select {
			case <-s.c.Done():
			case <-ctx.Done():
				s.fail(fmt.Errorf("edit %d: %w, and the connection stays open", n, err))
			}
			return
		}
		s.mu.Lock()
		s.inFlight = nil
		switch {
		case r.Type == "ack":
			s.acks = append(s.acks, ackedEdit{editID: id, value: n, version: r.Version})
			base = r.Version
		case r.Type == "error" && r.Error.Code == "unavailable":
			s.refused++
		default:
			s.err = fmt.Errorf("edit %d: got %s, want ack (or unavailable once shutting down)", n, r.Raw)
		}
		s.mu.Unlock()
		if r.Type != "ack" {
			return
		}
		select {
		case acked <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

func (s *editStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// TestShutdown_SIGTERMDuringEditsLosesNoAcknowledgedEdit: SIGTERM while WebSocket
// clients stream edits closes every connection with 1001 (going away), the process
// exits 0, and every acknowledged edit is in the store with the version its ack named
// (SPEC §3: an edit is durable before it is acknowledged; §5, §9: shutdown → 1001),
// while no edit committed during shutdown goes unacknowledged.
func TestShutdown_SIGTERMDuringEditsLosesNoAcknowledgedEdit(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent on Windows")
	}
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	p := startProcess(t, bin, "--addr", "127.0.0.1:0", "--data-dir", dir)

	status, body := request(t, "POST", p.url+"/api/dashboard/layouts", p.token, `{"name":"Shutdown"}`)
	if status != http.StatusCreated {
		t.Fatalf("create a layout: got %d %s", status, body)
	}
	var layout struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &layout); err != nil || layout.ID == "" {
		t.Fatalf("create a layout: %v in %s", err, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(p.url, "http") + "/api/ws"
	streams := make([]*editStream, 3)
	acked := make(chan struct{})
	var wg sync.WaitGroup
	for i := range streams {
		c, _, err := wsclient.Dial(ctx, wsURL, wsclient.Options{Token: p.token})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(c.CloseNow)
		streams[i] = &editStream{c: c, key: fmt.Sprintf("tab%d", i)}
		wg.Go(func() { streams[i].run(ctx, "layout:"+layout.ID, acked) })
	}

	// SIGTERM mid-stream: once 60 edits are acknowledged, with the streams still going.
	for n := 0; n < 60; n++ {
		select {
		case <-acked:
		case <-ctx.Done():
			t.Fatalf("only %d edits acknowledged before the deadline", n)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	go func() { // keep the streams unblocked until they stop
		for {
			select {
			case <-acked:
			case <-ctx.Done():
				return
			}
		}
	}()
	streamsDone := make(chan struct{})
	go func() { wg.Wait(); close(streamsDone) }()
	select {
	case <-streamsDone:
	case <-ctx.Done():
		t.Fatal("the edit streams did not end after SIGTERM")
	}

	for i, s := range streams {
		if s.err != nil {
			t.Errorf("stream %d: %v", i, s.err)
		}
		select {
		case <-s.c.Done():
		case <-ctx.Done():
			t.Fatalf("stream %d: the connection was not closed after SIGTERM", i)
		}
		if got := s.c.CloseStatus(); got != websocket.StatusGoingAway {
			t.Errorf("stream %d: close status %v (%v), want 1001", i, got, s.c.Err())
		}
		t.Logf("stream %d: %d acknowledged, %d refused while shutting down, unanswered: %v", i, len(s.acks), s.refused, s.inFlight != nil)
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		t.Fatalf("dashsync did not exit after SIGTERM; stderr:\n%s", p.stderr.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code: got %d, want 0; stderr:\n%s", code, p.stderr.String())
	}

	// Every acknowledged edit is in the store, as the version its ack named. And the
	// other way round: an edit in flight when shutdown began commits and is
	// acknowledged before the 1001 (the close flushes the queue), so an edit that
	// got no answer did not commit, and the head has each stream's last
	// acknowledged value.
	st, err := sqlite.Open(ctx, filepath.Join(dir, sqliteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	head, err := st.Layout(ctx, "dev", layout.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]string{}
	for i, s := range streams {
		for _, a := range s.acks {
			c, err := st.LayoutChangeByEdit(ctx, layout.ID, a.editID)
			if err != nil {
				t.Fatalf("stream %d: acknowledged edit %s (value %d, version %d) is not in the store: %v", i, a.editID, a.value, a.version, err)
			}
			want := fmt.Sprintf(`[{"op":"add","path":"/settings/%s","value":%d}]`, s.key, a.value)
			if got, _ := json.Marshal(c.Ops); c.Version != a.version || string(got) != want {
				t.Fatalf("stream %d: edit %s is stored as version %d %s, want version %d %s", i, a.editID, c.Version, got, a.version, want)
			}
			if other, dup := seen[a.version]; dup {
				t.Fatalf("version %d acknowledged for two edits: %s and %s", a.version, other, a.editID)
			}
			seen[a.version] = a.editID
		}
		last := 0
		if len(s.acks) > 0 {
			last = s.acks[len(s.acks)-1].value
		}
		got := string(head.Settings[s.key])
		if s.inFlight != nil {
			if _, err := st.LayoutChangeByEdit(ctx, layout.ID, s.inFlight.editID); err == nil {
				t.Errorf("stream %d: edit %s (value %d) committed, but its ack never came before 1001", i, s.inFlight.editID, s.inFlight.value)
				continue
			}
		}
		if got != fmt.Sprint(last) {
			t.Fatalf("stream %d: the head has %s = %s, want the last acknowledged value %d", i, s.key, got, last)
		}
	}
	if len(seen) < 60 {
		t.Fatalf("%d acknowledged edits, want at least the 60 before SIGTERM", len(seen))
	}
}
