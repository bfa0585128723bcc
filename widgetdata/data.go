package widgetdata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"time"

	"github.com/dashsync/dashsync/ratelimit"
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
	// StaleFor is how long fetched data is kept past its TTL, to be served marked stale
	// when a fetch fails; default 24h.
	StaleFor time.Duration
	// Concurrency bounds parallel fetches of one batch; default 8.
	Concurrency int
	// FetchTimeout is the per-widget deadline of a fetch; default 5s. A source that has
	// not answered by then is left to finish on its own, and the widget's fetches fail
	// at once until it has.
	FetchTimeout time.Duration
	// Announcer is told of every new data (pushed or fetched); nil: nobody.
	Announcer Announcer
	// Widgets reads the widget definitions the live refresher follows (a
	// *dsync.Service). Required by Follow.
	Widgets Widgets
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Metrics counts cache hits, misses and stale answers; nil: none.
	Metrics *Metrics
	// Leases make a fetch one per cluster: the instance that takes a widget's short
	// lock fetches, the others wait for its result in the cache. nil: one fetch per
	// widget per process (singleflight) only.
	Leases Leases
	// LockWait is how often a waiter looks at the cache; default 25ms.
	LockWait time.Duration
	Logger   *slog.Logger
	// FetchLimiter keeps each widget owner's fetch budget (SPEC §12, key
	// ratelimit.FetchKey): every call of a source spends one token, live refreshes
	// included. Over budget, a read answers the cached (or stale) data, or rate_limited
	// without any. nil: fetches are not limited. When it fails, the fetch goes ahead
	// (fail open) and the failure is logged.
	FetchLimiter ratelimit.Limiter
	// FetchRate is the per-user fetch budget FetchLimiter keeps; zero: unlimited.
	FetchRate ratelimit.Limit
}

// Service answers widget data reads, pushes and clears.
type Service struct {
	cache Cache
	o     Options
	group singleflight.Group

	refresh refreshers

	mu sync.Mutex
	// calling holds the widgets (by cache key) whose source is being called. A call
	// outlives its fetch only when the source ignores its deadline; then the widget's
	// next fetches fail at once instead of each leaving one more call behind.
	calling map[string]struct{}
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
	s := &Service{cache: cache, o: o, calling: map[string]struct{}{}}
	s.refresh.init()
	return s
}

// MaxBatch is the most widgets one batch may ask for.
const MaxBatch = 50

// MinFetchInterval is how fresh a widget's last fetch must be for a forced refresh to
// be answered with it instead of a new fetch (SPEC §12).
const MinFetchInterval = time.Second

// RefreshPeriod is how often src is fetched while anyone is subscribed: its
// refreshSeconds within SPEC §12's bounds (1 s to dsync.MaxRefreshSeconds; below 1,
// which validation never lets through, the default). Widgets stored before the
// bounds were checked may hold anything, so every use goes through here.
func RefreshPeriod(src dsync.Source) time.Duration {
	return clampSeconds(src.RefreshSeconds, dsync.DefaultRefreshSeconds, dsync.MaxRefreshSeconds)
}

// TTL is how long src's data is served before a read must fetch again: its ttlSeconds
// within SPEC §12's bounds (1 s to dsync.MaxTTLSeconds; below 1, the default).
func TTL(src dsync.Source) time.Duration {
	return clampSeconds(src.TTLSeconds, dsync.DefaultTTLSeconds, dsync.MaxTTLSeconds)
}

func clampSeconds(n, def, most int) time.Duration {
	switch {
	case n < 1:
		n = def
	case n > most:
		n = most
	}
	return time.Duration(n) * time.Second
}

// key is where w's data is cached. The one copy serves both as the data, while it is
// unexpired, and as the stale copy after: the data is never kept twice.
func key(w dsync.Widget) string { return "widget:" + w.Owner + ":" + w.ID }

// Get returns w's data: cached and unexpired data without touching the source, else a
// fetch (one per widget at a time in this process). With refresh, the source is asked
// even when the cached data is unexpired, unless its last fetch is less than
// MinFetchInterval old: then that fetch is the answer. A failed fetch with older data
// at hand answers that data marked stale; without any it is source_failed. A fetch
// over the owner's budget answers the cached data as it is (marked stale when it has
// expired), or rate_limited without any. A push widget with nothing pushed yet answers
// nil, nil.
func (s *Service) Get(ctx context.Context, w dsync.Widget, refresh bool) (*dsync.WidgetData, error) {
	switch w.Source.Kind {
	case "static":
		d := s.static(w)
		return &d, nil
	case "push":
		d, err := s.cached(ctx, w)
		if err == nil {
			s.o.Metrics.read(d != nil)
		}
		return d, err
	}
	d, err := s.cached(ctx, w)
	if err != nil {
		return nil, err
	}
	now := s.o.Now()
	switch {
	case refresh:
		// The time of the last fetch comes from the cache, so that with a shared cache
		// the rule holds across instances.
		if d != nil && recent(d.FetchedAt.Time, now) {
			return d, nil
		}
	case d != nil && now.Before(d.ExpiresAt.Time):
		s.o.Metrics.read(true)
		return d, nil
	default:
		s.o.Metrics.read(false)
	}
	// The fetch belongs to no one caller: it runs under its own deadline and a caller
	// that gives up (its deadline passed) falls back to the stale copy. A panic in it
	// is turned into an error here: singleflight would re-raise it where no one can
	// recover it.
	ch := s.group.DoChan(key(w), func() (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = s.panicked(w, "widget data fetch panicked", p)
			}
		}()
		return s.fetchOnce(context.WithoutCancel(ctx), w)
	})
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
	if d == nil {
		return nil, err
	}
	if dsync.ErrorCode(err) == dsync.CodeRateLimited && now.Before(d.ExpiresAt.Time) {
		return d, nil // not fetched, and what is cached is still good
	}
	d.Stale = true
	s.o.Metrics.servedStale()
	return d, nil
}

// recent reports whether a fetch at t is less than MinFetchInterval before now. A t
// further ahead than that is another clock's error, not a fetch to stand on.
func recent(t, now time.Time) bool {
	age := now.Sub(t)
	return age < MinFetchInterval && age > -MinFetchInterval
}

func (s *Service) static(w dsync.Widget) dsync.WidgetData {
	return dsync.WidgetData{WidgetID: w.ID, Data: w.Source.Data, FetchedAt: w.UpdatedAt,
		ExpiresAt: dsync.NewTime(w.UpdatedAt.Add(TTL(w.Source)))}
}

func (s *Service) cached(ctx context.Context, w dsync.Widget) (*dsync.WidgetData, error) {
	k := key(w)
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

// Leases are cluster-wide try-locks with a time to live. Implementations: store/redis
// (SET NX PX) and store/memory (one process's); every one passes the suite in
// widgetdata/leasetest.
//
// A lease is held by an instance, not by a call: store/redis instances are told apart
// by the id they are made with, and one store/memory Leases is one instance, so a key
// any of its callers took is held by all of them and any caller's Release frees it.
// Callers within one instance that must exclude each other do so themselves (Service:
// singleflight). A lease is held from the Acquire that took it until its ttl passes or
// its instance releases it, whichever is first; a holder is not told when its ttl has
// passed, so work under a lease must fit its ttl or bear a second holder.
//
// A call made with a done ctx returns the ctx's error and changes nothing. Any other
// error is the backend's: a failed Acquire may or may not have taken key (the reply
// was lost), a failed Release may have left it held until its ttl. Callers treat an
// error as "no lease service" and go on without the lease (fetchOnce fetches; the
// live refresher refreshes).
type Leases interface {
	// Acquire takes key for ttl unless an instance holds it, and reports whether it
	// did. A held key is refused (false, nil) whoever holds it, this instance included,
	// and its ttl is left as it was: Acquire never renews a lease. A ttl ≤ 0 is an
	// error and takes nothing.
	Acquire(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Release frees key at once, for any instance to take, if this instance holds it.
	// A key it does not hold (never taken, released, expired, or taken since by another
	// instance) is left as it is, and that is not an error.
	Release(ctx context.Context, key string) error
}

// fetchOnce fetches unless another instance holds the widget's fetch lock, in which
// case it waits for that instance's result to appear in the cache (newer than the
// wait's start). It fetches itself when the lock comes free with no result (that
// fetch failed, or was over budget), or when none arrives within the fetch timeout.
//
// A read that found the cache empty or expired may reach here just after another
// flight of this process (or another instance) stored a result: a result less than
// MinFetchInterval old in the cache is the answer then, not a second fetch.
func (s *Service) fetchOnce(ctx context.Context, w dsync.Widget) (dsync.WidgetData, error) {
	if d, err := s.cached(ctx, w); err == nil && d != nil && recent(d.FetchedAt.Time, s.o.Now()) {
		return *d, nil
	}
	if s.o.Leases == nil {
		return s.fetch(ctx, w)
	}
	start := dsync.NewTime(s.o.Now())
	lock := "lock:fetch:" + w.Owner + ":" + w.ID
	got, err := s.o.Leases.Acquire(ctx, lock, s.o.FetchTimeout)
	if err != nil {
		return s.fetch(ctx, w) // without a working lock service, fetch
	}
	if got {
		defer func() { _ = s.o.Leases.Release(context.WithoutCancel(ctx), lock) }()
		return s.fetch(ctx, w)
	}
	fresh := func() (dsync.WidgetData, bool) {
		d, err := s.cached(ctx, w)
		if err == nil && d != nil && !d.FetchedAt.Before(start.Time) {
			return *d, true
		}
		return dsync.WidgetData{}, false
	}
	deadline := time.Now().Add(s.o.FetchTimeout)
	for time.Now().Before(deadline) {
		if d, ok := fresh(); ok {
			return d, nil
		}
		time.Sleep(s.o.LockWait)
		if got, err := s.o.Leases.Acquire(ctx, lock, s.o.FetchTimeout); err == nil && got {
			defer func() { _ = s.o.Leases.Release(context.WithoutCancel(ctx), lock) }()
			// The holder stores its result before it lets go of the lock.
			if d, ok := fresh(); ok {
				return d, nil
			}
			return s.fetch(ctx, w)
		}
	}
	return s.fetch(ctx, w)
}

// fetch spends one of the owner's fetch budget, asks the source and caches the
// result.
func (s *Service) fetch(ctx context.Context, w dsync.Widget) (dsync.WidgetData, error) {
	f, ok := s.o.Fetchers[w.Source.Kind]
	if !ok {
		return dsync.WidgetData{}, dsync.Errorf(dsync.CodeSourceFailed, "source kind %q cannot be fetched", w.Source.Kind)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.FetchTimeout)
	defer cancel()
	if err := s.spend(ctx, w); err != nil {
		return dsync.WidgetData{}, err
	}
	raw, err := s.call(ctx, f, w)
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

// spend takes one token of w's owner's fetch budget: nil when the fetch may go on, a
// rate_limited error carrying retryAfterMs when the budget is spent. A limiter that
// fails lets the fetch go on (fail open), as the REST limiter does.
func (s *Service) spend(ctx context.Context, w dsync.Widget) error {
	lim := s.o.FetchRate
	if s.o.FetchLimiter == nil || lim.Unlimited() {
		return nil
	}
	res, err := s.o.FetchLimiter.Allow(ctx, ratelimit.FetchKey(w.Owner), lim)
	if err != nil {
		s.o.Logger.Warn("fetch rate limiter failed; fetching", "widget", w.ID, "user", w.Owner, "err", err)
		return nil
	}
	if res.Allowed {
		return nil
	}
	e := dsync.Errorf(dsync.CodeRateLimited, "too many widget fetches: at most %g a second (bursts of %d)", lim.Rate, lim.MinBurst())
	e.RetryAfterMs = res.RetryAfterMs()
	return e
}

// call asks f for w's data within ctx's deadline. A source that panics fails the
// fetch; one that has not answered by the deadline fails it too, and is left to finish
// on a goroutine of its own. Until it has, the widget's next fetches fail at once, so
// a source that ignores its deadline holds one goroutine, not one per fetch.
func (s *Service) call(ctx context.Context, f Fetcher, w dsync.Widget) (json.RawMessage, error) {
	k := key(w)
	s.mu.Lock()
	_, busy := s.calling[k]
	if !busy {
		s.calling[k] = struct{}{}
	}
	s.mu.Unlock()
	if busy {
		return nil, dsync.Errorf(dsync.CodeSourceFailed, "the widget's source has not finished its previous fetch")
	}
	type result struct {
		raw json.RawMessage
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: s.panicked(w, "widget source panicked", p)}
			}
			s.mu.Lock()
			delete(s.calling, k)
			s.mu.Unlock()
			done <- r
		}()
		r.raw, r.err = f.Fetch(ctx, w)
	}()
	select {
	case r := <-done:
		return r.raw, r.err
	case <-ctx.Done():
		return nil, &dsync.Error{Code: dsync.CodeSourceFailed, Message: fmt.Sprintf("the widget's source did not answer within %s", s.o.FetchTimeout), Err: ctx.Err()}
	}
}

// panicked logs a panic met while fetching w's data, with its stack, and returns the
// source_failed error that stands for it.
func (s *Service) panicked(w dsync.Widget, what string, p any) error {
	s.o.Logger.Error(what, "widget", w.ID, "user", w.Owner, "kind", w.Source.Kind, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return &dsync.Error{Code: dsync.CodeSourceFailed, Message: "the widget's source failed", Err: fmt.Errorf("panic: %v", p)}
}

// store caches data for w. Fetched data is kept StaleFor past its TTL, to stand in
// for a failed fetch; pushed data only for its TTL.
func (s *Service) store(ctx context.Context, w dsync.Widget, raw json.RawMessage) (dsync.WidgetData, error) {
	if len(raw) > dsync.MaxDataSize {
		return dsync.WidgetData{}, dsync.Errorf(dsync.CodeTooLarge, "widget data must be at most %d bytes", dsync.MaxDataSize)
	}
	c, err := dsync.Canonical(raw)
	if err != nil {
		return dsync.WidgetData{}, dsync.Invalid("data", "json", "", "data must be one JSON value")
	}
	now := s.o.Now()
	ttl := TTL(w.Source)
	d := dsync.WidgetData{WidgetID: w.ID, Data: c, FetchedAt: dsync.NewTime(now), ExpiresAt: dsync.NewTime(now.Add(ttl))}
	b, err := encode(d)
	if err != nil {
		return dsync.WidgetData{}, err
	}
	keep := ttl
	if w.Source.Kind != "push" {
		keep = addSaturating(ttl, s.o.StaleFor)
	}
	if err := s.cache.Set(ctx, key(w), b, keep); err != nil {
		return dsync.WidgetData{}, dsync.Unavailable(fmt.Errorf("write cache: %w", err))
	}
	if s.o.Announcer != nil {
		s.o.Announcer.AnnounceData(ctx, DataChanged{Owner: w.Owner, WidgetID: w.ID, Data: d})
	}
	return d, nil
}

// encode is json.Marshal without HTML escaping: data full of '<' would otherwise take
// up to six times its size in the cache.
func encode(d dsync.WidgetData) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func addSaturating(a, b time.Duration) time.Duration {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// Push writes data for a push widget.
func (s *Service) Push(ctx context.Context, w dsync.Widget, raw json.RawMessage) (dsync.WidgetData, error) {
	if w.Source.Kind != "push" {
		return dsync.WidgetData{}, dsync.Errorf(dsync.CodeBadRequest, "widget %s has a %s source: only push widgets take data", w.ID, w.Source.Kind)
	}
	return s.store(ctx, w, raw)
}

// Clear drops w's cached data, stale copy included.
func (s *Service) Clear(ctx context.Context, w dsync.Widget) error {
	if err := s.cache.Delete(ctx, key(w)); err != nil {
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
