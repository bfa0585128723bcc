package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the result of a run. The JSON field names are stable: scripts and
// BENCHMARKS.md read them. Times are in seconds (_s) or milliseconds (_ms).
type report struct {
	Config      reportConfig     `json:"config"`
	Connect     connectReport    `json:"connect"`
	Edits       editReport       `json:"edits"`
	Latency     percentiles      `json:"latency_ms"`     // edit sent → op received, per delivery
	AckLatency  percentiles      `json:"ack_latency_ms"` // edit sent → ack received
	Deliveries  deliveryReport   `json:"deliveries"`
	Ordering    orderingReport   `json:"ordering"`
	Errors      map[string]int64 `json:"errors"`
	ErrorsTotal int64            `json:"errors_total"`
	Server      *serverReport    `json:"server"` // null without --pid
	Client      clientReport     `json:"client"` // the machine the tool ran on, and the tool itself
	Interrupted bool             `json:"interrupted"`
}

type reportConfig struct {
	URLs      []string `json:"urls"`
	Conns     int      `json:"conns"`
	Layouts   int      `json:"layouts"`
	Users     int      `json:"users"`
	Editors   int      `json:"editors"`
	Rate      float64  `json:"rate"`
	Overlap   float64  `json:"overlap"`
	Pace      string   `json:"pace"`
	DurationS float64  `json:"duration_s"`
	WarmupS   float64  `json:"warmup_s"`
	DrainS    float64  `json:"drain_s"`
	MaxEdits  int64    `json:"max_edits"`
	Seed      uint64   `json:"seed"`
	// LayoutsEdited is how many layouts have an editor (min(editors, layouts)), and
	// MaxEditorsPerLayout how many the busiest has: overlapping edits can only
	// conflict with two or more.
	LayoutsEdited       int `json:"layouts_edited"`
	MaxEditorsPerLayout int `json:"max_editors_per_layout"`
}

type connectReport struct {
	OK          int64       `json:"ok"`
	Failed      int64       `json:"failed"`
	WallS       float64     `json:"wall_s"`       // the whole connect phase
	Dial        percentiles `json:"dial_ms"`      // upgrade → hello, per connection
	Subscribe   percentiles `json:"subscribe_ms"` // subscribe → subscribed
	Disconnects int64       `json:"disconnects"`  // connections the server closed during the run
	ByURL       []urlCount  `json:"by_url"`       // connections opened per URL
}

type urlCount struct {
	URL string `json:"url"`
	OK  int64  `json:"ok"`
}

type editReport struct {
	TargetRate     float64 `json:"target_rate"`
	Sent           int64   `json:"sent"`
	RatePerS       float64 `json:"rate_per_s"` // sent / sending time (warmup included)
	Acked          int64   `json:"acked"`
	Rebased        int64   `json:"rebased"`
	Conflicts      int64   `json:"conflicts"`
	Committed      int64   `json:"committed"`       // versions the layouts gained
	UnackedCommits int64   `json:"unacked_commits"` // committed versions no ack named
	AckDuplicates  int64   `json:"ack_duplicates"`  // a version acknowledged twice
	AckMismatches  int64   `json:"ack_mismatches"`  // op author ≠ the connection its ack went to
	SkippedSlots   int64   `json:"skipped_slots"`   // schedule slots missed (editor slower than its rate)
	Stalls         int64   `json:"stalls"`          // editor view did not catch up within 1 s
}

type deliveryReport struct {
	Total      int64   `json:"total"`      // op messages received by subscribers
	Expected   int64   `json:"expected"`   // Σ over subscribers of (final − subscribed) versions
	Measured   int64   `json:"measured"`   // received after the warmup
	PerS       float64 `json:"per_s"`      // measured / window
	WindowS    float64 `json:"window_s"`   // warmup end → last sent or received, whichever is later
	Unresolved int64   `json:"unresolved"` // op messages whose version no ack named (no latency)
	Presence   int64   `json:"presence"`   // presence messages, not counted in total
	DrainS     float64 `json:"drain_s"`    // sending stopped → every subscriber at its final version
	Drained    bool    `json:"drained"`
}

type orderingReport struct {
	Subscribers        int   `json:"subscribers"`
	Missing            int64 `json:"missing"`
	Duplicates         int64 `json:"duplicates"`
	OutOfOrder         int64 `json:"out_of_order"`
	Resets             int64 `json:"resets"`
	Behind             int   `json:"behind"` // subscribers short of their layout's final version
	SubscribersMissing int   `json:"subscribers_missing"`
}

type serverReport struct {
	PID               int     `json:"pid"`
	RSSStartBytes     int64   `json:"rss_start_bytes"`     // before connecting
	RSSConnectedBytes int64   `json:"rss_connected_bytes"` // every connection open
	RSSEndBytes       int64   `json:"rss_end_bytes"`       // after the drain
	RSSMaxBytes       int64   `json:"rss_max_bytes"`       // highest sampled
	CPUConnectS       float64 `json:"cpu_connect_s"`       // during the connect phase
	CPUEditS          float64 `json:"cpu_edit_s"`          // from the first edit to the end of the drain
	CPUPerDeliveryUs  float64 `json:"cpu_us_per_delivery"` // cpu_edit_s / deliveries.total
}

// clientReport says how busy the tool's machine was: on one machine the tool and
// the server compete for the same cores. -1: unknown.
type clientReport struct {
	CPUs       int     `json:"cpus"`
	Load1Start float64 `json:"load1_start"` // 1-minute load average before connecting
	Load1End   float64 `json:"load1_end"`   // after the drain
	CPUEditS   float64 `json:"cpu_edit_s"`  // the tool's own CPU seconds, first edit → end of drain
}

// percentiles summarises samples, in milliseconds.
type percentiles struct {
	Samples int64   `json:"samples"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
}

// summarise sorts d and reads exact (nearest-rank) percentiles.
func summarise(d []time.Duration) percentiles {
	if len(d) == 0 {
		return percentiles{}
	}
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return math.Round(float64(x)/1e3) / 1e3 }
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p/100*float64(len(d)))) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return percentiles{Samples: int64(len(d)), P50: ms(rank(50)), P90: ms(rank(90)), P99: ms(rank(99)),
		Max: ms(d[len(d)-1]), Mean: ms(sum / time.Duration(len(d)))}
}

// buildReport computes the results once every connection is closed.
func (r *runner) buildReport(tl *timeline) *report {
	c := r.cfg
	rep := &report{Config: reportConfig{Conns: c.Conns, Layouts: c.Layouts, Users: c.Users, Editors: c.Editors,
		Rate: c.Rate, Overlap: c.Overlap, Pace: c.Pace, DurationS: c.Duration.Seconds(), WarmupS: c.Warmup.Seconds(),
		DrainS: c.Drain.Seconds(), MaxEdits: c.MaxEdits, Seed: c.Seed}}
	for _, t := range c.URLs {
		rep.Config.URLs = append(rep.Config.URLs, t.Base)
	}
	for _, l := range r.layouts {
		if l.Editors > 0 {
			rep.Config.LayoutsEdited++
		}
		rep.Config.MaxEditorsPerLayout = max(rep.Config.MaxEditorsPerLayout, l.Editors)
	}
	rep.Interrupted = tl.interrupted

	// Connect.
	var dials, subs []time.Duration
	byURL := make([]urlCount, len(c.URLs))
	for i, t := range c.URLs {
		byURL[i].URL = t.Base
	}
	for _, s := range r.subs {
		if s.client != nil && s.subTime > 0 {
			dials, subs = append(dials, s.dialTime), append(subs, s.subTime)
			byURL[s.url].OK++
		}
	}
	rep.Connect = connectReport{OK: r.connected.Load(), Failed: r.dialFailed.Load(),
		WallS: secs(tl.connectEnd.Sub(tl.connectStart)), Dial: summarise(dials), Subscribe: summarise(subs),
		Disconnects: r.discons.Load(), ByURL: byURL}

	// Edits: each ack names the version its edit made.
	measureStart := r.measureStart.Load()
	e := editReport{TargetRate: c.Rate, Sent: r.sent.Load(), Acked: r.acked.Load(), Rebased: r.rebased.Load(),
		Conflicts: r.conflicts.Load(), SkippedSlots: r.skipped.Load(), Stalls: r.stalls.Load()}
	if c.Editors == 0 {
		e.TargetRate = 0
	}
	if d := tl.sendEnd.Sub(tl.editStart); d > 0 {
		e.RatePerS = round2(float64(e.Sent) / d.Seconds())
	}
	for i, l := range r.layouts {
		final := tl.finals[i]
		e.Committed += final - l.Initial
		b := r.books[i]
		e.AckDuplicates += b.dups
		for v := l.Initial + 1; v <= final; v++ {
			if _, ok := b.byV[v]; !ok {
				e.UnackedCommits++
			}
		}
	}

	// Deliveries, latency and ordering, per subscriber.
	var lat []time.Duration
	d := deliveryReport{Drained: tl.drained, DrainS: secs(tl.drainEnd.Sub(tl.sendEnd)), Presence: r.presence.Load()}
	o := orderingReport{}
	lastAt := tl.sendEnd.UnixNano()
	for _, s := range r.subs {
		if s.client == nil || !s.subscribed {
			continue
		}
		final := tl.finals[s.layout.Index]
		b := r.books[s.layout.Index]
		o.Subscribers++
		d.Total += s.ops
		d.Measured += s.measured
		d.Expected += final - s.start
		lastAt = max(lastAt, s.lastAt)
		missing := s.missing(final)
		o.Missing += missing
		o.Duplicates += s.dups
		o.OutOfOrder += s.outOfOrder
		o.Resets += s.resets
		if missing > 0 {
			o.SubscribersMissing++
		}
		if s.last < final {
			o.Behind++
		}
		for _, a := range s.arrivals {
			rec, ok := b.byV[a.version]
			if !ok {
				d.Unresolved++
				continue
			}
			if !rec.warm {
				lat = append(lat, time.Duration(a.at-rec.sent))
			}
		}
		if s.auditor {
			for v, client := range s.authors {
				if rec, ok := b.byV[v]; ok && rec.client != client {
					e.AckMismatches++
				}
			}
		}
	}
	if w := lastAt - measureStart; w > 0 && d.Measured > 0 {
		d.WindowS = secs(time.Duration(w))
		d.PerS = round2(float64(d.Measured) / time.Duration(w).Seconds())
	}
	rep.Edits, rep.Deliveries, rep.Ordering = e, d, o
	rep.Latency = summarise(lat)
	rep.AckLatency = summarise(r.ackLat.d)

	rep.Errors = r.errs.snapshot()
	for _, n := range rep.Errors {
		rep.ErrorsTotal += n
	}

	rep.Client = clientReport{CPUs: runtime.NumCPU(), Load1Start: -1, Load1End: -1, CPUEditS: -1}
	if len(tl.load) == 3 {
		rep.Client.Load1Start, rep.Client.Load1End = tl.load[0], tl.load[2]
	}
	if len(tl.self) == 3 && tl.self[1].CPU >= 0 && tl.self[2].CPU >= 0 {
		rep.Client.CPUEditS = round3(tl.self[2].CPU - tl.self[1].CPU)
	}
	if c.PID != 0 && len(tl.proc) == 3 && tl.proc[0].RSS >= 0 && tl.proc[1].RSS >= 0 && tl.proc[2].RSS >= 0 {
		p := tl.proc // before connect, after connect, after drain
		sr := &serverReport{PID: c.PID, RSSStartBytes: p[0].RSS, RSSConnectedBytes: p[1].RSS, RSSEndBytes: p[2].RSS,
			RSSMaxBytes: r.rssMax.Load(), CPUConnectS: round3(p[1].CPU - p[0].CPU), CPUEditS: round3(p[2].CPU - p[1].CPU)}
		if d.Total > 0 {
			sr.CPUPerDeliveryUs = round2(sr.CPUEditS / float64(d.Total) * 1e6)
		}
		rep.Server = sr
	}
	return rep
}

func secs(d time.Duration) float64 { return round3(d.Seconds()) }
func round2(x float64) float64     { return math.Round(x*100) / 100 }
func round3(x float64) float64     { return math.Round(x*1000) / 1000 }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// failed says what the delivery check found wrong, or "" when every subscriber got
// every committed version exactly once, in order.
func (rep *report) failed() string {
	o := rep.Ordering
	var p []string
	if o.Missing > 0 {
		p = append(p, fmt.Sprintf("%d missing versions", o.Missing))
	}
	if o.Duplicates > 0 {
		p = append(p, fmt.Sprintf("%d duplicates", o.Duplicates))
	}
	if o.OutOfOrder > 0 {
		p = append(p, fmt.Sprintf("%d out of order", o.OutOfOrder))
	}
	if o.Behind > 0 {
		p = append(p, fmt.Sprintf("%d subscribers behind the final version", o.Behind))
	}
	return strings.Join(p, ", ")
}

// writeJSON writes the report as indented JSON.
func (rep *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeTable writes the report as a two-column table.
func (rep *report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	pc := func(p percentiles) string {
		if p.Samples == 0 {
			return "no samples"
		}
		return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (%d samples)",
			msStr(p.P50), msStr(p.P90), msStr(p.P99), msStr(p.Max), p.Samples)
	}
	c := rep.Config
	warm := ""
	if c.WarmupS > 0 {
		warm = fmt.Sprintf(" after %gs warmup", c.WarmupS)
	}
	row("run", "%d conns over %d URL(s), %d layouts, %d users, %d editors at %g edits/s (%s), overlap %g, %gs%s",
		c.Conns, len(c.URLs), c.Layouts, c.Users, c.Editors, c.Rate, c.Pace, c.Overlap, c.DurationS, warm)
	if c.Editors > 0 {
		note := ""
		if c.MaxEditorsPerLayout < 2 && c.Overlap > 0 {
			note = "; one editor per layout, so no edit can conflict"
		}
		row("  editors", "on %d of %d layouts, at most %d per layout%s", c.LayoutsEdited, c.Layouts, c.MaxEditorsPerLayout, note)
	}
	cn := rep.Connect
	row("connect", "%d ok, %d failed in %.2fs; %d disconnected during the run", cn.OK, cn.Failed, cn.WallS, cn.Disconnects)
	row("  dial", "%s", pc(cn.Dial))
	row("  subscribe", "%s", pc(cn.Subscribe))
	ed := rep.Edits
	row("edits", "sent %d (%.1f/s), acked %d (rebased %d), conflicts %d", ed.Sent, ed.RatePerS, ed.Acked, ed.Rebased, ed.Conflicts)
	row("  commits", "%d versions, %d unacked, %d acked twice, %d author mismatches", ed.Committed, ed.UnackedCommits, ed.AckDuplicates, ed.AckMismatches)
	row("  pacing", "%d slots skipped, %d view stalls", ed.SkippedSlots, ed.Stalls)
	row("latency", "edit→delivery %s", pc(rep.Latency))
	row("  ack", "edit→ack %s", pc(rep.AckLatency))
	dl := rep.Deliveries
	row("deliveries", "%d of %d expected; %.1f/s over %.2fs; %d unresolved; %d presence messages", dl.Total, dl.Expected, dl.PerS, dl.WindowS, dl.Unresolved, dl.Presence)
	drained := "all subscribers at the final version"
	if !dl.Drained {
		drained = "NOT all subscribers reached the final version"
	}
	row("  drain", "%.2fs: %s", dl.DrainS, drained)
	o := rep.Ordering
	row("ordering", "%d subscribers: missing %d, duplicates %d, out of order %d, resets %d, behind %d",
		o.Subscribers, o.Missing, o.Duplicates, o.OutOfOrder, o.Resets, o.Behind)
	if len(rep.Errors) == 0 {
		row("errors", "none")
	} else {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(rep.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, rep.Errors[k]))
		}
		row("errors", "%d: %s", rep.ErrorsTotal, strings.Join(parts, ", "))
	}
	if s := rep.Server; s != nil {
		row("server", "pid %d", s.PID)
		row("  rss", "%s idle → %s connected → %s end (max %s)", mib(s.RSSStartBytes), mib(s.RSSConnectedBytes), mib(s.RSSEndBytes), mib(s.RSSMaxBytes))
		row("  cpu", "%.2fs connecting, %.2fs editing (%.1f µs per delivery)", s.CPUConnectS, s.CPUEditS, s.CPUPerDeliveryUs)
	}
	cl := rep.Client
	row("client", "%d CPUs, load %.2f → %.2f; the tool used %.2fs CPU editing", cl.CPUs, cl.Load1Start, cl.Load1End, cl.CPUEditS)
	if rep.Interrupted {
		row("note", "interrupted: the results are partial")
	}
	return tw.Flush()
}

func msStr(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.1fms", ms)
}
