// Package tcpproxy is an in-test TCP proxy on loopback that can be cut or frozen:
// while cut it drops every connection and refuses new ones; while frozen it keeps
// every connection open and accepts new ones but forwards nothing, the way a server
// that hangs (a process stopped with SIGSTOP) looks to its clients. That is how fault
// tests take Redis or Postgres away from a server without touching the service itself.
package tcpproxy

import (
	"errors"
	"net"
	"net/url"
	"sync"
	"testing"
)

// InFrontOf starts a proxy to the server named by rawURL (a redis:// or postgres://
// URL on loopback; defaultPort when it names none) and returns it with the URL
// rewritten to dial the proxy.
func InFrontOf(t testing.TB, rawURL, defaultPort string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() == "" {
		t.Fatalf("%s names no TCP host to put a proxy in front of", u.Redacted())
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	p := New(t, target)
	u.Host = p.Addr()
	return p, u.String()
}

// Proxy forwards connections from its loopback address to a target.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	// thawed is nil while bytes flow; while frozen, forwarding waits for it to close.
	thawed chan struct{}
	wg     sync.WaitGroup
}

// New starts a proxy to target (a loopback host:port), closed at cleanup.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		t.Fatalf("tcpproxy: target %s is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.pipe(c)
	}
}

// waitThawed returns at once unless the proxy is frozen, then when it thaws.
func (p *Proxy) waitThawed() {
	p.mu.Lock()
	ch := p.thawed
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (p *Proxy) pipe(c net.Conn) {
	defer p.wg.Done()
	p.waitThawed() // a hung server's kernel accepts the connection; nothing answers
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_ = up.Close()
		p.drop(c)
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				// While frozen, what was read waits here and the rest stays in the
				// sockets' buffers: delivered late, in order, once thawed.
				p.waitThawed()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	p.drop(c)
	p.drop(up)
	<-done
}

func (p *Proxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

// Freeze stops forwarding in both directions without closing anything, and holds new
// connections unanswered, until Thaw: the server looks hung. Freezing twice is safe.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thawed == nil {
		p.thawed = make(chan struct{})
	}
}

// Thaw ends a freeze: what was sent meanwhile is forwarded, in order.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thawed != nil {
		close(p.thawed)
		p.thawed = nil
	}
}

// Cut drops every connection and refuses new ones until Restore. It ends a freeze.
func (p *Proxy) Cut() {
	p.mu.Lock()
	if p.thawed != nil {
		close(p.thawed)
		p.thawed = nil
	}
	p.cut = true
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() {
	err := p.ln.Close()
	p.Cut()
	if err == nil || !errors.Is(err, net.ErrClosed) {
		p.wg.Wait()
	}
}
