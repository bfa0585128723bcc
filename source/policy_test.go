package source_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/dashsync/dashsync/source"
)

func TestPolicy_RefusesSpecialAddresses(t *testing.T) {
	t.Parallel()
	p, err := source.NewPolicy(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		addr   string
		reason string // "" allowed
	}{
		{"127.0.0.1", source.ReasonLoopback},
		{"127.1.2.3", source.ReasonLoopback},
		{"::1", source.ReasonLoopback},
		{"::ffff:127.0.0.1", source.ReasonLoopback},
		{"0.0.0.0", source.ReasonUnspecified},
		{"::", source.ReasonUnspecified},
		{"10.0.0.1", source.ReasonPrivate},
		{"172.16.5.4", source.ReasonPrivate},
		{"172.31.255.255", source.ReasonPrivate},
		{"192.168.1.1", source.ReasonPrivate},
		{"100.64.0.1", source.ReasonPrivate},
		{"fc00::1", source.ReasonPrivate},
		{"fd12:3456::1", source.ReasonPrivate},
		{"169.254.169.254", source.ReasonMetadata},
		{"fd00:ec2::254", source.ReasonMetadata},
		{"::ffff:169.254.169.254", source.ReasonMetadata},
		{"169.254.1.1", source.ReasonLinkLocal},
		{"fe80::1", source.ReasonLinkLocal},
		{"fe80::1%eth0", source.ReasonLinkLocal},
		{"224.0.0.1", source.ReasonMulticast},
		{"ff02::1", source.ReasonMulticast},
		{"255.255.255.255", source.ReasonReserved},
		{"192.0.2.1", source.ReasonReserved},
		{"64:ff9b::a00:1", source.ReasonPrivate}, // NAT64 of 10.0.0.1
		{"2002:7f00:1::", source.ReasonLoopback}, // 6to4 of 127.0.0.1
		{"::ffff:0:a00:1", source.ReasonPrivate}, // IPv4-translated 10.0.0.1
		{"8.8.8.8", ""},                          // judged only: nothing is dialled here
		{"2606:4700::1111", ""},                  // likewise
		{"172.32.0.1", ""},                       // just outside 172.16/12
		{"64:ff9b::808:808", ""},                 // NAT64 of a public address
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			t.Parallel()
			err := p.Allowed("", netip.AddrPortFrom(netip.MustParseAddr(c.addr), 80))
			var fe *source.ForbiddenError
			switch {
			case c.reason == "" && err != nil:
				t.Fatalf("got %v, want allowed", err)
			case c.reason != "" && !errors.As(err, &fe):
				t.Fatalf("got %v, want a *ForbiddenError (%s)", err, c.reason)
			case c.reason != "" && fe.Reason != c.reason:
				t.Fatalf("got reason %q, want %q", fe.Reason, c.reason)
			}
		})
	}
}

func TestPolicy_AllowList(t *testing.T) {
	t.Parallel()
	p, err := source.NewPolicy([]string{"10.1.0.0/16", "::1", "127.0.0.1:8081", " metrics.internal:9090 ", ""})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host    string
		addr    string
		port    uint16
		allowed bool
	}{
		{"", "10.1.2.3", 80, true},
		{"", "10.2.0.1", 80, false},
		{"", "::1", 1234, true},
		{"", "127.0.0.1", 8081, true},
		{"", "::ffff:127.0.0.1", 8081, true},
		{"", "127.0.0.1", 8082, false},
		{"", "127.0.0.2", 8081, false},
		{"metrics.internal", "10.9.9.9", 9090, true},
		{"METRICS.internal.", "10.9.9.9", 9090, true},
		{"metrics.internal", "10.9.9.9", 9091, false},
		{"other.internal", "10.9.9.9", 9090, false},
	}
	for _, c := range cases {
		err := p.Allowed(c.host, netip.AddrPortFrom(netip.MustParseAddr(c.addr), c.port))
		if got := err == nil; got != c.allowed {
			t.Errorf("Allowed(%q, %s:%d): got %v, want allowed=%v", c.host, c.addr, c.port, err, c.allowed)
		}
	}
	if got, want := p.String(), "10.1.0.0/16,::1,127.0.0.1:8081,metrics.internal:9090"; got != want {
		t.Errorf("String: got %q, want %q", got, want)
	}
}

func TestPolicy_BadAllowListEntries(t *testing.T) {
	t.Parallel()
	for _, e := range []string{"10.0.0.0/33", "not a host", "host:0", "host:99999", "metrics.internal", "a..b:80", "http://x:80"} {
		if _, err := source.NewPolicy([]string{e}); err == nil {
			t.Errorf("NewPolicy(%q): got no error, want one", e)
		}
	}
	if p, err := source.ParseAllowList("127.0.0.1:1, 10.0.0.0/8"); err != nil || p.String() != "127.0.0.1:1,10.0.0.0/8" {
		t.Errorf("ParseAllowList: got %v, %v", p, err)
	}
}
