package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/store/postgres"
	dsync "github.com/dashsync/dashsync/sync"
)

// commitCutter is a TCP proxy in front of Postgres that, when armed, cuts the
// connection carrying the next COMMIT: after forwarding it (the server commits, the
// client never hears) or before (the server never sees it). With refuse set it then
// refuses new connections, so nothing can be looked up.
type commitCutter struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	armed  string // "", "after" or "before"
	refuse bool
	cuts   int
}

func newCommitCutter(t *testing.T, target string) *commitCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &commitCutter{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() { _ = ln.Close() })
	return p
}

func (p *commitCutter) arm(mode string, refuse bool) {
	p.mu.Lock()
	p.armed, p.refuse = mode, refuse
	p.mu.Unlock()
}

func (p *commitCutter) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *commitCutter) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse && p.cuts > 0
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		go func() { _, _ = io.Copy(c, s); _ = c.Close(); _ = s.Close() }()
		go p.forward(c, s)
	}
}

// forward copies client to server, watching for a simple-protocol COMMIT.
func (p *commitCutter) forward(c, s net.Conn) {
	defer func() { _ = c.Close(); _ = s.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			p.mu.Lock()
			mode := p.armed
			hit := mode != "" && bytes.Contains(bytes.ToLower(chunk), []byte("commit\x00"))
			if hit {
				p.armed = ""
				p.cuts++
			}
			p.mu.Unlock()
			if hit && mode == "before" {
				return
			}
			if _, werr := s.Write(chunk); werr != nil {
				return
			}
			if hit {
				// The server has the COMMIT; the client never hears back.
				_ = c.Close()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// viaProxy returns dbURL with its host replaced by the proxy's.
func viaProxy(t *testing.T, dbURL, addr string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

func hostOf(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}

// TestCommitCut_OutcomeIsFoundOut cuts the store connection during COMMIT (SPEC §12):
// an edit that committed is acknowledged, one that did not is unavailable with
// nothing written, and one whose fate cannot be looked up says its outcome is
// unknown; a resend with the same editId then tells the truth.
func TestCommitCut_OutcomeIsFoundOut(t *testing.T) {
	t.Parallel()
	dbURL := testpg.NewDatabase(t)
	direct, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = direct.Close() })

	open := func(t *testing.T, p *commitCutter) *dsync.Service {
		t.Helper()
		s, err := postgres.Open(t.Context(), viaProxy(t, dbURL, p.ln.Addr().String()))
		if err != nil {
			t.Fatalf("open via proxy: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return dsync.NewService(s, dsync.Options{ResolveTimeout: 3 * time.Second})
	}
	layout := func(t *testing.T, svc *dsync.Service, owner string) dsync.Layout {
		t.Helper()
		name := "cut"
		l, err := svc.CreateLayout(t.Context(), owner, dsync.NewLayout{Doc: dsync.LayoutDoc{Name: &name}, Author: owner})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		return l
	}
	rename := func(l dsync.Layout, name, editID string) dsync.Edit {
		return dsync.Edit{Base: l.Version, EditID: editID, Author: "alice",
			Ops: []dsync.Op{{Op: dsync.OpReplace, Path: "/name", Value: []byte(`"` + name + `"`)}}}
	}
	stored := func(t *testing.T, owner, id string) dsync.Layout {
		t.Helper()
		l, err := direct.Layout(context.Background(), owner, id)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		return l
	}

	t.Run("committed edit is acknowledged", func(t *testing.T) {
		p := newCommitCutter(t, hostOf(t, dbURL))
		svc := open(t, p)
		l := layout(t, svc, "alice")
		p.arm("after", false)
		editID := uuid.NewString()
		_, res, err := svc.EditLayout(t.Context(), "alice", l.ID, rename(l, "after the cut", editID))
		if p.cutCount() != 1 {
			t.Fatalf("the proxy cut %d COMMITs, want 1", p.cutCount())
		}
		if err != nil {
			t.Fatalf("edit whose COMMIT reached the server: got %v, want its ack", err)
		}
		got := stored(t, "alice", l.ID)
		if res.Version != 2 || got.Version != 2 || got.Name != "after the cut" {
			t.Errorf("ack version %d, stored version %d %q; want 2, 2 %q", res.Version, got.Version, got.Name, "after the cut")
		}
		// The resend is the same ack, not a second version.
		_, res2, err := svc.EditLayout(t.Context(), "alice", l.ID, rename(l, "after the cut", editID))
		if err != nil || res2.Version != 2 || !res2.Duplicate {
			t.Errorf("resend: got %+v, %v; want the original ack (version 2, duplicate)", res2, err)
		}
	})

	t.Run("edit that never reached the server is unavailable and wrote nothing", func(t *testing.T) {
		p := newCommitCutter(t, hostOf(t, dbURL))
		svc := open(t, p)
		l := layout(t, svc, "bob")
		p.arm("before", false)
		_, _, err := svc.EditLayout(t.Context(), "bob", l.ID, rename(l, "never", uuid.NewString()))
		if p.cutCount() != 1 {
			t.Fatalf("the proxy cut %d COMMITs, want 1", p.cutCount())
		}
		var de *dsync.Error
		if !errors.As(err, &de) || de.Code != dsync.CodeUnavailable || de.Outcome != "" {
			t.Fatalf("got %v, want unavailable (nothing written) with no unknown outcome", err)
		}
		if got := stored(t, "bob", l.ID); got.Version != 1 {
			t.Errorf("stored version %d, want 1: nothing written", got.Version)
		}
	})

	t.Run("outcome that cannot be looked up is unknown", func(t *testing.T) {
		p := newCommitCutter(t, hostOf(t, dbURL))
		svc := open(t, p)
		l := layout(t, svc, "carol")
		p.arm("after", true) // and no connection afterwards
		_, _, err := svc.EditLayout(t.Context(), "carol", l.ID, rename(l, "unknown", uuid.NewString()))
		var de *dsync.Error
		if !errors.As(err, &de) || de.Code != dsync.CodeUnavailable || de.Outcome != dsync.OutcomeUnknown {
			t.Fatalf("got %v, want unavailable with outcome unknown", err)
		}
		if got := stored(t, "carol", l.ID); got.Version != 2 {
			t.Errorf("stored version %d, want 2 (the COMMIT reached the server)", got.Version)
		}
	})
}
