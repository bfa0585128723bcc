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
