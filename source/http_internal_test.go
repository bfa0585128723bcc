package source

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

// The default dialer's ControlContext sees the address about to be connected to; no
// connection is made here.
func TestHTTP_ControlChecksTheAddressDialled(t *testing.T) {
	t.Parallel()
	h, err := NewHTTP(HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	approved := context.WithValue(context.Background(), approvedKey{}, netip.MustParseAddrPort("127.0.0.1:8080"))
	cases := []struct {
		name    string
		ctx     context.Context
		address string
		reason  string // "" allowed
	}{
		{"approved by dial", approved, "127.0.0.1:8080", ""},
		{"approved, mapped form", approved, "[::ffff:127.0.0.1]:8080", ""},
		{"another port than approved", approved, "127.0.0.1:8081", ReasonLoopback},
		{"not approved", context.Background(), "127.0.0.1:8080", ReasonLoopback},
		{"private", context.Background(), "10.0.0.1:80", ReasonPrivate},
		{"metadata", approved, "169.254.169.254:80", ReasonMetadata},
		{"public", context.Background(), "8.8.8.8:443", ""},
	}
	for _, c := range cases {
		err := h.control(c.ctx, "tcp", c.address, nil)
		var fe *ForbiddenError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s: got %v, want allowed", c.name, err)
		case c.reason != "" && (!errors.As(err, &fe) || fe.Reason != c.reason):
			t.Errorf("%s: got %v, want refused as %s", c.name, err, c.reason)
		}
	}
	if err := h.control(context.Background(), "tcp", "example.test:80", nil); err == nil {
		t.Errorf("a host name at control: got nil, want an error")
	}
}
