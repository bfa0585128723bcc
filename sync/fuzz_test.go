package sync_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// FuzzEditRule feeds random op lists (with a random base and force flag) to the edit
// pipeline and checks that it never panics, never commits a document that fails
// validation, and that a refused edit changes nothing.
func FuzzEditRule(f *testing.F) {
	seeds := []string{
		`[{"op":"replace","path":"/items/W1/x","value":3}]`,
		`[{"op":"add","path":"/items/W2","value":{"x":0,"y":0,"w":12,"h":1}}]`,
		`[{"op":"replace","path":"/items/W1/w","value":13}]`,
		`[{"op":"remove","path":"/items/W1"},{"op":"replace","path":"/items/W1/x","value":1}]`,
		`[{"op":"add","path":"/settings/a~1b","value":{"z":[1,2,{"q":null}]}}]`,
		`[{"op":"replace","path":"/columns","value":1}]`,
		`[{"op":"replace","path":"/columns","value":48},{"op":"replace","path":"/name","value":""}]`,
		`[{"op":"add","path":"/items/nope","value":{"x":0,"y":0,"w":1,"h":1}}]`,
		`[{"op":"replace","path":"/isDefault","value":false}]`,
		`[{"op":"copy","path":"/name","from":"/columns"}]`,
		`[{"op":"replace","path":"/settings","value":{"k":"` + strings.Repeat("x", 17000) + `"}}]`,
		`[{"op":"replace","path":"/items/W1/y","value":1e400}]`,
		`[{"op":"add","path":"/items/W1/h","value":-1}]`,
		`[]`,
	}
	for i, s := range seeds {
		f.Add(s, uint8(i), i%3 == 0)
	}
	fx := newFixture(f, openSQLite(f), 20)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, opsJSON string, back uint8, force bool) {
		opsJSON = strings.NewReplacer("W1", fx.w1, "W2", fx.w2).Replace(opsJSON)
		var ops []dsync.Op
		if err := json.Unmarshal([]byte(opsJSON), &ops); err != nil {
			return
		}
		before, err := fx.svc.Layout(ctx, "alice", fx.layout.ID)
		if err != nil {
			t.Fatal(err)
		}
		base := max(before.Version-int64(back%8), 1)
		after, res, err := fx.svc.EditLayout(ctx, "alice", fx.layout.ID, dsync.Edit{Base: base, Ops: ops, Force: force, Author: "alice"})
		stored, gerr := fx.svc.Layout(ctx, "alice", fx.layout.ID)
		if gerr != nil {
			t.Fatal(gerr)
		}
		if verr := dsync.ValidateLayout(stored); verr != nil {
			t.Fatalf("stored layout is invalid after %s: %v", opsJSON, verr)
		}
		if err != nil {
			if code := dsync.ErrorCode(err); code == dsync.CodeInternal || code == dsync.CodeUnavailable {
				t.Fatalf("ops %s: unexpected %v", opsJSON, err)
			}
			if stored.Version != before.Version || !dsync.SameLayoutDoc(stored, before) {
				t.Fatalf("refused edit %s changed the layout: %+v → %+v", opsJSON, before, stored)
			}
			return
		}
		if res.Committed && (stored.Version != before.Version+1 || !dsync.SameLayoutDoc(stored, after)) {
			t.Fatalf("committed edit %s: stored %+v, returned %+v", opsJSON, stored, after)
		}
	})
}
