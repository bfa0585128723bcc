package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	dsync "github.com/dashsync/dashsync/sync"
)

// fuzzRetention is the op log the fuzzed service keeps: small, so that bases past it
// are reached.
const fuzzRetention = 20

// fuzzCheckpoint is the fuzzed op log's checkpoint interval: small, so that most
// reads of an old version replay ops, and trimming runs often.
const fuzzCheckpoint = 6

// ruleModel is the fuzz test's own record of the layout: every committed version's ops
// and document, and the editIds committed, kept apart from the store so that the
// store and the pipeline are checked against it.
type ruleModel struct {
	head    dsync.Layout
	ops     map[int64][]dsync.Op // by version
	editIDs map[string]int64     // editId → the version it committed
	ids     []string             // editIds, in commit order
}

// overlapsNaive is the overlap rule of SPEC §3 written out plainly: one path is a
// segment-wise prefix of the other.
func overlapsNaive(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := range min(len(as), len(bs)) {
		if as[i] != bs[i] {
			return false
		}
	}
	return true
}

// expect is what the rule says an edit must give, computed from the model alone:
// an error code ("" for an ack), the conflicts, and the document after.
type expect struct {
	code      dsync.Code
	conflicts []dsync.Conflict
	version   int64 // the acknowledged version
	doc       dsync.Layout
	commits   bool
}

func (m *ruleModel) expect(e dsync.Edit, widgets map[string]bool) expect {
	v := m.head.Version
	if err := dsync.CheckOps(e.Ops); err != nil {
		return expect{code: dsync.ErrorCode(err)}
	}
	if e.EditID != "" {
		// A resend is recognised while the log keeps its version; past that it is
		// a new edit.
		if orig, ok := m.editIDs[e.EditID]; ok && orig > v-fuzzRetention {
			return expect{version: orig, doc: m.head}
		}
	}
	if (e.Base < 1 && !e.Force) || e.Base > v {
		return expect{code: dsync.CodeValidation}
	}
	if !e.Force && e.Base < v {
		if e.Base < v-fuzzRetention {
			cs := make([]dsync.Conflict, len(e.Ops))
			for i, op := range e.Ops {
				cs[i] = dsync.Conflict{Op: i, Path: op.Path, Version: e.Base, Reason: dsync.ReasonBaseTooOld}
			}
			if len(cs) == 0 { // no ops: the base alone is named
				cs = []dsync.Conflict{{Version: e.Base, Reason: dsync.ReasonBaseTooOld}}
			}
			return expect{code: dsync.CodeVersionConflict, conflicts: cs}
		}
		var cs []dsync.Conflict
		for i, op := range e.Ops {
		latest:
			for w := v; w > e.Base; w-- {
				for _, c := range m.ops[w] {
					if overlapsNaive(c.Path, op.Path) {
						cs = append(cs, dsync.Conflict{Op: i, Path: op.Path, Version: w, Reason: dsync.ReasonOverlap})
						break latest
					}
				}
			}
		}
		if len(cs) > 0 {
			return expect{code: dsync.CodeVersionConflict, conflicts: cs}
		}
	}
	next, err := dsync.ApplyLayoutOps(m.head, e.Ops, false)
	if err == nil {
		err = dsync.ValidateLayout(next)
	}
	if err == nil {
		for id := range next.Items {
			if _, was := m.head.Items[id]; !was && !widgets[id] {
				err = dsync.Invalid("items", "exists", "", "no such widget")
			}
		}
	}
	if err != nil {
		return expect{code: dsync.ErrorCode(err)}
	}
	if dsync.SameLayoutDoc(m.head, next) {
		return expect{version: v, doc: m.head}
	}
	return expect{version: v + 1, doc: next, commits: true}
}

func (m *ruleModel) commit(e dsync.Edit, doc dsync.Layout) {
	m.head = doc
	m.ops[doc.Version] = e.Ops
	if e.EditID != "" {
		m.editIDs[e.EditID] = doc.Version
		m.ids = append(m.ids, e.EditID)
	}
}

// checkLog replays the kept op log from the checkpoint the oldest kept version
// replays from, and compares it with the stored layout and the model: every kept
// version is there, only checkpoints carry the document, and no more than one
// checkpoint interval older than the kept history is left untrimmed.
func checkLog(t *testing.T, st dsync.Store, m *ruleModel, stored dsync.Layout) {
	t.Helper()
	ctx := context.Background()
	oldest := max(stored.Version-fuzzRetention+1, 1)
	from := max(oldest-oldest%fuzzCheckpoint, 1)
	all, err := st.LayoutChanges(ctx, stored.ID, 0, stored.Version)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || all[0].Version > from || all[0].Version < from-2*fuzzCheckpoint {
		t.Fatalf("the log starts at version %d; the kept history %d…%d replays from %d", all[0].Version, oldest, stored.Version, from)
	}
	var cs []dsync.Change
	for _, c := range all {
		if (c.Doc != nil) != (c.Version == 1 || c.Version%fuzzCheckpoint == 0) {
			t.Fatalf("version %d: document kept %v, want only at checkpoints", c.Version, c.Doc != nil)
		}
		if c.Version >= from {
			cs = append(cs, c)
		}
	}
	if int64(len(cs)) != stored.Version-from+1 {
		t.Fatalf("the log keeps %d of versions %d…%d", len(cs), from, stored.Version)
	}
	var doc dsync.Layout
	if err := json.Unmarshal(cs[0].Doc, &doc); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if c.Version != from+int64(i) {
			t.Fatalf("the log has version %d where %d belongs", c.Version, from+int64(i))
		}
		if i == 0 {
			continue
		}
		if doc, err = dsync.ApplyLayoutOps(doc, c.Ops, true); err != nil {
			t.Fatalf("replaying version %d: %v", c.Version, err)
		}
		if want, ok := m.ops[c.Version]; ok && fmt.Sprint(want) != fmt.Sprint(c.Ops) {
			t.Fatalf("version %d: the log has ops %v, the edit had %v", c.Version, c.Ops, want)
		}
	}
	if !dsync.SameLayoutDoc(doc, stored) {
		t.Fatalf("replaying the log gives %+v, the store has %+v", doc, stored)
	}
	if !dsync.SameLayoutDoc(m.head, stored) || m.head.Version != stored.Version {
		t.Fatalf("the store has %+v at v%d, the model %+v at v%d", stored, stored.Version, m.head, m.head.Version)
	}
}

// FuzzEditRule feeds random edits (ops, a base up to 31 versions back, force, and
// sometimes an editId, new or resent) to the edit pipeline, each against the outcome
// the rule of SPEC §3 gives, computed by the test from its own record of every
// version: an ack of the right version (a resend gets the original one), a conflict
// naming exactly the overlapping ops and the latest version each overlaps, base_too_old
// past the kept log, or a refusal for invalid input; and after every step the kept op
// log, replayed from its oldest snapshot, gives the stored layout.
func FuzzEditRule(f *testing.F) {
	seeds := []struct {
		ops   string
		back  uint8
		force bool
		id    uint8
	}{
		{`[{"op":"replace","path":"/items/W1/x","value":3}]`, 0, false, 0},
		{`[{"op":"replace","path":"/items/W1/x","value":2}]`, 5, false, 1}, // overlaps an older version than the newest
		{`[{"op":"replace","path":"/items/W2/y","value":9}]`, 3, false, 1}, // rebased past moves of W1
		{`[{"op":"replace","path":"/items/W1","value":{"x":0,"y":0,"w":1,"h":1}}]`, 2, false, 0},
		{`[{"op":"replace","path":"/settings/k3","value":1}]`, 4, false, 0},   // a key written two versions back
		{`[{"op":"add","path":"/settings","value":{"z":1}}]`, 6, false, 0},    // a prefix of every key
		{`[{"op":"replace","path":"/name","value":"renamed"}]`, 25, false, 0}, // past the log: base_too_old
		{`[{"op":"replace","path":"/name","value":"forced"}]`, 25, true, 0},   // force skips the rule
		{`[{"op":"replace","path":"/items/W2/h","value":2}]`, 18, false, 2},   // far behind: checked outside the transaction
		{`[{"op":"replace","path":"/items/W1/x","value":1}]`, 0, false, 200},  // resend of a committed editId
		{`[{"op":"add","path":"/items/W2","value":{"x":0,"y":0,"w":12,"h":1}}]`, 0, false, 0},
		{`[{"op":"replace","path":"/items/W1/w","value":13}]`, 0, false, 0},
		{`[{"op":"remove","path":"/items/W1"},{"op":"replace","path":"/items/W1/x","value":1}]`, 0, false, 0},
		{`[{"op":"add","path":"/settings/a~1b","value":{"z":[1,2,{"q":null}]}}]`, 1, false, 0},
		{`[{"op":"replace","path":"/columns","value":1}]`, 0, false, 0},
		{`[{"op":"replace","path":"/columns","value":48},{"op":"replace","path":"/name","value":""}]`, 0, false, 0},
		{`[{"op":"add","path":"/items/nope","value":{"x":0,"y":0,"w":1,"h":1}}]`, 0, false, 0},
		{`[{"op":"replace","path":"/isDefault","value":false}]`, 0, false, 0},
		{`[{"op":"copy","path":"/name","from":"/columns"}]`, 0, false, 0},
		{`[{"op":"replace","path":"/settings","value":{"k":"` + strings.Repeat("x", 17000) + `"}}]`, 0, false, 0},
		{`[{"op":"replace","path":"/items/W1/y","value":1e400}]`, 0, false, 0},
		{`[{"op":"add","path":"/items/W1/h","value":-1}]`, 0, false, 0},
		{`[]`, 3, false, 0},
		{`[{"op":"replace","path":"/name","value":"z"}]`, 40, false, 0}, // base before version 1
	}
	for _, s := range seeds {
		f.Add(s.ops, s.back, s.force, s.id)
	}
	st := openSQLite(f)
	fx := newFixtureWith(f, st, dsync.Options{Retention: fuzzRetention, CheckpointEvery: fuzzCheckpoint})
	ctx := context.Background()
	m := &ruleModel{head: fx.layout, ops: map[int64][]dsync.Op{}, editIDs: map[string]int64{}}
	widgets := map[string]bool{fx.w1: true, fx.w2: true}
	// A history of 30 versions touching items and settings, so that bases reach
	// overlapping versions, non-overlapping ones and the end of the log.
	for i := range 30 {
		var o dsync.Op
		switch i % 3 {
		case 0:
			o = rep("/items/"+fx.w1+"/x", i%6)
		case 1:
			o = dsync.Op{Op: "add", Path: fmt.Sprintf("/settings/k%d", i%5), Value: json.RawMessage(fmt.Sprint(i))}
		default:
			o = rep("/items/"+fx.w1+"/y", i)
		}
		e := dsync.Edit{Base: m.head.Version, Ops: []dsync.Op{o}, Author: "alice", EditID: uuid.NewString()}
		l, res, err := fx.svc.EditLayout(ctx, "alice", fx.layout.ID, e)
		if err != nil {
			f.Fatal(err)
		}
		if res.Committed {
			m.commit(e, l)
		}
	}
	f.Fuzz(func(t *testing.T, opsJSON string, back uint8, force bool, idSel uint8) {
		opsJSON = strings.NewReplacer("W1", fx.w1, "W2", fx.w2).Replace(opsJSON)
		var ops []dsync.Op
		if err := json.Unmarshal([]byte(opsJSON), &ops); err != nil {
			return
		}
		e := dsync.Edit{Base: m.head.Version - int64(back%48), Ops: ops, Force: force, Author: "alice"}
		switch {
		case idSel >= 128 && len(m.ids) > 0:
			e.EditID = m.ids[int(idSel)%len(m.ids)] // a resend
		case idSel > 0:
			e.EditID = uuid.NewString()
		}
		want := m.expect(e, widgets)
		after, res, err := fx.svc.EditLayout(ctx, "alice", fx.layout.ID, e)
		stored, gerr := fx.svc.Layout(ctx, "alice", fx.layout.ID)
		if gerr != nil {
			t.Fatal(gerr)
		}
		if verr := dsync.ValidateLayout(stored); verr != nil {
			t.Fatalf("stored layout is invalid after %s: %v", opsJSON, verr)
		}
		if got := dsync.ErrorCode(err); got != want.code {
			t.Fatalf("edit %s base %d (head %d) force %v: got %v, want code %q", opsJSON, e.Base, m.head.Version, force, err, want.code)
		}
		if want.code == dsync.CodeVersionConflict {
			var de *dsync.Error
			errors.As(err, &de)
			if fmt.Sprint(de.Conflicts) != fmt.Sprint(want.conflicts) {
				t.Fatalf("edit %s base %d (head %d): conflicts %v, want %v", opsJSON, e.Base, m.head.Version, de.Conflicts, want.conflicts)
			}
		}
		if err == nil {
			if res.Version != want.version {
				t.Fatalf("edit %s base %d: acknowledged version %d, want %d", opsJSON, e.Base, res.Version, want.version)
			}
			if want.commits {
				if !res.Committed || !dsync.SameLayoutDoc(after, want.doc) {
					t.Fatalf("edit %s: committed %v %+v, want %+v", opsJSON, res.Committed, after, want.doc)
				}
				m.commit(e, stored)
			} else if res.Committed {
				t.Fatalf("edit %s committed version %d, want none", opsJSON, res.Version)
			}
		}
		checkLog(t, st, m, stored)
	})
}
