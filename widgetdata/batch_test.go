package widgetdata_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dashsync/dashsync/store/memory"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// barrier is a source whose fetches each answer only once n fetches have started: a
// batch that fetched one widget at a time would never get past the first.
type barrier struct {
	started chan struct{}
	n       int
}

func (b *barrier) Fetch(ctx context.Context, w dsync.Widget) (json.RawMessage, error) {
	b.started <- struct{}{}
	for len(b.started) < b.n {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return json.RawMessage(`{"ok":true}`), nil
}

// TestBatch_FetchesInParallel: a batch's widgets are fetched at the same time (SPEC
// §4), shown by a source that answers only when every fetch of the batch has begun.
func TestBatch_FetchesInParallel(t *testing.T) {
	const n = 8
	src := &barrier{started: make(chan struct{}, n), n: n}
	s := widgetdata.New(memory.NewCache(0, nil), widgetdata.Options{Fetchers: map[string]widgetdata.Fetcher{"test": src},
		FetchTimeout: 3 * time.Second})
	var ws []dsync.Widget
	for i := range n {
		ws = append(ws, widget(fmt.Sprintf("w%d", i), "test"))
	}
	for i, r := range s.Batch(context.Background(), ws, false) {
		if r.Err != nil {
			t.Fatalf("widget %d: %v (the fetches did not all run at once)", i, r.Err)
		}
	}
}
