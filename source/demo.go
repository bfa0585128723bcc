package source

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// The demo kinds generate data for the demo page (SPEC §9). They take no settings:
// every source of theirs is acceptable.

// Counter is demo.counter: {"value": n}, n going up by one on every fetch of the widget
// (1 on the first). Counts live in this process, for at most a bounded number of
// widgets (least recently fetched forgotten first); instances of a cluster count apart.
type Counter struct {
	mu     sync.Mutex
	counts *lru.Cache[string, int64]
}

// DefaultCounterWidgets is how many widgets a Counter remembers by default.
const DefaultCounterWidgets = 10_000

// NewCounter returns a Counter remembering at most size widgets (0: the default).
func NewCounter(size int) *Counter {
	if size <= 0 {
		size = DefaultCounterWidgets
	}
	c, _ := lru.New[string, int64](size) // fails only for size <= 0
	return &Counter{counts: c}
}

// Check implements Kind.
func (*Counter) Check(context.Context, dsync.Source) error { return nil }

// Fetch implements widgetdata.Fetcher.
func (c *Counter) Fetch(_ context.Context, w dsync.Widget) (json.RawMessage, error) {
	k := w.Owner + "\x00" + w.ID
	c.mu.Lock()
	n, _ := c.counts.Get(k)
	n++
	c.counts.Add(k, n)
	c.mu.Unlock()
	return json.Marshal(map[string]int64{"value": n})
}

// SeriesPoints is how many points demo.series answers.
const SeriesPoints = 60

// Series is demo.series: {"points": [[unixMillis, value], …]}, the last SeriesPoints
// points one refresh period (widgetdata.RefreshPeriod: refreshSeconds within its
// bounds) apart, the newest at the current step. Values follow a
// wave of the widget's own (its id picks the phase and level) with a little noise; they
// depend only on the widget and the time, so every instance answers the same.
type Series struct {
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Check implements Kind.
func (Series) Check(context.Context, dsync.Source) error { return nil }

// Fetch implements widgetdata.Fetcher.
func (s Series) Fetch(_ context.Context, w dsync.Widget) (json.RawMessage, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	// The bounded period keeps the step between 1 s and a day, whatever a widget stored
	// before validation holds: never 0 (a division by it) nor an overflow.
	step := widgetdata.RefreshPeriod(w.Source).Milliseconds()
	end := now().UnixMilli() / step * step
	seed := hash64(w.Owner+"\x00"+w.ID, 0)
	points := make([][2]float64, SeriesPoints)
	for i := range points {
		t := end - int64(SeriesPoints-1-i)*step
		points[i] = [2]float64{float64(t), seriesValue(seed, t, step)}
	}
	return json.Marshal(map[string]any{"points": points})
}

func seriesValue(seed uint64, t, step int64) float64 {
	phase := float64(seed%1000) / 1000 * 2 * math.Pi
	level := 40 + float64(seed/1000%40)
	x := float64(t) / float64(step*SeriesPoints) * 2 * math.Pi // one wave per window
	noise := (float64(hash64("", seed^uint64(t))%1000)/1000 - 0.5) * 6
	v := level + 20*math.Sin(x+phase) + 8*math.Sin(3.7*x+2*phase) + noise
	return math.Round(max(v, 0)*10) / 10
}

func hash64(s string, n uint64) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	_, _ = h.Write(binary.LittleEndian.AppendUint64(nil, n))
	return h.Sum64()
}

// Clock is demo.clock: {"now": "<RFC 3339>"}, the time of the fetch (UTC, milliseconds).
type Clock struct {
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Check implements Kind.
func (Clock) Check(context.Context, dsync.Source) error { return nil }

// Fetch implements widgetdata.Fetcher.
func (c Clock) Fetch(context.Context, dsync.Widget) (json.RawMessage, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return json.Marshal(map[string]dsync.Time{"now": dsync.NewTime(now())})
}
