package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

var (
	_ dsync.SourceChecker = (*Registry)(nil)
	_ widgetdata.Fetcher  = (*Registry)(nil)
)

// Kind is one kind of widget source (SPEC §2 source.kind). A kind whose data the
// server fetches also implements widgetdata.Fetcher; one without (static, push) is
// served by widgetdata from the source or from pushes.
type Kind interface {
	// Check reports whether src, a source of this kind, is acceptable at create and
	// update: nil, or a validation_failed *dsync.Error naming the field. It may do I/O
	// (resolve a host) and gives up when ctx is done.
	Check(ctx context.Context, src dsync.Source) error
}

// Funcs is a Kind made of functions: CheckFunc (nil accepts every source) and
// FetchFunc (which a Funcs always has: nil fails every fetch).
type Funcs struct {
	CheckFunc func(ctx context.Context, src dsync.Source) error
	FetchFunc func(ctx context.Context, w dsync.Widget) (json.RawMessage, error)
}

// Check implements Kind.
func (f Funcs) Check(ctx context.Context, src dsync.Source) error {
	if f.CheckFunc == nil {
		return nil
	}
	return f.CheckFunc(ctx, src)
}

// Fetch implements widgetdata.Fetcher.
func (f Funcs) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	if f.FetchFunc == nil {
		return nil, dsync.Errorf(dsync.CodeSourceFailed, "source kind %q cannot be fetched", w.Source.Kind)
	}
	return f.FetchFunc(ctx, w)
}

var kindPattern = regexp.MustCompile(`^[a-z0-9._-]{1,32}$`)

// Registry holds the source kinds by name. It is the sync.SourceChecker of the server
// and, through Fetchers, the fetchers of widgetdata. Register every kind before the
// registry is wired in; after that it is safe for concurrent use.
type Registry struct {
	metrics *Metrics

	mu    sync.RWMutex
	kinds map[string]Kind
}

// NewRegistry returns an empty registry reporting fetches to m (nil: no metrics).
func NewRegistry(m *Metrics) *Registry {
	return &Registry{metrics: m, kinds: map[string]Kind{}}
}

// Register adds kind k under name (1-32 of [a-z0-9._-]); a name taken twice is an
// error.
func (r *Registry) Register(name string, k Kind) error {
	if !kindPattern.MatchString(name) {
		return fmt.Errorf("source kind %q: want 1-32 of a-z, 0-9, '.', '_' or '-'", name)
	}
	if k == nil {
		return fmt.Errorf("source kind %q: nil kind", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kinds[name]; ok {
		return fmt.Errorf("source kind %q is registered twice", name)
	}
	r.kinds[name] = k
	return nil
}

// Names lists the registered kinds, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (r *Registry) kind(name string) (Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k, ok
}

// CheckSource implements sync.SourceChecker: an unknown kind is a validation_failed
// error on source.kind; a known one is checked by its kind.
func (r *Registry) CheckSource(ctx context.Context, src dsync.Source) error {
	k, ok := r.kind(src.Kind)
	if !ok {
		names := r.Names()
		return dsync.Invalid("source.kind", "oneof", strings.Join(names, " "),
			"source.kind %q is not a known kind (known: %s)", src.Kind, strings.Join(names, ", "))
	}
	return k.Check(ctx, src)
}

// Fetch implements widgetdata.Fetcher for every fetched kind: it hands w to the kind
// of its source, timing the fetch and counting failures by kind.
func (r *Registry) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	k, ok := r.kind(w.Source.Kind)
	f, fetched := k.(widgetdata.Fetcher)
	if !ok || !fetched {
		return nil, dsync.Errorf(dsync.CodeSourceFailed, "source kind %q cannot be fetched", w.Source.Kind)
	}
	start := time.Now()
	raw, err := f.Fetch(ctx, w)
	r.metrics.observe(w.Source.Kind, time.Since(start), err)
	return raw, err
}

// Fetchers returns widgetdata's fetcher table: the registry under the name of every
// registered kind that is fetched.
func (r *Registry) Fetchers() map[string]widgetdata.Fetcher {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]widgetdata.Fetcher{}
	for n, k := range r.kinds {
		if _, ok := k.(widgetdata.Fetcher); ok {
			out[n] = r
		}
	}
	return out
}

// Close releases what the kinds hold (the http kind's idle connections). Safe to call
// twice.
func (r *Registry) Close() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var errs []error
	for _, k := range r.kinds {
		if c, ok := k.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// errorReason sorts a fetch failure for the metrics: "forbidden" (the SSRF policy
// refused the address), "timeout", or "error".
func errorReason(err error) string {
	var fe *ForbiddenError
	var ne net.Error
	switch {
	case errors.As(err, &fe):
		return "forbidden"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "error"
}

// Options configure the built-in kinds. Zero values take the documented defaults.
type Options struct {
	// HTTP configures the http kind (SSRF policy, resolver, dialer, limits).
	HTTP HTTPOptions
	// Now is the demo kinds' clock; default time.Now.
	Now func() time.Time
	// Metrics receives fetch latency and failures by kind; nil: none.
	Metrics *Metrics
}

// NewBuiltins returns a registry of the built-in kinds of SPEC §2: static, push, http,
// demo.counter, demo.series and demo.clock. More kinds may be registered on it.
func NewBuiltins(o Options) (*Registry, error) {
	r := NewRegistry(o.Metrics)
	httpKind, err := NewHTTP(o.HTTP)
	if err != nil {
		return nil, err
	}
	for _, k := range []struct {
		name string
		kind Kind
	}{
		{"static", Static{}},
		{"push", Push{}},
		{"http", httpKind},
		{"demo.counter", NewCounter(0)},
		{"demo.series", Series{Now: o.Now}},
		{"demo.clock", Clock{Now: o.Now}},
	} {
		if err := r.Register(k.name, k.kind); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Static is the static kind: the data is source.data, served by widgetdata as is.
type Static struct{}

// Check implements Kind: source.data is required.
func (Static) Check(ctx context.Context, src dsync.Source) error {
	return dsync.BasicSources{}.CheckSource(ctx, src)
}

// Push is the push kind: data is written through the API and never fetched.
type Push struct{}

// Check implements Kind: every push source is acceptable.
func (Push) Check(context.Context, dsync.Source) error { return nil }
