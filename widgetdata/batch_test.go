package widgetdata_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/dashsync/dashsync/store/memory"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// barrier is a source whose fetches each answer only once n fetches have begun: a
// batch that fetched one widget at a time would never get past the first. A fetch
// that gives up (at its deadline) fails the ones still waiting at once, so that a
// batch that does not fetch in parallel fails in one deadline, not n.
type barrier struct {
	n      int
	mu     sync.Mutex
	begun  int
	all    chan struct{} // closed when the n-th fetch begins
	gaveUp chan struct{} // closed when a fetch gave up waiting
	once   sync.Once
}

func newBarrier(n int) *barrier {
	return &barrier{n: n, all: make(chan struct{}), gaveUp: make(chan struct{})}
}

func (b *barrier) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	b.mu.Lock()
	b.begun++
	if b.begun == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return json.RawMessage(`{"ok":true}`), nil
	case <-b.gaveUp:
		return nil, fmt.Errorf("widget %s: another fetch of the batch gave up waiting", w.ID)
	case <-ctx.Done():
		b.once.Do(func() { close(b.gaveUp) })
		b.mu.Lock()
		defer b.mu.Unlock()
		return nil, fmt.Errorf("widget %s: %d of %d fetches had begun at the deadline: %w", w.ID, b.begun, b.n, ctx.Err())
	}
}

// TestBatch_FetchesInParallel: a batch's widgets are fetched at the same time (SPEC
// §4), shown by a source that answers only when every fetch of the batch has begun.
// The deadline the fetches wait under is a generous waitBound: they all begin at once.
func TestBatch_FetchesInParallel(t *testing.T) {
	const n = 8
	src := newBarrier(n)
	s := widgetdata.New(memory.NewCache(0, nil), widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src},
		FetchTimeout: waitBound})
	var ws []dsync.Widget
	for i := range n {
		ws = append(ws, widget(fmt.Sprintf("w%d", i), "test"))
	}
	for i, r := range s.Batch(context.Background(), ws, false) {
		if r.Err != nil {
			t.Errorf("widget %d: %v (the fetches did not all run at once)", i, r.Err)
		}
	}
}
