package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// MaxOpLogBytesPerVersion is what one version of a one-field edit of a 200-item
// layout may add to a store's op log, on average over a checkpoint interval and
// more: its ops row and index entries plus its share of the checkpoints.
const MaxOpLogBytesPerVersion = 300

// OpLogBytesPerVersion measures how much a store's op log grows per version: it
// commits, through a Service, one-field edits of a layout that places 200 widgets
// and returns the growth of opLogSize (the store's own measure of its layout op log,
// indexes included) per version, over ten checkpoint intervals.
func OpLogBytesPerVersion(t *testing.T, st dsync.Store, opLogSize func(ctx context.Context) (int64, error)) float64 {
	t.Helper()
	ctx := context.Background()
	svc := dsync.NewService(st, dsync.Options{Retention: 1 << 20}) // nothing trimmed meanwhile
	items := make(map[string]dsync.Item, 200)
	var first string
	for i := range 200 {
		typ, title := "stat", fmt.Sprintf("widget %d", i)
		w, err := svc.CreateWidget(ctx, "sizer", dsync.WidgetDoc{Type: &typ, Title: &title,
			Source: &dsync.Source{Kind: "static", Data: json.RawMessage(`{"value":1}`)}}, "sizer")
		if err != nil {
			t.Fatal(err)
		}
		items[w.ID] = dsync.Item{X: (i % 4) * 3, Y: (i / 4) * 2, W: 3, H: 2}
		if i == 0 {
			first = w.ID
		}
	}
	name := "two hundred tiles"
	l, err := svc.CreateLayout(ctx, "sizer", dsync.NewLayout{Author: "sizer", Doc: dsync.LayoutDoc{Name: &name, Items: items}})
	if err != nil {
		t.Fatal(err)
	}
	edit := func(n int) {
		t.Helper()
		for range n {
			// y alternates between two values: every edit changes one field.
			y := 1000 + l.Version%2
			op := dsync.Op{Op: dsync.OpReplace, Path: "/items/" + first + "/y", Value: json.RawMessage(fmt.Sprint(y))}
			if l, _, err = svc.EditLayout(ctx, "sizer", l.ID, dsync.Edit{Base: l.Version, Ops: []dsync.Op{op}, Author: "sizer"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	const interval = dsync.DefaultCheckpointEvery
	edit(interval - 1) // from version 1 to the first checkpoint
	before, err := opLogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const versions = 10 * interval
	edit(versions)
	after, err := opLogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	per := float64(after-before) / versions
	t.Logf("op log: %d bytes for %d versions, %.0f bytes per version", after-before, versions, per)
	return per
}
