package widgetdata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	dsync "github.com/dashsync/dashsync/sync"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// Cache keeps widget data by key. Implementations: store/memory (in-process) and, with
// Redis configured, store/redis; every one passes the suite in widgetdata/cachetest.
// Keys are built by Service and carry the owner. A method called with a done ctx
// returns its error and changes nothing; an implementation that can be closed fails
// every call after Close with an error. Any other error is the backend's; Service
// reports it as unavailable.
type Cache interface {
	// Get returns a copy of the value under key; ok is false (and err nil) when it is
	// absent or its TTL has passed.
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	// Set stores a copy of val under key for ttl, replacing any value and TTL it had.
	// A ttl ≤ 0 is an error and stores nothing.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Delete removes the keys; absent keys (or none) are not an error.
	Delete(ctx context.Context, keys ...string) error
}

// Fetcher produces data for widgets of one source kind.
type Fetcher interface {
	Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error)
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, w dsync.Widget) (json.RawMessage, error)

// Fetch implements Fetcher.
func (f FetcherFunc) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	return f(ctx, w)
}

// Options configure a Service. Zero values take the documented defaults.
type Options struct {
	// Fetchers maps a source kind to its fetcher. "push" is never fetched; "static" is
	// served from the source itself and needs no entry.
	Fetchers map[string]Fetcher
	// StaleFor is how long the last good copy outlives the data's TTL; default 24h.
	StaleFor time.Duration
	// Concurrency bounds parallel fetches of one batch; default 8.
	Concurrency int
	// FetchTimeout is the per-widget deadline of a fetch; default 5s.
	FetchTimeout time.Duration
	// Publisher is told of every new data (pushed or fetched) as a "data" event on
	// the widget's channel; nil: nobody.
	Publisher dsync.Publisher
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Metrics counts cache hits, misses and stale answers; nil: none.
	Metrics *Metrics
	// Locker makes a fetch one per cluster: the instance that takes a widget's short
	// lock fetches, the others wait for its result in the cache. nil: one fetch per
	// widget per process (singleflight) only.
	Locker Locker
	// LockWait is how often a waiter looks at the cache; default 25ms.
	LockWait time.Duration
	Logger   *slog.Logger
}

// Service answers widget data reads, pushes and clears.
type Service struct {
	cache Cache
	o     Options
	group singleflight.Group
}

// New returns a Service keeping data in cache.
func New(cache Cache, o Options) *Service {
	if o.StaleFor <= 0 {
		o.StaleFor = 24 * time.Hour
	}
	if o.LockWait <= 0 {
		o.LockWait = 25 * time.Millisecond
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{cache: cache, o: o}
}

// MaxBatch is the most widgets one batch may ask for.
const MaxBatch = 50

func key(w dsync.Widget) string     { return "data:" + w.Owner + ":" + w.ID }
func lastKey(w dsync.Widget) string { return "last:" + w.Owner + ":" + w.ID }

// Get returns w's data: cached and unexpired data without touching the source, else a
// fetch (one per widget at a time in this process). A failed fetch with a last good
// copy at hand answers that copy marked stale; without one it is source_failed. A push
// widget with nothing pushed yet answers nil, nil.
func (s *Service) Get(ctx context.Context, w dsync.Widget, refresh bool) (*dsync.WidgetData, error) {
	switch w.Source.Kind {
	case "static":
		d := s.static(w)
		return &d, nil
	case "push":
		d, err := s.cached(ctx, key(w))
		if err == nil {
			s.o.Metrics.read(d != nil)
		}
		return d, err
	}
	if !refresh {
		d, err := s.cached(ctx, key(w))
		if err != nil || d != nil {
			if err == nil {
				s.o.Metrics.read(true)
			}
			return d, err
		}
		s.o.Metrics.read(false)
	}
	// The fetch belongs to no one caller: it runs under its own deadline and a caller
	// that gives up (its deadline passed) falls back to the stale copy.
	ch := s.group.DoChan(key(w), func() (any, error) { return s.fetchOnce(context.WithoutCancel(ctx), w) })
	var err error
	select {
	case r := <-ch:
		if r.Err == nil {
			d := r.Val.(dsync.WidgetData)
			return &d, nil
		}
		err = r.Err
	case <-ctx.Done():
		err = &dsync.Error{Code: dsync.CodeSourceFailed, Message: "the widget's source did not answer in time", Err: ctx.Err()}
	}
	last, lerr := s.cached(context.WithoutCancel(ctx), lastKey(w))
	if lerr != nil || last == nil {
		return nil, err
	}
	last.Stale = true
	s.o.Metrics.servedStale()
	return last, nil
}

func (s *Service) static(w dsync.Widget) dsync.WidgetData {
	return dsync.WidgetData{WidgetID: w.ID, Data: w.Source.Data, FetchedAt: w.UpdatedAt,
		ExpiresAt: dsync.NewTime(w.UpdatedAt.Add(time.Duration(w.Source.TTLSeconds) * time.Second))}
}

func (s *Service) cached(ctx context.Context, k string) (*dsync.WidgetData, error) {
	b, ok, err := s.cache.Get(ctx, k)
	if err != nil {
		return nil, dsync.Unavailable(fmt.Errorf("read cache: %w", err))
	}
	if !ok {
		return nil, nil
	}
	var d dsync.WidgetData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode cached data %s: %w", k, err)
	}
	return &d, nil
}

// Locker is a cluster-wide try-lock with a time to live (a Redis SET NX PX).
type Locker interface {
	// Acquire takes key for ttl and reports whether this caller got it.
	Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Release gives key back early if this caller still holds it.
	Release(ctx context.Context, key string) error
}

// fetchOnce fetches unless another instance holds the widget's fetch lock, in which
// case it waits for that instance's result to appear in the cache (newer than the
// wait's start), fetching itself only if none arrives within the fetch timeout.
func (s *Service) fetchOnce(ctx context.Context, w dsync.Widget) (dsync.WidgetData, error) {
	if s.o.Locker == nil {
		return s.fetch(ctx, w)
	}
	start := dsync.NewTime(s.o.Now())
	lock := "lock:fetch:" + w.Owner + ":" + w.ID
	got, err := s.o.Locker.Acquire(ctx, lock, s.o.FetchTimeout)
	if err != nil {
		return s.fetch(ctx, w) // without a working lock service, fetch
	}
	if got {
		defer func() { _ = s.o.Locker.Release(context.WithoutCancel(ctx), lock) }()
		return s.fetch(ctx, w)
	}
	deadline := time.Now().Add(s.o.FetchTimeout)
	for time.Now().Before(deadline) {
		if d, err := s.cached(ctx, key(w)); err == nil && d != nil && !d.FetchedAt.Before(start.Time) {
			return *d, nil
		}
		time.Sleep(s.o.LockWait)
	}
	return s.fetch(ctx, w)
}

// fetch asks the source and caches the result and the last good copy.
func (s *Service) fetch(ctx context.Context, w dsync.Widget) (dsync.WidgetData, error) {
	f, ok := s.o.Fetchers[w.Source.Kind]
	if !ok {
		return dsync.WidgetData{}, dsync.Errorf(dsync.CodeSourceFailed, "source kind %q cannot be fetched", w.Source.Kind)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.FetchTimeout)
	defer cancel()
	raw, err := f.Fetch(ctx, w)
	if err != nil {
		s.o.Logger.Warn("source fetch failed", "widget", w.ID, "kind", w.Source.Kind, "err", err)
		var de *dsync.Error
		if errors.As(err, &de) && de.Code == dsync.CodeSourceFailed {
			return dsync.WidgetData{}, de
		}
		return dsync.WidgetData{}, &dsync.Error{Code: dsync.CodeSourceFailed, Message: "the widget's source failed", Err: err}
	}
	d, err := s.store(ctx, w, raw)
	// What a source answered is not the caller's input: data that cannot be kept is
	// the source's failure (and the last good copy stands in for it).
	switch dsync.ErrorCode(err) {
	case dsync.CodeTooLarge:
		return d, &dsync.Error{Code: dsync.CodeSourceFailed, Message: fmt.Sprintf("the widget's source answered more than %d bytes", dsync.MaxDataSize), Err: err}
	case dsync.CodeValidation:
		return d, &dsync.Error{Code: dsync.CodeSourceFailed, Message: "the widget's source did not answer one JSON value", Err: err}
	}
	return d, err
}

// store caches data for w under its TTL, and the last good copy for longer.
func (s *Service) store(ctx context.Context, w dsync.Widget, raw json.RawMessage) (dsync.WidgetData, error) {
	if len(raw) > dsync.MaxDataSize {
		return dsync.WidgetData{}, dsync.Errorf(dsync.CodeTooLarge, "widget data must be at most %d bytes", dsync.MaxDataSize)
	}
	c, err := dsync.Canonical(raw)
	if err != nil {
		return dsync.WidgetData{}, dsync.Invalid("data", "json", "", "data must be one JSON value")
	}
	now := s.o.Now()
	ttl := time.Duration(w.Source.TTLSeconds) * time.Second
	if ttl <= 0 {
		ttl = dsync.DefaultTTLSeconds * time.Second
	}
	d := dsync.WidgetData{WidgetID: w.ID, Data: c, FetchedAt: dsync.NewTime(now), ExpiresAt: dsync.NewTime(now.Add(ttl))}
	b, err := json.Marshal(d)
	if err != nil {
		return dsync.WidgetData{}, err
	}
	if err := s.cache.Set(ctx, key(w), b, ttl); err != nil {
		return dsync.WidgetData{}, dsync.Unavailable(fmt.Errorf("write cache: %w", err))
	}
	if err := s.cache.Set(ctx, lastKey(w), b, ttl+s.o.StaleFor); err != nil {
		return dsync.WidgetData{}, dsync.Unavailable(fmt.Errorf("write cache: %w", err))
	}
	if s.o.Publisher != nil {
		s.o.Publisher.Publish(ctx, dsync.Event{Owner: w.Owner, Channel: "widget:" + w.ID, Type: "data", Payload: d})
	}
	return d, nil
}

// Push writes data for a push widget.
func (s *Service) Push(ctx context.Context, w dsync.Widget, raw json.RawMessage) (dsync.WidgetData, error) {
	if w.Source.Kind != "push" {
		return dsync.WidgetData{}, dsync.Errorf(dsync.CodeBadRequest, "widget %s has a %s source: only push widgets take data", w.ID, w.Source.Kind)
	}
	return s.store(ctx, w, raw)
}

// Clear drops w's cached data and its last good copy.
func (s *Service) Clear(ctx context.Context, w dsync.Widget) error {
	if err := s.cache.Delete(ctx, key(w), lastKey(w)); err != nil {
		return dsync.Unavailable(fmt.Errorf("clear cache: %w", err))
	}
	return nil
}

// Result is one widget's outcome in a batch.
type Result struct {
	Data *dsync.WidgetData
	Err  error
}

// Batch reads the data of up to MaxBatch widgets in parallel, at most Concurrency at a
// time, each under its own deadline; results are in the order of ws.
func (s *Service) Batch(ctx context.Context, ws []dsync.Widget, refresh bool) []Result {
	out := make([]Result, len(ws))
	var g errgroup.Group
	g.SetLimit(s.o.Concurrency)
	for i, w := range ws {
		g.Go(func() error {
			wctx, cancel := context.WithTimeout(ctx, s.o.FetchTimeout)
			defer cancel()
			d, err := s.Get(wctx, w, refresh)
			out[i] = Result{Data: d, Err: err}
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through out
	return out
}
