package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/dashsync/dashsync/internal/wsclient"
)

// maxSamples bounds the latency samples kept (16 bytes each, so at most 80 MB):
// arrivals beyond it are counted but not timed.
const maxSamples = 5_000_000

// Phase timeouts.
const (
	dialTimeout  = 10 * time.Second
	closeTimeout = 5 * time.Second
	finalTimeout = 30 * time.Second
)

// runner is one run: its configuration, its connections and its live counters.
type runner struct {
	cfg    config
	stderr io.Writer
	rest   *restClient
	errs   *counters

	layouts []*layoutPlan
	books   []*ackBook // by layout index
	subs    []*subscriber

	// measureStart is when the warmup ends (unix ns); arrivals and edits before it
	// are checked but not measured. Read by every connection's read goroutine.
	measureStart atomic.Int64
	samples      atomic.Int64
	budget       atomic.Int64 // edits left, when MaxEdits > 0

	connected, dialFailed                 atomic.Int64
	sent, acked, rebased, conflicts       atomic.Int64
	skipped, stalls                       atomic.Int64
	deliveries, resets, presence, discons atomic.Int64
	ackLat                                *durations
	closing                               atomic.Bool
	phase                                 atomic.Pointer[string]
	watchers                              sync.WaitGroup
	rssMax                                atomic.Int64
	began                                 time.Time
}

func newRunner(cfg config, stderr io.Writer) *runner {
	r := &runner{cfg: cfg, stderr: stderr, errs: newCounters(), ackLat: &durations{}}
	r.rest = &restClient{base: cfg.URLs[0].Base, http: &http.Client{Timeout: 30 * time.Second}, errs: r.errs}
	r.measureStart.Store(time.Now().Add(24 * time.Hour).UnixNano()) // nothing is measured before editing starts
	r.budget.Store(cfg.MaxEdits)
	r.setPhase("setup")
	return r
}

func (r *runner) setPhase(p string) { r.phase.Store(&p) }

// takeBudget reserves one edit of --max-edits.
func (r *runner) takeBudget() bool {
	if r.cfg.MaxEdits == 0 {
		return true
	}
	return r.budget.Add(-1) >= 0
}

// timeline is when each phase began and ended.
type timeline struct {
	connectStart, connectEnd time.Time
	editStart, sendEnd       time.Time
	drainEnd                 time.Time
	drained                  bool
	interrupted              bool
	finals                   []int64 // by layout index
	// Samples before connecting, once connected, after the drain: the server's
	// (with --pid), the tool's own, and the 1-minute load average.
	proc, self []procSample
	load       []float64
}

// execute runs every phase and returns what the report is computed from. An error
// means there is nothing meaningful to report (setup failed, nothing connected).
func (r *runner) execute(ctx context.Context) (*timeline, error) {
	r.began = time.Now()
	tl := &timeline{}
	sample := func() {
		// The tool's own CPU and the machine's load, to judge how much the tool
		// competed with the server.
		self, err := readProc(os.Getpid())
		if err != nil {
			self = procSample{RSS: -1, CPU: -1}
		}
		tl.self = append(tl.self, self)
		tl.load = append(tl.load, loadAvg())
		if r.cfg.PID == 0 {
			return
		}
		s, err := readProc(r.cfg.PID)
		if err != nil {
			r.errs.add("proc")
			s = procSample{RSS: -1, CPU: -1}
		}
		r.noteRSS(s.RSS)
		tl.proc = append(tl.proc, s)
	}
	if r.cfg.PID != 0 {
		if _, err := readProc(r.cfg.PID); err != nil {
			return nil, err
		}
	}

	stopProgress := r.startProgress()
	defer stopProgress()

	ttl := r.cfg.Warmup + r.cfg.Duration + r.cfg.Drain + 30*time.Minute
	ls, err := plan(r.cfg, ttl)
	if err != nil {
		return nil, err
	}
	r.layouts = ls
	if err := setUp(ctx, r.rest, ls, runID()); err != nil {
		return nil, err
	}
	r.books = make([]*ackBook, len(ls))
	for i := range r.books {
		r.books[i] = &ackBook{byV: map[int64]ackRec{}}
	}

	// Connect and subscribe.
	r.setPhase("connect")
	sample()
	tl.connectStart = time.Now()
	r.connect(ctx)
	tl.connectEnd = time.Now()
	sample()
	if r.connected.Load() == 0 {
		r.closeAll()
		return nil, errors.New("no connection could be opened")
	}

	// Edit.
	r.setPhase("edit")
	tl.editStart = time.Now()
	r.measureStart.Store(tl.editStart.Add(r.cfg.Warmup).UnixNano())
	r.edit(ctx, tl.editStart, tl.editStart.Add(r.cfg.Warmup+r.cfg.Duration))
	tl.sendEnd = time.Now()
	tl.interrupted = ctx.Err() != nil

	// Drain: every subscriber should reach its layout's final version.
	r.setPhase("drain")
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
	tl.finals = r.finalVersions(fctx)
	cancel()
	tl.drained = r.drain(ctx, tl.finals)
	tl.drainEnd = time.Now()
	sample()

	r.setPhase("close")
	r.closeAll()
	return tl, nil
}

// runID names this run's widgets and layouts.
func runID() string { return uuid.NewString()[:8] }

func (r *runner) noteRSS(v int64) {
	for {
		old := r.rssMax.Load()
		if v <= old || r.rssMax.CompareAndSwap(old, v) {
			return
		}
	}
}

// connect opens every connection and subscribes it, --dialers at a time.
func (r *runner) connect(ctx context.Context) {
	r.subs = make([]*subscriber, r.cfg.Conns)
	var g errgroup.Group
	g.SetLimit(r.cfg.Dialers)
	for i := range r.cfg.Conns {
		l := r.layouts[i%r.cfg.Layouts]
		// Connection k of layout l goes to URL (l+k) mod n: the URLs take turns, and
		// every layout with enough connections has subscribers on each of them.
		url := (i%r.cfg.Layouts + i/r.cfg.Layouts) % len(r.cfg.URLs)
		s := &subscriber{idx: i, layout: l, run: r, auditor: i < r.cfg.Layouts, url: url}
		if s.auditor {
			s.authors = map[int64]string{}
		}
		if i < r.cfg.Editors {
			s.ownWidget = l.Own[i/r.cfg.Layouts]
			s.notify = make(chan struct{}, 1)
		}
		r.subs[i] = s
		g.Go(func() error {
			if ctx.Err() != nil {
				return nil
			}
			if err := r.open(ctx, s, r.cfg.URLs[s.url]); err != nil {
				r.dialFailed.Add(1)
				return nil
			}
			r.connected.Add(1)
			return nil
		})
	}
	_ = g.Wait()
}

// open dials (retrying a rate-limited upgrade) and subscribes.
func (r *runner) open(ctx context.Context, s *subscriber, t target) error {
	var c *wsclient.Client
	for attempt := 0; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		began := time.Now()
		var resp *http.Response
		var err error
		c, resp, err = wsclient.Dial(dctx, t.WS, wsclient.Options{Token: s.layout.ConnToken, OnMessage: s.onMessage})
		cancel()
		if err == nil {
			s.dialTime = time.Since(began)
			break
		}
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests && attempt < 10 {
			r.errs.add("rate_limited")
			wait := time.Second
			if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec >= 0 {
				wait = time.Duration(sec)*time.Second + 50*time.Millisecond
			}
			if sleepCtx(ctx, wait) != nil {
				return ctx.Err()
			}
			continue
		}
		switch {
		case resp != nil:
			r.errs.add("dial_http_" + strconv.Itoa(resp.StatusCode))
		case ctx.Err() != nil:
			r.errs.add("interrupted")
		default:
			r.errs.add("dial")
		}
		return err
	}
	s.client = c
	r.watchers.Add(1)
	go func() {
		defer r.watchers.Done()
		<-c.Done()
		if r.closing.Load() {
			return
		}
		r.discons.Add(1)
		if code := int(c.CloseStatus()); code >= 0 {
			r.errs.add(closeKind(code))
		} else {
			r.errs.add("disconnected")
		}
	}()
	for attempt := 0; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, requestTimeout)
		began := time.Now()
		m, err := c.Request(sctx, map[string]any{"type": "subscribe", "channel": "layout:" + s.layout.ID})
		cancel()
		if err != nil {
			r.errs.add("subscribe")
			return err
		}
		switch m.Type {
		case "subscribed":
			s.subTime = time.Since(began)
			s.onSubscribed(m)
			return nil
		case "error":
			code := "error"
			if m.Error != nil {
				code = m.Error.Code
			}
			r.errs.add(code)
			if code == "rate_limited" && attempt < 10 {
				if sleepCtx(ctx, maxRetryAfter) != nil {
					return ctx.Err()
				}
				continue
			}
			return fmt.Errorf("subscribe: %s", code)
		default:
			r.errs.add("unexpected_reply_" + m.Type)
			return fmt.Errorf("subscribe: unexpected %q", m.Type)
		}
	}
}

// edit runs the editors from start to end: editor j of E sends every E/rate
// seconds, offset by j/rate so the edits are spread evenly.
func (r *runner) edit(ctx context.Context, start, end time.Time) {
	e := r.cfg.Editors
	if e == 0 {
		_ = sleepUntil(ctx, end)
		return
	}
	interval := time.Duration(float64(time.Second) * float64(e) / r.cfg.Rate)
	var wg sync.WaitGroup
	for j := range e {
		s := r.subs[j]
		if s.client == nil {
			continue
		}
		ed := &editor{sub: s, book: r.books[s.layout.Index],
			rng: rand.New(rand.NewPCG(r.cfg.Seed, uint64(j)))}
		offset := time.Duration(int64(interval) * int64(j) / int64(e))
		wg.Go(func() { ed.loop(ctx, start, end, offset, interval) })
	}
	wg.Wait()
}

// finalVersions reads each layout's version once sending has stopped; a layout that
// cannot be read falls back to the highest version any subscriber received.
func (r *runner) finalVersions(ctx context.Context) []int64 {
	finals := make([]int64, len(r.layouts))
	var g errgroup.Group
	g.SetLimit(8)
	for i, l := range r.layouts {
		g.Go(func() error {
			v, err := finalVersion(ctx, r.rest, l)
			if err != nil {
				r.errs.add("final_version")
				for _, s := range r.subs {
					if s.layout == l {
						s.mu.Lock()
						v = max(v, s.last)
						s.mu.Unlock()
					}
				}
			}
			finals[i] = v
			return nil
		})
	}
	_ = g.Wait()
	return finals
}

// drain waits up to --drain for every open subscriber to reach its final version.
func (r *runner) drain(ctx context.Context, finals []int64) bool {
	deadline := time.Now().Add(r.cfg.Drain)
	for {
		done := true
		for _, s := range r.subs {
			if s.client == nil {
				continue
			}
			select {
			case <-s.client.Done():
				continue // disconnected: reported, not waited for
			default:
			}
			if !s.reached(finals[s.layout.Index]) {
				done = false
				break
			}
		}
		if done {
			return true
		}
		if time.Now().After(deadline) || sleepCtx(ctx, 20*time.Millisecond) != nil {
			return false
		}
	}
}

// closeAll closes every connection normally and waits for their watchers.
func (r *runner) closeAll() {
	r.closing.Store(true)
	var g errgroup.Group
	g.SetLimit(64)
	for _, s := range r.subs {
		if s == nil || s.client == nil {
			continue
		}
		g.Go(func() error {
			done := make(chan struct{})
			go func() { _ = s.client.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(closeTimeout):
				s.client.CloseNow()
				<-done
			}
			return nil
		})
	}
	_ = g.Wait()
	r.watchers.Wait()
}

// startProgress prints a progress line every --progress until the returned stop.
func (r *runner) startProgress() (stop func()) {
	if r.cfg.Progress <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.Progress)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				r.printProgress()
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

func (r *runner) printProgress() {
	rss := ""
	if r.cfg.PID != 0 {
		if s, err := readProc(r.cfg.PID); err == nil {
			r.noteRSS(s.RSS)
			rss = fmt.Sprintf("  server rss %s cpu %.1fs", mib(s.RSS), s.CPU)
		}
	}
	fmt.Fprintf(r.stderr, "[%6.1fs] %-7s conns %d/%d  edits sent %d acked %d conflicts %d  deliveries %d  errors %d%s\n",
		time.Since(r.began).Seconds(), *r.phase.Load(), r.connected.Load(), r.cfg.Conns,
		r.sent.Load(), r.acked.Load(), r.conflicts.Load(), r.deliveries.Load(), r.errs.total.Load(), rss)
}

// durations collects samples, up to maxSamples.
type durations struct {
	mu      sync.Mutex
	d       []time.Duration
	dropped int64
}

func (d *durations) add(x time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.d) >= maxSamples {
		d.dropped++
		return
	}
	d.d = append(d.d, x)
}
