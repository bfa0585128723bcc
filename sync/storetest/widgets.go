package storetest

import (
	"testing"

	"github.com/google/uuid"

	dsync "github.com/dashsync/dashsync/sync"
)

func testWidgetRoundTrip(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner := newID("user")
	w := newWidget(owner)
	c := changeFor(w, 1, "created", w.CreatedAt)
	err := s.InTx(ctx, func(tx dsync.Tx) error {
		if err := tx.CreateWidget(ctx, w, c); err != nil {
			return err
		}
		checkWidget(t, mustGetWidget(t, tx, owner, w.ID), w)
		return nil
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	checkWidget(t, mustGetWidget(t, s, owner, w.ID), w)
	cs, err := s.WidgetChanges(ctx, w.ID, 0, 1)
	if err != nil {
		t.Fatalf("WidgetChanges: %v", err)
	}
	checkChanges(t, cs, []dsync.Change{c})

	// A source without data and a widget without settings.
	bare := newWidget(owner)
	bare.Source = dsync.Source{Kind: "push", RefreshSeconds: 60, TTLSeconds: 3600}
	bare.Settings = nil
	bare.CreatedAt = at(10)
	createWidget(t, s, bare)
	got := mustGetWidget(t, s, owner, bare.ID)
	checkWidget(t, got, bare)

	list, err := s.Widgets(ctx, owner)
	if err != nil {
		t.Fatalf("Widgets: %v", err)
	}
	if len(list) != 2 {
		t.Fatalf("Widgets: got %d widgets, want 2", len(list))
	}
	checkWidget(t, list[0], w)
	checkWidget(t, list[1], bare)
}

func testWidgetOwnerScope(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	alice, bob := newID("alice"), newID("bob")
	wa := newWidget(alice)
	createWidget(t, s, wa)
	createWidget(t, s, newWidget(bob))

	_, err := s.Widget(ctx, bob, wa.ID)
	wantCode(t, "Widget of another owner", err, dsync.CodeNotFound)
	_, err = s.Widget(ctx, alice, newID("widget"))
	wantCode(t, "Widget that is missing", err, dsync.CodeNotFound)
	err = s.InTx(ctx, func(tx dsync.Tx) error { return tx.DeleteWidget(ctx, bob, wa.ID) })
	wantCode(t, "DeleteWidget of another owner", err, dsync.CodeNotFound)

	for _, owner := range []string{alice, bob} {
		list, err := s.Widgets(ctx, owner)
		if err != nil {
			t.Fatalf("Widgets(%s): %v", owner, err)
		}
		if len(list) != 1 || list[0].Owner != owner {
			t.Errorf("Widgets(%s): got %d widgets, want only its own one", owner, len(list))
		}
	}
}

func testWidgetUpdateCAS(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	w := newWidget(newID("user"))
	c1 := createWidget(t, s, w)
	v2, c2 := nextWidget(w, "a")
	v2.Title = "Memory"
	v2.Source.Data = []byte(`[3,  2,1]`)
	v2.Source.Kind = "http"
	v2.CreatedAt = at(777) // ignored: creation time is kept
	updateWidget(t, s, v2, c2)
	want := v2
	want.CreatedAt = w.CreatedAt
	checkWidget(t, mustGetWidget(t, s, w.Owner, w.ID), want)

	tests := []struct {
		name    string
		mutate  func(w *dsync.Widget)
		wantErr func(t *testing.T, err error)
	}{
		{"expected version behind the head is stale", func(w *dsync.Widget) { w.Version = 2 },
			func(t *testing.T, err error) { wantIs(t, "UpdateWidget", err, dsync.ErrStale) }},
		{"expected version ahead of the head is stale", func(w *dsync.Widget) { w.Version = 7 },
			func(t *testing.T, err error) { wantIs(t, "UpdateWidget", err, dsync.ErrStale) }},
		{"a missing widget is not found", func(w *dsync.Widget) { w.ID = newID("widget") },
			func(t *testing.T, err error) { wantCode(t, "UpdateWidget", err, dsync.CodeNotFound) }},
		{"another owner's widget is not found", func(w *dsync.Widget) { w.Owner = newID("mallory") },
			func(t *testing.T, err error) { wantCode(t, "UpdateWidget", err, dsync.CodeNotFound) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := v2.Clone()
			n.Title = "must not be written"
			tc.mutate(&n)
			c := changeFor(n, n.Version, "k", at(50))
			err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.UpdateWidget(ctx, n, c) })
			tc.wantErr(t, err)
		})
	}
	checkWidget(t, mustGetWidget(t, s, w.Owner, w.ID), want)
	cs, err := s.WidgetChanges(ctx, w.ID, 0, 100)
	if err != nil {
		t.Fatalf("WidgetChanges: %v", err)
	}
	checkChanges(t, cs, []dsync.Change{c1, c2})
}

func testWidgetDuplicateEdit(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	w := newWidget(newID("user"))
	createWidget(t, s, w)
	v2, c2 := nextWidget(w, "a")
	updateWidget(t, s, v2, c2)

	v3, c3 := nextWidget(v2, "b")
	c3.EditID = c2.EditID
	err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.UpdateWidget(ctx, v3, c3) })
	wantIs(t, "UpdateWidget with a committed editId", err, dsync.ErrDuplicateEdit)
	checkWidget(t, mustGetWidget(t, s, w.Owner, w.ID), v2)

	got, err := s.WidgetChangeByEdit(ctx, w.ID, c2.EditID)
	if err != nil {
		t.Fatalf("WidgetChangeByEdit: %v", err)
	}
	checkChange(t, got, c2)
	_, err = s.WidgetChangeByEdit(ctx, w.ID, uuid.NewString())
	wantCode(t, "WidgetChangeByEdit of an unknown editId", err, dsync.CodeNotFound)
	_, err = s.WidgetChangeByEdit(ctx, w.ID, "")
	wantCode(t, "WidgetChangeByEdit of the empty editId", err, dsync.CodeNotFound)
}

func testWidgetChangesTrimDelete(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	w := newWidget(newID("user"))
	createWidget(t, s, w)
	for range 4 {
		var c dsync.Change
		w, c = nextWidget(w, "k")
		updateWidget(t, s, w, c)
	}
	changes := func(after, upTo int64) []dsync.Change {
		t.Helper()
		cs, err := s.WidgetChanges(ctx, w.ID, after, upTo)
		if err != nil {
			t.Fatalf("WidgetChanges: %v", err)
		}
		return cs
	}
	wantVersions(t, "WidgetChanges(0, 5)", changes(0, 5), seq(1, 5))
	wantVersions(t, "WidgetChanges(2, 4)", changes(2, 4), seq(3, 4))
	wantVersions(t, "WidgetChanges(5, 9)", changes(5, 9), nil)

	if err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.TrimWidgetChanges(ctx, w.ID, 2) }); err != nil {
		t.Fatalf("TrimWidgetChanges: %v", err)
	}
	wantVersions(t, "after trim", changes(0, 5), seq(3, 5))

	if err := s.InTx(ctx, func(tx dsync.Tx) error { return tx.DeleteWidget(ctx, w.Owner, w.ID) }); err != nil {
		t.Fatalf("DeleteWidget: %v", err)
	}
	_, err := s.Widget(ctx, w.Owner, w.ID)
	wantCode(t, "Widget after delete", err, dsync.CodeNotFound)
	wantVersions(t, "after delete", changes(0, 5), nil)
	err = s.InTx(ctx, func(tx dsync.Tx) error { return tx.DeleteWidget(ctx, w.Owner, w.ID) })
	wantCode(t, "DeleteWidget twice", err, dsync.CodeNotFound)
}
