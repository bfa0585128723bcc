package sync_test

import (
	"context"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestTemplates_CreateTheWidgetsAndTheLayoutTogether: a layout made from a template
// places a new widget of the user's for each tile; an unknown template is refused; a
// tile whose source is refused creates nothing at all; a link has no templates.
func TestTemplates_CreateTheWidgetsAndTheLayoutTogether(t *testing.T) {
	ctx := context.Background()
	g := &gatedSources{}
	svc := dsync.NewService(openSQLite(t), dsync.Options{Sources: g})
	tpls, err := svc.TemplatesFor("alice")
	if err != nil || len(tpls) == 0 {
		t.Fatalf("templates: %v, %v", tpls, err)
	}
	total := 0
	for i, tpl := range tpls {
		l, err := svc.CreateLayout(ctx, "alice", dsync.NewLayout{Template: tpl.Name, Author: "alice"})
		if err != nil {
			t.Fatalf("template %s: %v", tpl.Name, err)
		}
		if l.Name != tpl.Title || l.Version != 1 || len(l.Items) == 0 || l.IsDefault != (i == 0) {
			t.Errorf("template %s: %+v", tpl.Name, l)
		}
		for id := range l.Items {
			if w, err := svc.Widget(ctx, "alice", id); err != nil || w.Owner != "alice" {
				t.Errorf("template %s places %s: %v", tpl.Name, id, err)
			}
		}
		total += len(l.Items)
	}
	if ws, _ := svc.Widgets(ctx, "alice"); len(ws) != total {
		t.Errorf("alice has %d widgets, want the %d the templates placed", len(ws), total)
	}
	_, err = svc.CreateLayout(ctx, "alice", dsync.NewLayout{Template: "no-such-template"})
	if de := wantCode(t, err, dsync.CodeValidation); de.Details[0].Field != "template" {
		t.Errorf("unknown template: %+v", de.Details)
	}
	g.closed.Store(true)
	_, err = svc.CreateLayout(ctx, "bob", dsync.NewLayout{Template: tpls[0].Name})
	wantCode(t, err, dsync.CodeValidation)
	if ws, _ := svc.Widgets(ctx, "bob"); len(ws) != 0 {
		t.Errorf("a refused template left %d widgets", len(ws))
	}
	if ls, _ := svc.Layouts(ctx, "bob", false); len(ls) != 0 {
		t.Errorf("a refused template left %d layouts", len(ls))
	}
	_, err = svc.TemplatesFor(dsync.LinkUserPrefix + "x")
	wantCode(t, err, dsync.CodeForbidden)
	_, err = svc.CreateLayout(ctx, dsync.LinkUserPrefix+"x", dsync.NewLayout{Template: tpls[0].Name})
	wantCode(t, err, dsync.CodeForbidden)
}
