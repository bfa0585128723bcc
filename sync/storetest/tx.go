package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

func testTxRollback(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	owner := newID("user")
	existing, _ := layoutWithVersions(t, s, owner, 1)
	l := newLayout(owner)
	w := newWidget(owner)
	boom := errors.New("boom")

	err := s.InTx(ctx, func(tx dsync.Tx) error {
		if err := tx.CreateLayout(ctx, l, changeFor(l, 1, "k", at(0))); err != nil {
			return err
		}
		if err := tx.CreateWidget(ctx, w, changeFor(w, 1, "k", at(0))); err != nil {
			return err
		}
		n, c := nextLayout(existing, "k")
		if err := tx.UpdateLayout(ctx, n, c); err != nil {
			return err
		}
		if err := tx.TrimLayoutChanges(ctx, existing.ID, 1); err != nil {
			return err
		}
		if err := tx.PutDashboard(ctx, dsync.Dashboard{Owner: owner, Version: 1}); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("InTx: got error %v, want fn's error unchanged", err)
	}

	_, err = s.Layout(ctx, owner, l.ID)
	wantCode(t, "Layout created in a rolled back transaction", err, dsync.CodeNotFound)
	_, err = s.Widget(ctx, owner, w.ID)
	wantCode(t, "Widget created in a rolled back transaction", err, dsync.CodeNotFound)
	checkLayout(t, mustGetLayout(t, s, owner, existing.ID), existing)
	wantVersions(t, "changes of the updated layout", mustLayoutChanges(t, s, existing.ID, 0, 100), seq(1, 1))
	d, err := s.Dashboard(ctx, owner)
	if err != nil || d.Version != 0 {
		t.Errorf("Dashboard: got version %d, %v; want 0, nil", d.Version, err)
	}
}

func testTxPanic(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l := newLayout(newID("user"))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic of fn", p)
			}
		}()
		_ = s.InTx(ctx, func(tx dsync.Tx) error {
			if err := tx.CreateLayout(ctx, l, changeFor(l, 1, "k", at(0))); err != nil {
				t.Errorf("CreateLayout: %v", err)
			}
			panic("boom")
		})
	}()
	_, err := s.Layout(ctx, l.Owner, l.ID)
	wantCode(t, "Layout created before a panic", err, dsync.CodeNotFound)
	createLayout(t, s, l) // the store still takes transactions
}

func testTxIsolation(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l := newLayout(newID("user"))
	err := s.InTx(ctx, func(tx dsync.Tx) error {
		if err := tx.CreateLayout(ctx, l, changeFor(l, 1, "k", at(0))); err != nil {
			return err
		}
		if _, err := tx.Layout(ctx, l.Owner, l.ID); err != nil {
			t.Errorf("Layout inside the transaction: %v", err)
		}
		if cs, err := tx.LayoutChanges(ctx, l.ID, 0, 1); err != nil || len(cs) != 1 {
			t.Errorf("LayoutChanges inside the transaction: got %d changes, %v; want 1", len(cs), err)
		}
		_, err := s.Layout(ctx, l.Owner, l.ID)
		wantCode(t, "Layout outside the transaction before commit", err, dsync.CodeNotFound)
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	checkLayout(t, mustGetLayout(t, s, l.Owner, l.ID), l)
}

// testTxFailedWriteKeepsTx: a write refused with ErrStale or not_found writes nothing
// and leaves the transaction usable, so the pipeline can look up the original change
// of a resent edit, or commit something else, in the same transaction.
func testTxFailedWriteKeepsTx(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l := newLayout(newID("user"))
	createLayout(t, s, l)
	v2, c2 := nextLayout(l, "a")
	updateLayout(t, s, v2, c2)

	err := s.InTx(ctx, func(tx dsync.Tx) error {
		stale, cs := nextLayout(l, "stale") // based on version 1
		wantIs(t, "UpdateLayout on an old base", tx.UpdateLayout(ctx, stale, cs), dsync.ErrStale)

		gone, cg := nextLayout(newLayout(l.Owner), "gone")
		wantCode(t, "UpdateLayout of a layout that is not there", tx.UpdateLayout(ctx, gone, cg), dsync.CodeNotFound)
		orig, err := tx.LayoutChangeByEdit(ctx, l.ID, c2.EditID)
		if err != nil {
			return err
		}
		checkChange(t, orig, c2)
		checkLayout(t, mustGetLayout(t, tx, l.Owner, l.ID), v2)

		v3, c3 := nextLayout(v2, "b")
		return tx.UpdateLayout(ctx, v3, c3)
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	got := mustGetLayout(t, s, l.Owner, l.ID)
	if got.Version != 3 {
		t.Errorf("version: got %d, want 3", got.Version)
	}
	for _, k := range []string{"stale", "dup"} {
		if v, ok := got.Settings[k]; ok {
			t.Errorf("settings[%q]: got %s, want no such key (its write failed)", k, v)
		}
	}
	wantVersions(t, "changes", mustLayoutChanges(t, s, l.ID, 0, 100), seq(1, 3))
}

func testCancelledContext(t *testing.T, s dsync.Store) {
	l := newLayout(newID("user"))
	createLayout(t, s, l)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	ran := false
	tests := []struct {
		name string
		call func() error
	}{
		{"Layout", func() error { _, err := s.Layout(ctx, l.Owner, l.ID); return err }},
		{"Layouts", func() error { _, err := s.Layouts(ctx, l.Owner); return err }},
		{"LayoutChanges", func() error { _, err := s.LayoutChanges(ctx, l.ID, 0, 10); return err }},
		{"LayoutHistory", func() error { _, err := s.LayoutHistory(ctx, l.ID, 10, 10); return err }},
		{"Widget", func() error { _, err := s.Widget(ctx, l.Owner, newID("widget")); return err }},
		{"Dashboard", func() error { _, err := s.Dashboard(ctx, l.Owner); return err }},
		{"LayoutAs", func() error { _, _, err := s.LayoutAs(ctx, l.ID, l.Owner); return err }},
		{"Access", func() error { _, err := s.Access(ctx, l.ID); return err }},
		{"SharedWith", func() error { _, err := s.SharedWith(ctx, l.Owner); return err }},
		{"Link", func() error { _, err := s.Link(ctx, newID("link")); return err }},
		{"Links", func() error { _, err := s.Links(ctx, l.ID); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"InTx", func() error {
			return s.InTx(ctx, func(tx dsync.Tx) error { ran = true; return nil })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: got %v, want context.Canceled", tc.name, err)
			}
		})
	}
	if ran {
		t.Errorf("InTx with a cancelled context ran fn")
	}

	// A context cancelled inside the transaction: the writes fail and nothing commits.
	n, c := nextLayout(l, "k")
	inner, cancelInner := context.WithCancel(t.Context())
	err := s.InTx(inner, func(tx dsync.Tx) error {
		cancelInner()
		return tx.UpdateLayout(inner, n, c)
	})
	if err == nil {
		t.Errorf("InTx cancelled inside fn: got nil error, want one")
	}
	checkLayout(t, mustGetLayout(t, s, l.Owner, l.ID), l)
}

func testUseAfterClose(t *testing.T, s dsync.Store) {
	ctx := t.Context()
	l := newLayout(newID("user"))
	createLayout(t, s, l)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"Layout", func() error { _, err := s.Layout(ctx, l.Owner, l.ID); return err }},
		{"Layouts", func() error { _, err := s.Layouts(ctx, l.Owner); return err }},
		{"LayoutChanges", func() error { _, err := s.LayoutChanges(ctx, l.ID, 0, 10); return err }},
		{"LayoutChangeByEdit", func() error { _, err := s.LayoutChangeByEdit(ctx, l.ID, "e"); return err }},
		{"Widgets", func() error { _, err := s.Widgets(ctx, l.Owner); return err }},
		{"Dashboard", func() error { _, err := s.Dashboard(ctx, l.Owner); return err }},
		{"LayoutAs", func() error { _, _, err := s.LayoutAs(ctx, l.ID, l.Owner); return err }},
		{"Access", func() error { _, err := s.Access(ctx, l.ID); return err }},
		{"SharedWith", func() error { _, err := s.SharedWith(ctx, l.Owner); return err }},
		{"Link", func() error { _, err := s.Link(ctx, newID("link")); return err }},
		{"Links", func() error { _, err := s.Links(ctx, l.ID); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"InTx", func() error {
			return s.InTx(ctx, func(tx dsync.Tx) error {
				return tx.PutDashboard(ctx, dsync.Dashboard{Owner: l.Owner, Preferences: json.RawMessage(`{}`), Version: 1})
			})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name+" after Close", tc.call(), dsync.CodeUnavailable)
		})
	}
}
