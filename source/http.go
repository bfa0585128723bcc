package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
)

// Resolver looks up a host's addresses; *net.Resolver is one. Tests inject their own.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Dialer opens connections; *net.Dialer is one. The http kind hands it only addresses
// (never host names) that the policy allowed. Tests inject their own.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// HTTPOptions configure the http kind. Zero values take the documented defaults.
type HTTPOptions struct {
	// Policy is the SSRF policy; nil: NewPolicy(nil), nothing allow-listed.
	Policy *Policy
	// Resolver looks up host names; nil: net.DefaultResolver.
	Resolver Resolver
	// Dialer connects to the allowed addresses; nil: a net.Dialer whose ControlContext
	// checks once more the address actually connected to.
	Dialer Dialer
	// Timeout bounds a whole fetch, redirects included; default 5s.
	Timeout time.Duration
	// LookupTimeout bounds the resolution of Check (at create and update); default 2s.
	LookupTimeout time.Duration
	// MaxBody is the largest answer read, in bytes; default 1 MiB.
	MaxBody int64
	// MaxRedirects is how many redirects a fetch follows, each to an address the
	// policy allows; default 5; negative: none.
	MaxRedirects int
}

// HTTP is the http kind: GET source.url, whose answer must be JSON. Every connection,
// redirects included, goes to an address the Policy allows: host names are resolved
// here, each address checked, and only allowed ones dialled (so a name cannot resolve
// to one address when checked and another when dialled). It is safe for concurrent use.
type HTTP struct {
	o         HTTPOptions
	transport *http.Transport
	client    *http.Client
}

// NewHTTP returns the http kind.
func NewHTTP(o HTTPOptions) (*HTTP, error) {
	if o.Policy == nil {
		p, err := NewPolicy(nil)
		if err != nil {
			return nil, err
		}
		o.Policy = p
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = 2 * time.Second
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = 5
	}
	h := &HTTP{o: o}
	if h.o.Dialer == nil {
		h.o.Dialer = &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second, ControlContext: h.control}
	}
	h.transport = &http.Transport{
		Proxy:                  nil, // a proxy would connect where the policy never looked
		DialContext:            h.dial,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	h.client = &http.Client{Transport: h.transport, CheckRedirect: h.checkRedirect, Timeout: o.Timeout}
	return h, nil
}

// Close drops idle connections. Safe to call twice; the kind stays usable.
func (h *HTTP) Close() error {
	h.transport.CloseIdleConnections()
	return nil
}

// Check implements Kind: source.url must be an http(s) URL whose host is an allowed
// address, or a name resolving to at least one allowed address (SPEC §9).
func (h *HTTP) Check(ctx context.Context, src dsync.Source) error {
	if src.URL == "" {
		return dsync.Invalid("source.url", "required", "", "an http source needs source.url")
	}
	u, err := url.Parse(src.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return dsync.Invalid("source.url", "url", "", "source.url must be an http or https URL")
	}
	if _, err := portOf(u); err != nil {
		return dsync.Invalid("source.url", "url", "", "source.url has a bad port")
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.LookupTimeout)
	defer cancel()
	err = h.precheck(ctx, u)
	var fe *ForbiddenError
	var le *lookupError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe) && fe.Host == fe.Addr.Addr().String():
		return dsync.Invalid("source.url", "forbidden", "", "source.url: %s is a %s address, which http sources may not reach", fe.Host, fe.Reason)
	case errors.As(err, &fe):
		return dsync.Invalid("source.url", "forbidden", "", "source.url: host %s resolves only to addresses http sources may not reach (%s)", fe.Host, fe.Reason)
	case errors.As(err, &le):
		return dsync.Invalid("source.url", "resolve", "", "source.url: host %s does not resolve", le.host)
	}
	return err
}

// lookupError is a host that did not resolve.
type lookupError struct {
	host string
	err  error
}

func (e *lookupError) Error() string { return fmt.Sprintf("look up %s: %v", e.host, e.err) }
func (e *lookupError) Unwrap() error { return e.err }

// precheck judges u's host before any connection: nil when at least one of its
// addresses is allowed, a *ForbiddenError when none is, a *lookupError when it does
// not resolve. The dial checks again; this gives the clear early answer.
func (h *HTTP) precheck(ctx context.Context, u *url.URL) error {
	host := u.Hostname()
	port, err := portOf(u)
	if err != nil {
		return err
	}
	if h.o.Policy.HostAllowed(host, port) {
		return nil
	}
	addrs, err := h.lookup(ctx, host)
	if err != nil {
		return err
	}
	var first error
	for _, a := range addrs {
		err := h.o.Policy.Allowed(host, netip.AddrPortFrom(a, port))
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func portOf(u *url.URL) (uint16, error) {
	p := u.Port()
	if p == "" {
		if u.Scheme == "https" {
			return 443, nil
		}
		return 80, nil
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad port %q", p)
	}
	return uint16(n), nil
}

// lookup returns host's addresses: itself when it is a literal address, else what the
// resolver answers.
func (h *HTTP) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	ips, err := h.o.Resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, &lookupError{host: host, err: err}
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.IP); ok {
			out = append(out, a.Unmap().WithZone(ip.Zone))
		}
	}
	if len(out) == 0 {
		return nil, &lookupError{host: host, err: errors.New("no addresses")}
	}
	return out, nil
}

type approvedKey struct{}

// dial is the transport's DialContext: it resolves addr's host itself, drops every
// address the policy refuses, and dials the others by address. With none left the
// error is the *ForbiddenError of the first.
func (h *HTTP) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", addr)
	}
	addrs, err := h.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	var refused error
	var failed []error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(port))
		if err := h.o.Policy.Allowed(host, ap); err != nil {
			if refused == nil {
				refused = err
			}
			continue
		}
		conn, err := h.o.Dialer.DialContext(context.WithValue(ctx, approvedKey{}, ap), network, ap.String())
		if err == nil {
			return conn, nil
		}
		failed = append(failed, err)
	}
	if len(failed) > 0 {
		return nil, errors.Join(failed...)
	}
	return nil, refused
}

// control is the default dialer's last word, given the address about to be connected
// to: the address dial approved, or one the policy allows on its own.
func (h *HTTP) control(ctx context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("source dial to %q: not an address", address)
	}
	ap = netip.AddrPortFrom(canonical(ap.Addr()), ap.Port())
	if want, ok := ctx.Value(approvedKey{}).(netip.AddrPort); ok && netip.AddrPortFrom(canonical(want.Addr()), want.Port()) == ap {
		return nil
	}
	return h.o.Policy.Allowed("", ap)
}

// Redirect refusals that are not about addresses.
var (
	errTooManyRedirects = errors.New("too many redirects")
	errRedirectScheme   = errors.New("redirect to a URL that is not http or https")
)

// checkRedirect allows a redirect to an http(s) URL whose host the policy allows, up
// to MaxRedirects; the dial checks the address again.
func (h *HTTP) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > h.o.MaxRedirects {
		return errTooManyRedirects
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: %q", errRedirectScheme, req.URL.Scheme)
	}
	err := h.precheck(req.Context(), req.URL)
	var fe *ForbiddenError
	if errors.As(err, &fe) {
		c := *fe
		c.Redirect = true
		return &c
	}
	return err
}

// Fetch implements widgetdata.Fetcher. Every failure is a source_failed *dsync.Error
// whose message says what went wrong without the addresses a host resolved to.
func (h *HTTP) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, h.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.Source.URL, nil)
	if err != nil {
		return nil, failed(err, "the widget's source URL cannot be fetched")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dashsync")
	res, err := h.client.Do(req)
	if err != nil {
		return nil, h.describe(err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10)) // lets the connection be reused
		return nil, failed(fmt.Errorf("status %s", res.Status), "the widget's source answered %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, h.o.MaxBody+1))
	if err != nil {
		return nil, h.describe(err)
	}
	if int64(len(body)) > h.o.MaxBody {
		return nil, failed(nil, "the widget's source answered more than %d bytes", h.o.MaxBody)
	}
	if !json.Valid(body) {
		return nil, failed(nil, "the widget's source did not answer JSON")
	}
	return body, nil
}

func (h *HTTP) describe(err error) error {
	var fe *ForbiddenError
	var ne net.Error
	switch {
	case errors.As(err, &fe) && fe.Redirect:
		return failed(err, "the widget's source redirected to a %s address, which http sources may not reach", fe.Reason)
	case errors.As(err, &fe):
		return failed(err, "the widget's source is at a %s address, which http sources may not reach", fe.Reason)
	case errors.Is(err, errTooManyRedirects):
		return failed(err, "the widget's source redirected more than %d times", max(h.o.MaxRedirects, 0))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return failed(err, "the widget's source did not answer within %s", h.o.Timeout)
	case errors.Is(err, errRedirectScheme):
		return failed(err, "the widget's source redirected to a URL that is not http or https")
	}
	var le *lookupError
	if errors.As(err, &le) {
		return failed(err, "the widget's source host %s does not resolve", le.host)
	}
	return failed(err, "the widget's source could not be reached")
}

func failed(err error, format string, args ...any) *dsync.Error {
	return &dsync.Error{Code: dsync.CodeSourceFailed, Message: fmt.Sprintf(format, args...), Err: err}
}
