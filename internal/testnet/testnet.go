// Package testnet gives tests a resolver and a dialer that keep every connection on
// loopback: the project's tests send traffic to loopback addresses only, even when
// the code under test (an SSRF policy, say) is broken.
//
// The Resolver answers from a fixed table and never asks DNS. The Dialer connects to
// loopback addresses only; asked for anything else (another address, or a host name it
// would have to resolve) it refuses without sending a packet, records the attempt, and
// fails the test at cleanup: a policy that lets such a dial through is caught by the
// test instead of reaching the network.
package testnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrNotLoopback is what the Dialer answers for a non-loopback destination.
var ErrNotLoopback = errors.New("testnet: refused: tests connect to loopback addresses only")

// Resolver is a fixed host table, safe for concurrent use.
type Resolver struct {
	mu      sync.Mutex
	hosts   map[string][]string
	lookups []string
}

// NewResolver returns a resolver answering hosts (name → addresses); other names do
// not resolve.
func NewResolver(hosts map[string][]string) *Resolver {
	r := &Resolver{hosts: map[string][]string{}}
	for h, as := range hosts {
		r.Set(h, as...)
	}
	return r
}

// Set makes host resolve to addrs (none: not at all).
func (r *Resolver) Set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[strings.ToLower(strings.TrimSuffix(host, "."))] = addrs
}

// LookupIPAddr answers from the table.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, host)
	as := r.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
	if len(as) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]net.IPAddr, 0, len(as))
	for _, a := range as {
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, fmt.Errorf("testnet: bad address %q for %s", a, host)
		}
		out = append(out, net.IPAddr{IP: ip})
	}
	return out, nil
}

// Lookups returns the names looked up so far.
func (r *Resolver) Lookups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lookups)
}

// Dialer connects to loopback addresses and refuses everything else; see the package
// doc. It is safe for concurrent use.
type Dialer struct {
	mu      sync.Mutex
	dialed  []string
	refused []string
}

// NewDialer returns a Dialer whose refusals fail t at cleanup.
func NewDialer(t testing.TB) *Dialer {
	t.Helper()
	d := &Dialer{}
	t.Cleanup(func() {
		if r := d.Refused(); len(r) > 0 {
			t.Errorf("testnet: the code under test tried to connect to %v; only loopback addresses may be dialled (the dials were refused, nothing was sent)", r)
		}
	})
	return d
}

// DialContext connects to address when it is a loopback IP and port.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	d.mu.Lock()
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		d.refused = append(d.refused, address)
		d.mu.Unlock()
		return nil, fmt.Errorf("dial %s %s: %w", network, address, ErrNotLoopback)
	}
	d.dialed = append(d.dialed, address)
	d.mu.Unlock()
	return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, address)
}

// Dialed returns the loopback addresses dialled so far.
func (d *Dialer) Dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dialed)
}

// Refused returns the destinations refused so far (each one a test failure).
func (d *Dialer) Refused() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.refused)
}
