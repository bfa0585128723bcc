package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestSoleWriter_WidgetReadsFollowCommits: with the definitions kept in memory, a read
// after a commit sees that commit, a deleted widget stays gone, another owner never
// sees the widget, and reads racing commits never leave an older version behind.
func TestSoleWriter_WidgetReadsFollowCommits(t *testing.T) {
	ctx := context.Background()
	svc := dsync.NewService(openSQLite(t), dsync.Options{SoleWriter: true})
	src := &dsync.Source{Kind: "static", Data: json.RawMessage(`1`)}
	w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("a"), Source: src}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Widget(ctx, "alice", w.ID); err != nil || got.Title != "a" {
		t.Fatalf("read after create: %+v, %v", got, err)
	}
	if _, err := svc.Widget(ctx, "bob", w.ID); dsync.ErrorCode(err) != dsync.CodeNotFound {
		t.Fatalf("another owner: got %v, want not_found", err)
	}

	// Readers race a stream of renames: the last read shows the last rename.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := svc.Widget(ctx, "alice", w.ID); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	base := int64(1)
	for i := range 30 {
		title := fmt.Sprintf("t%d", i)
		got, _, err := svc.UpdateWidget(ctx, "alice", w.ID, base, dsync.WidgetDoc{Title: &title}, dsync.Edit{Author: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		base = got.Version
	}
	close(stop)
	wg.Wait()
	got, err := svc.Widget(ctx, "alice", w.ID)
	if err != nil || got.Title != "t29" || got.Version != base {
		t.Fatalf("after the renames: %q v%d (%v), want t29 v%d", got.Title, got.Version, err, base)
	}

	if err := svc.RemoveWidget(ctx, "alice", w.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Widget(ctx, "alice", w.ID); dsync.ErrorCode(err) != dsync.CodeNotFound {
		t.Fatalf("after delete: got %v, want not_found", err)
	}
}

// TestSoleWriter_DeletionsAreRememberedInBoundedMemory: a deleted widget stays deleted
// even when reads racing its delete finish after it, and nothing is kept in memory
// for deleted widgets, however many there are.
func TestSoleWriter_DeletionsAreRememberedInBoundedMemory(t *testing.T) {
	ctx := context.Background()
	svc := dsync.NewService(openSQLite(t), dsync.Options{SoleWriter: true})
	src := &dsync.Source{Kind: "static", Data: json.RawMessage(`1`)}
	deleteRaced := func(n int) []string {
		t.Helper()
		var ids []string
		for range n {
			w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("a"), Source: src}, "alice")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, w.ID)
			// Readers race the delete: some of their store reads start before it
			// commits and finish after.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 1 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := svc.Widget(ctx, "alice", w.ID); err != nil && dsync.ErrorCode(err) != dsync.CodeNotFound {
							t.Error(err)
							return
						}
					}
				})
			}
			if err := svc.RemoveWidget(ctx, "alice", w.ID, "alice"); err != nil {
				t.Fatal(err)
			}
			close(stop)
			wg.Wait()
		}
		return ids
	}
	ids := deleteRaced(5)
	ids = append(ids, deleteRaced(100)...)
	widgets, bytes := svc.WidgetCacheStats()
	if widgets != 0 || bytes != 0 {
		t.Fatalf("%d widget definitions (%d bytes) cached after every widget was deleted, want none: nothing is kept of a deletion", widgets, bytes)
	}
	for _, id := range ids {
		if _, err := svc.Widget(ctx, "alice", id); dsync.ErrorCode(err) != dsync.CodeNotFound {
			t.Fatalf("deleted widget %s: got %v, want not_found", id, err)
		}
	}
	// Widgets never deleted are still kept in memory.
	w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("kept"), Source: src}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Widget(ctx, "alice", w.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := svc.WidgetCacheStats(); n != 1 {
		t.Fatalf("a live widget after the deletions: %d definitions cached, want 1", n)
	}
}

// TestSoleWriter_WidgetCacheIsBoundedByBytes: the definitions kept in memory stay
// under the cache's bound, least recently used dropped first, and reads stay right.
func TestSoleWriter_WidgetCacheIsBoundedByBytes(t *testing.T) {
	ctx := context.Background()
	svc := dsync.NewService(openSQLite(t), dsync.Options{SoleWriter: true})
	const bound = 64 << 10
	svc.SetWidgetCacheBytes(bound)
	data, _ := json.Marshal(strings.Repeat("d", 10<<10))
	var ids []string
	for i := range 30 {
		w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr(fmt.Sprint(i)),
			Source: &dsync.Source{Kind: "static", Data: data}}, "alice")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	for i, id := range ids {
		w, err := svc.Widget(ctx, "alice", id)
		if err != nil || w.Title != fmt.Sprint(i) {
			t.Fatalf("widget %d: %q, %v", i, w.Title, err)
		}
	}
	n, bytes := svc.WidgetCacheStats()
	if bytes > bound || n == 0 || n >= len(ids) {
		t.Fatalf("%d definitions in %d bytes cached, want some but not all, within %d bytes", n, bytes, bound)
	}
}

// slowRead is a store whose plain reads of a widget, once armed, hold their answer
// until released: a read that began before a delete and finishes after it.
type slowRead struct {
	dsync.Store
	held    chan struct{}
	release chan struct{}
}

func (s *slowRead) Widget(ctx context.Context, owner, id string) (dsync.Widget, error) {
	w, err := s.Store.Widget(ctx, owner, id)
	if s.held != nil {
		held := s.held
		s.held = nil
		close(held)
		<-s.release
	}
	return w, err
}

// TestSoleWriter_ReadFinishingAfterADeleteDoesNotBringTheWidgetBack: the order that
// would put a deleted widget back, made to happen: a read gets the widget, the
// delete commits, then the read finishes.
func TestSoleWriter_ReadFinishingAfterADeleteDoesNotBringTheWidgetBack(t *testing.T) {
	ctx := context.Background()
	st := &slowRead{Store: openSQLite(t)}
	svc := dsync.NewService(st, dsync.Options{SoleWriter: true})
	svc.SetWidgetCacheBytes(1) // nothing cached by the create: the read below misses
	w, err := svc.CreateWidget(ctx, "alice", dsync.WidgetDoc{Type: ptr("stat"), Title: ptr("a"),
		Source: &dsync.Source{Kind: "static", Data: json.RawMessage(`1`)}}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	svc.SetWidgetCacheBytes(1 << 20)
	st.held, st.release = make(chan struct{}), make(chan struct{})
	held := st.held
	read := make(chan error, 1)
	go func() {
		_, err := svc.Widget(ctx, "alice", w.ID)
		read <- err
	}()
	<-held
	if err := svc.RemoveWidget(ctx, "alice", w.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	if err := <-read; err != nil {
		t.Fatalf("the read that began before the delete: %v", err)
	}
	if _, err := svc.Widget(ctx, "alice", w.ID); dsync.ErrorCode(err) != dsync.CodeNotFound {
		t.Fatalf("after the delete: got %v, want not_found", err)
	}
}
