package source

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Reasons a destination is refused (ForbiddenError.Reason).
const (
	ReasonLoopback    = "loopback"
	ReasonPrivate     = "private"
	ReasonLinkLocal   = "link-local"
	ReasonMetadata    = "metadata"
	ReasonUnspecified = "unspecified"
	ReasonMulticast   = "multicast"
	ReasonReserved    = "reserved"
)

// ForbiddenError is a destination the SSRF policy refuses: the address an http source
// was about to connect to (or, for a literal address in a URL, would connect to).
type ForbiddenError struct {
	// Host is the URL's host as written (a name or an address).
	Host string
	// Addr is the refused address and port.
	Addr netip.AddrPort
	// Reason is one of the Reason constants.
	Reason string
	// Redirect is true when a redirect led to the address.
	Redirect bool
}

func (e *ForbiddenError) Error() string {
	via := ""
	if e.Redirect {
		via = "a redirect to "
	}
	if e.Host != "" && e.Host != e.Addr.Addr().String() {
		return fmt.Sprintf("%shost %s resolves to %s, a %s address that http sources may not reach", via, e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("%s%s is a %s address that http sources may not reach", via, e.Addr, e.Reason)
}

type deny struct {
	prefix netip.Prefix
	reason string
}

// Policy is the SSRF policy of SPEC §7: http sources may reach any address except
// loopback, private (RFC 1918, RFC 6598 shared, IPv6 ULA), link-local, cloud
// metadata, unspecified, multicast and reserved ones, unless the allow-list names them.
// IPv4 addresses embedded in IPv6 ones (mapped, NAT64, 6to4) are judged as IPv4.
// The zero value is not usable; NewPolicy(nil) allows nothing extra. A Policy is
// immutable and safe for concurrent use.
type Policy struct {
	deny      []deny
	prefixes  []netip.Prefix          // allowed, any port
	addrPorts map[netip.AddrPort]bool // allowed, that port only
	hostPorts map[string]bool         // "name:port" as written in URLs, lower case
	entries   []string                // as configured, for String
}

// NewPolicy returns the policy with allow-list entries, each one of:
//
//	10.1.0.0/16, fd12::/16        a range (CIDR): any address in it, any port
//	10.1.2.3, ::1                 one address, any port
//	10.1.2.3:8080, [::1]:9000     one address, that port only
//	metrics.internal:9090         a host name as URLs write it, that port, whatever
//	                              it resolves to
//
// Blank entries are skipped; anything else is an error naming the entry.
func NewPolicy(allow []string) (*Policy, error) {
	p := &Policy{deny: denyList(), addrPorts: map[netip.AddrPort]bool{}, hostPorts: map[string]bool{}}
	for _, raw := range allow {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if err := p.add(e); err != nil {
			return nil, fmt.Errorf("source allow-list entry %q: %w", e, err)
		}
		p.entries = append(p.entries, e)
	}
	return p, nil
}

// ParseAllowList splits a comma-separated allow-list (the --source-allow flag) and
// returns its policy.
func ParseAllowList(s string) (*Policy, error) {
	return NewPolicy(strings.Split(s, ","))
}

func (p *Policy) add(e string) error {
	if strings.Contains(e, "/") {
		pfx, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("not a CIDR range")
		}
		p.prefixes = append(p.prefixes, canonicalPrefix(pfx))
		return nil
	}
	if a, err := netip.ParseAddr(e); err == nil {
		a = canonical(a)
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	host, port, err := net.SplitHostPort(e)
	if err != nil {
		return fmt.Errorf("want a CIDR range, an IP address, or host:port")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		p.addrPorts[netip.AddrPortFrom(canonical(a), uint16(n))] = true
		return nil
	}
	if !validHostName(host) {
		return fmt.Errorf("host %q: want a host name or an IP address", host)
	}
	p.hostPorts[hostPortKey(host, uint16(n))] = true
	return nil
}

// String lists the allow-list as configured.
func (p *Policy) String() string { return strings.Join(p.entries, ",") }

// Allowed reports whether addr, reached through the URL host host ("" when unknown),
// may be connected to: nil, or a *ForbiddenError.
func (p *Policy) Allowed(host string, addr netip.AddrPort) error {
	a := canonical(addr.Addr())
	ap := netip.AddrPortFrom(a, addr.Port())
	if p.allows(host, ap) {
		return nil
	}
	if r := p.classify(a); r != "" {
		return &ForbiddenError{Host: host, Addr: ap, Reason: r}
	}
	return nil
}

// HostAllowed reports whether the allow-list names host:port itself, so that every
// address it resolves to may be reached.
func (p *Policy) HostAllowed(host string, port uint16) bool {
	return p.hostPorts[hostPortKey(host, port)]
}

func (p *Policy) allows(host string, ap netip.AddrPort) bool {
	if host != "" && p.HostAllowed(host, ap.Port()) {
		return true
	}
	if p.addrPorts[ap] {
		return true
	}
	for _, pfx := range p.prefixes {
		if pfx.Contains(ap.Addr()) {
			return true
		}
	}
	return false
}

// classify returns why a is refused, or "" when it is an ordinary public address.
func (p *Policy) classify(a netip.Addr) string {
	if a.Is6() {
		if v4, ok := embeddedIPv4(a); ok {
			return p.classify(v4)
		}
	}
	for _, d := range p.deny {
		if d.prefix.Contains(a) {
			return d.reason
		}
	}
	return ""
}

// denyList is the table of refused ranges, most specific first: the first match names
// the reason.
func denyList() []deny {
	table := []struct{ reason, prefixes string }{
		{ReasonMetadata, "169.254.169.254/32 fd00:ec2::254/128 100.100.100.200/32"},
		{ReasonUnspecified, "0.0.0.0/8 ::/128"},
		{ReasonLoopback, "127.0.0.0/8 ::1/128"},
		{ReasonPrivate, "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 fc00::/7 64:ff9b:1::/48"},
		{ReasonLinkLocal, "169.254.0.0/16 fe80::/10"},
		{ReasonMulticast, "224.0.0.0/4 ff00::/8"},
		{ReasonReserved, "192.0.0.0/24 192.0.2.0/24 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24 240.0.0.0/4 " +
			"::/96 100::/64 2001::/32 2001:db8::/32 fec0::/10"},
	}
	var out []deny
	for _, row := range table {
		for f := range strings.FieldsSeq(row.prefixes) {
			out = append(out, deny{prefix: netip.MustParsePrefix(f), reason: row.reason})
		}
	}
	return out
}

// embeddedIPv4 returns the IPv4 address carried by an IPv4-mapped (::ffff:0:0/96),
// IPv4-translated (::ffff:0:0:0/96), NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if a.Is4In6() {
		return a.Unmap(), true
	}
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	zero := func(from, to int) bool {
		for _, x := range b[from:to] {
			if x != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case zero(0, 8) && b[8] == 0xff && b[9] == 0xff && zero(10, 12): // ::ffff:0:a.b.c.d
		return v4(12), true
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12): // 64:ff9b::a.b.c.d
		return v4(12), true
	case b[0] == 0x20 && b[1] == 0x02: // 2002:aabb:ccdd::
		return v4(2), true
	}
	return netip.Addr{}, false
}

// canonical drops the zone and unmaps IPv4-mapped addresses.
func canonical(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }

func canonicalPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	bits := p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked()
}

func hostPortKey(host string, port uint16) string {
	return strings.ToLower(strings.TrimSuffix(host, ".")) + ":" + strconv.Itoa(int(port))
}

func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
