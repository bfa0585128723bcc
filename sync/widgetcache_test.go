package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
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
// even when reads racing its delete finish after it, and remembering deletions takes
// the same memory after five of them as after many more.
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
	_, first := svc.WidgetCacheStats()
	ids = append(ids, deleteRaced(100)...)
	widgets, later := svc.WidgetCacheStats()
	if first == 0 || later != first || first > 1<<20 {
		t.Fatalf("memory remembering deletions: %d bytes after 5, %d after 105; want the same, at most 1 MiB", first, later)
	}
	if widgets != 0 {
		t.Fatalf("%d widget definitions cached after every widget was deleted, want 0", widgets)
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
