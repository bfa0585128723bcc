package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// layoutKind wires layouts into the generic edit pipeline.
func (s *Service) layoutKind() kind[Layout] {
	return kind[Layout]{
		name: "layout",
		// An edit of any kind (edit, PUT, PATCH, restore) needs the editor role.
		load: func(ctx context.Context, r Reader, who, id string) (Layout, error) {
			l, _, err := s.open(ctx, r, who, id, ActEdit)
			return l, err
		},
		version: func(l Layout) int64 { return l.Version },
		changes: func(ctx context.Context, r Reader, id string, after, upTo int64) ([]Change, error) {
			return r.LayoutChanges(ctx, id, after, upTo)
		},
		paths: func(ctx context.Context, r Reader, id string, after, upTo int64) ([]Change, error) {
			return r.LayoutPaths(ctx, id, after, upTo)
		},
		byEdit: func(ctx context.Context, r Reader, id, editID string) (Change, error) {
			return r.LayoutChangeByEdit(ctx, id, editID)
		},
		apply: func(l Layout, e Edit) (Layout, error) { return ApplyLayoutOps(l, e.Ops, e.server) },
		validate: func(ctx context.Context, t *tx, _ string, old, next Layout) error {
			if err := ValidateLayout(next); err != nil {
				return err
			}
			// Whoever edits, a layout places its owner's widgets only (SPEC §10).
			return checkWidgetsExist(ctx, t, next.Owner, old.Items, next.Items)
		},
		same:  SameLayoutDoc,
		diff:  DiffLayout,
		id:    func(l Layout) string { return l.ID },
		clone: Layout.Clone,
		stamp: func(l Layout, v int64, at Time) Layout {
			l.Version, l.UpdatedAt = v, at
			return l
		},
		commit: func(ctx context.Context, t *tx, l Layout, c Change) error {
			if err := t.UpdateLayout(ctx, l, c); err != nil {
				return fmt.Errorf("commit layout %s: %w", l.ID, err)
			}
			if upTo, ok := s.trimAfter(c.Version); ok {
				if err := t.TrimLayoutChanges(ctx, l.ID, upTo); err != nil {
					return err
				}
			}
			t.emit(LayoutCommitted{Owner: l.Owner, LayoutID: l.ID, Change: c})
			return nil
		},
	}
}

// checkWidgetsExist checks that every widget placed by next and not by old is one of
// owner's widgets.
func checkWidgetsExist(ctx context.Context, t *tx, owner string, old, next map[string]Item) error {
	var added []string
	for id := range next {
		if _, ok := old[id]; !ok {
			added = append(added, id)
		}
	}
	sort.Strings(added)
	for _, id := range added {
		if _, err := t.Widget(ctx, owner, id); err != nil {
			if ErrorCode(err) == CodeNotFound {
				return Invalid("items."+id, "exists", "", "widget %s does not exist", id)
			}
			return err
		}
	}
	return nil
}

// Layouts lists user's own layouts; with shared, then the layouts shared with user,
// each with its owner and user's role (SPEC §10).
func (s *Service) Layouts(ctx context.Context, user string, shared bool) ([]LayoutSummary, error) {
	if err := users(user); err != nil {
		return nil, err
	}
	ls, err := s.store.Layouts(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]LayoutSummary, len(ls))
	for i, l := range ls {
		out[i] = l.Summary()
		if shared {
			out[i] = l.SummaryFor(RoleOwner)
		}
	}
	if !shared {
		return out, nil
	}
	sh, err := s.store.SharedWith(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, m := range sh {
		out = append(out, m.Layout.SummaryFor(m.Role))
	}
	return out, nil
}

// Layout returns layout id as who may read it: their own, one shared with them, or a
// link's layout.
func (s *Service) Layout(ctx context.Context, who, id string) (Layout, error) {
	l, _, err := s.open(ctx, s.store, who, id, ActRead)
	return l, err
}

// LayoutDoc is the editable part of a layout as a client sends it whole. Nil fields are
// absent and keep their value.
type LayoutDoc struct {
	Name     *string
	Columns  *int
	Items    map[string]Item
	Settings Settings
}

// over returns base with the fields present in d.
func (d LayoutDoc) over(base Layout) Layout {
	out := base.Clone()
	if d.Name != nil {
		out.Name = *d.Name
	}
	if d.Columns != nil {
		out.Columns = *d.Columns
	}
	if d.Items != nil {
		out.Items = d.Items
	}
	if d.Settings != nil {
		out.Settings = d.Settings
	}
	return out
}

// TemplatesFor lists the built-in templates for user: a link creates no layouts, so it
// has none to choose from (forbidden).
func (s *Service) TemplatesFor(user string) ([]Template, error) {
	if err := users(user); err != nil {
		return nil, err
	}
	return s.Templates(), nil
}

// NewLayout describes a layout to create.
type NewLayout struct {
	Doc      LayoutDoc
	Template string
	Author   string
}

// CreateLayout creates a layout from a document or a built-in template (with new
// widgets for the template's tiles). The user's first layout becomes the default.
func (s *Service) CreateLayout(ctx context.Context, owner string, in NewLayout) (Layout, error) {
	if err := users(owner); err != nil {
		return Layout{}, err
	}
	if in.Template != "" {
		return s.createFromTemplate(ctx, owner, in.Template, in.Author)
	}
	if in.Doc.Name == nil {
		return Layout{}, Invalid("name", "required", "", "name is required")
	}
	doc := in.Doc
	if doc.Columns == nil {
		c := 12
		doc.Columns = &c
	}
	var out Layout
	err := s.run(ctx, func(t *tx) error {
		var err error
		out, err = s.insertLayout(ctx, t, owner, doc.over(Layout{}), in.Author)
		return err
	})
	return out, err
}

// insertLayout validates and inserts l as a new layout of owner at version 1; it becomes
// the default when owner has no layout yet.
func (s *Service) insertLayout(ctx context.Context, t *tx, owner string, l Layout, author string) (Layout, error) {
	l = l.Clone()
	if err := ValidateLayout(l); err != nil {
		return Layout{}, err
	}
	if err := checkWidgetsExist(ctx, t, owner, nil, l.Items); err != nil {
		return Layout{}, err
	}
	existing, err := t.Layouts(ctx, owner)
	if err != nil {
		return Layout{}, err
	}
	now := NewTime(s.now())
	l.ID, l.Owner, l.Version, l.CreatedAt, l.UpdatedAt = s.newID(), owner, 1, now, now
	l.IsDefault = len(existing) == 0
	c := Change{Version: 1, Ops: DiffLayout(Layout{}, l), Author: author, Time: now}
	if c.Doc, err = json.Marshal(l); err != nil {
		return Layout{}, err
	}
	if err := t.CreateLayout(ctx, l, c); err != nil {
		return Layout{}, fmt.Errorf("create layout: %w", err)
	}
	t.emit(userLayoutEvent(owner, EventLayoutCreated, l.Summary()))
	return l, nil
}

// EditLayout applies an edit (PATCH, or a WebSocket edit) under the rule of SPEC §3.
// It commits in a group with the edits that arrive meanwhile (see group.go).
func (s *Service) EditLayout(ctx context.Context, owner, id string, e Edit) (Layout, Result, error) {
	return s.editInGroup(ctx, owner, id, e)
}

// editLayout is EditLayout inside a transaction; it also announces a rename.
func (s *Service) editLayout(ctx context.Context, t *tx, owner, id string, e Edit) (Layout, Result, error) {
	out, res, err := edit(ctx, s, t, s.layoutKind(), owner, id, e)
	if err == nil && res.Committed && touchesName(e.Ops) {
		t.emit(userLayoutEvent(out.Owner, EventLayoutUpdated, out.Summary()))
	}
	return out, res, err
}

func touchesName(ops []Op) bool {
	for _, op := range ops {
		if op.Path == "/name" || op.Path == "/isDefault" {
			return true
		}
	}
	return false
}

// PutLayout turns a whole document sent with base version base into the ops that lead
// from version base to it, and runs the rule. With force, the ops lead from the head.
func (s *Service) PutLayout(ctx context.Context, owner, id string, base int64, doc LayoutDoc, e Edit) (Layout, Result, error) {
	var (
		out Layout
		res Result
	)
	err := s.run(ctx, func(t *tx) error {
		var err error
		out, res, err = s.putLayout(ctx, t, owner, id, base, doc, e)
		return err
	})
	return out, res, err
}

func (s *Service) putLayout(ctx context.Context, t *tx, owner, id string, base int64, doc LayoutDoc, e Edit) (Layout, Result, error) {
	e, err := put(ctx, s, t, s.layoutKind(), owner, id, base, doc.over, e)
	if err != nil {
		return Layout{}, Result{}, err
	}
	return s.editLayout(ctx, t, owner, id, e)
}

// DeleteLayout deletes a layout. The last layout cannot be deleted; deleting the default
// makes the most recently updated other layout the default (a new version of it).
func (s *Service) DeleteLayout(ctx context.Context, owner, id, author string) error {
	return s.run(ctx, func(t *tx) error {
		if _, _, err := s.open(ctx, t, owner, id, ActManage); err != nil {
			return err
		}
		access, err := t.Access(ctx, id)
		if err != nil {
			return err
		}
		all, err := t.Layouts(ctx, owner)
		if err != nil {
			return err
		}
		var target *Layout
		var next *Layout
		for i := range all {
			l := &all[i]
			if l.ID == id {
				target = l
				continue
			}
			if next == nil || l.UpdatedAt.After(next.UpdatedAt.Time) || (l.UpdatedAt.Equal(next.UpdatedAt.Time) && l.ID > next.ID) {
				next = l
			}
		}
		if target == nil {
			return Errorf(CodeNotFound, "layout %s not found", id)
		}
		if next == nil {
			return Errorf(CodeConflict, "a user keeps at least one layout: this is the last one")
		}
		if err := t.DeleteLayout(ctx, owner, id); err != nil {
			return fmt.Errorf("delete layout %s: %w", id, err)
		}
		t.emit(userLayoutEvent(owner, EventLayoutDeleted, target.Summary()))
		t.emit(LayoutDeleted{Layout: target.SummaryFor(RoleOwner), Members: slices.Sorted(maps.Keys(access.Users))})
		if target.IsDefault {
			_, _, err := s.editLayout(ctx, t, owner, next.ID, defaultEdit(next.Version, true, author))
			return err
		}
		return nil
	})
}

func defaultEdit(base int64, on bool, author string) Edit {
	return Edit{Base: base, Force: true, Author: author, server: true,
		Ops: []Op{{Op: OpReplace, Path: "/isDefault", Value: jsonValue(on)}}}
}

// SetDefault makes a layout the default; the previous default and this one each get a
// new version.
func (s *Service) SetDefault(ctx context.Context, owner, id, author string) (Layout, error) {
	var out Layout
	err := s.run(ctx, func(t *tx) error {
		if _, _, err := s.open(ctx, t, owner, id, ActManage); err != nil {
			return err
		}
		all, err := t.Layouts(ctx, owner)
		if err != nil {
			return err
		}
		var target *Layout
		for i := range all {
			if all[i].ID == id {
				target = &all[i]
			}
		}
		if target == nil {
			return Errorf(CodeNotFound, "layout %s not found", id)
		}
		if target.IsDefault {
			out = *target
			return nil
		}
		for _, l := range all {
			if l.IsDefault {
				if _, _, err := s.editLayout(ctx, t, owner, l.ID, defaultEdit(l.Version, false, author)); err != nil {
					return err
				}
			}
		}
		out, _, err = s.editLayout(ctx, t, owner, id, defaultEdit(target.Version, true, author))
		return err
	})
	return out, err
}

// CloneLayout copies a layout under a new name for who, not as the default: with the
// same widgets when who owns it, with copies of its widgets (who's own) when it is
// shared with who.
func (s *Service) CloneLayout(ctx context.Context, owner, id string, name *string, author string) (Layout, error) {
	if err := users(owner); err != nil {
		return Layout{}, err
	}
	var out Layout
	err := s.run(ctx, func(t *tx) error {
		src, _, err := s.open(ctx, t, owner, id, ActClone)
		if err != nil {
			return err
		}
		if src.Owner != owner {
			if src.Items, err = s.copyWidgets(ctx, t, src.Owner, owner, src.Items, author); err != nil {
				return err
			}
		}
		if name != nil {
			src.Name = *name
		} else {
			src.Name = copyName(src.Name)
		}
		out, err = s.insertLayout(ctx, t, owner, src, author)
		return err
	})
	return out, err
}

func copyName(name string) string {
	const suffix = " (copy)"
	r := []rune(name)
	if len(r)+len([]rune(suffix)) > MaxNameLen {
		r = r[:MaxNameLen-len([]rune(suffix))]
	}
	return strings.TrimSpace(string(r)) + suffix
}

// History returns up to limit (1–100, default 50) kept versions of a layout older than
// before (0: from the newest), newest first, and the value of before for the next page
// (0 when there is none).
func (s *Service) History(ctx context.Context, owner, id string, before int64, limit int) ([]Change, int64, error) {
	l, _, err := s.open(ctx, s.store, owner, id, ActRead)
	if err != nil {
		return nil, 0, err
	}
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 100)
	if before <= 0 || before > l.Version+1 {
		before = l.Version + 1
	}
	cs, err := s.store.LayoutHistory(ctx, id, before, limit+1)
	if err != nil {
		return nil, 0, err
	}
	// The store may hold a few versions older than the kept history (see kept).
	for n, c := range cs {
		if !s.kept(c.Version, l.Version) {
			cs = cs[:n]
			break
		}
	}
	var next int64
	if len(cs) > limit {
		cs = cs[:limit]
		next = cs[limit-1].Version
	}
	// A page holds at most MaxReplyOpsBytes of ops (SPEC §12), and at least one entry.
	size := 0
	for n := range cs {
		if size += OpsSize(cs[n : n+1]); size > MaxReplyOpsBytes && n > 0 {
			cs, next = cs[:n], cs[n-1].Version
			break
		}
	}
	return cs, next, nil
}

// MaxReplyOpsBytes bounds the ops of one reply: a history page, a resume (SPEC §12).
const MaxReplyOpsBytes = 1 << 20

// Restore commits the document of an old version (never its isDefault) as a forced
// edit whose history entry carries restoredFrom.
func (s *Service) Restore(ctx context.Context, owner, id string, v int64, author string) (Layout, Result, error) {
	var (
		out Layout
		res Result
	)
	err := s.run(ctx, func(t *tx) error {
		head, _, err := s.open(ctx, t, owner, id, ActEdit)
		if err != nil {
			return err
		}
		if v < 1 || v > head.Version {
			return Errorf(CodeNotFound, "layout %s has no version %d", id, v)
		}
		old, err := docAt(ctx, s, t, s.layoutKind(), head, v)
		if err != nil {
			if ErrorCode(err) == CodeVersionConflict {
				return Errorf(CodeNotFound, "version %d of layout %s is no longer kept", v, id)
			}
			return err
		}
		e := Edit{Base: head.Version, Force: true, Author: author, restoredFrom: &v, Ops: DiffLayout(head, old), derived: true}
		out, res, err = s.editLayout(ctx, t, owner, id, e)
		return err
	})
	return out, res, err
}

// BulkItem is one entry of a bulk layout update.
type BulkItem struct {
	ID   string
	Base int64
	Doc  LayoutDoc
}

// BulkResult is the outcome of one entry: the layout, or the error.
type BulkResult struct {
	ID      string
	Layout  Layout
	Rebased bool
	Err     error
}

// PutLayouts applies several whole-document updates, each on its own (a conflict in
// one does not stop the others).
func (s *Service) PutLayouts(ctx context.Context, owner string, items []BulkItem, author string) []BulkResult {
	out := make([]BulkResult, len(items))
	for i, it := range items {
		l, res, err := s.PutLayout(ctx, owner, it.ID, it.Base, it.Doc, Edit{Author: author})
		out[i] = BulkResult{ID: it.ID, Layout: l, Rebased: res.Rebased, Err: err}
	}
	return out
}

// changesPage is how many versions one read of a bounded resume takes.
const changesPage = 64

// ChangesSince returns the kept changes of a layout after version after, up to upTo,
// in order, reading a page at a time and stopping once they hold more than maxBytes
// of ops. It reports whether the result is every version after..upTo: false when the
// log no longer keeps one, or the bytes ran out (a resume then answers a reset
// snapshot, SPEC §12).
func (s *Service) ChangesSince(ctx context.Context, layoutID string, after, upTo int64, maxBytes int) ([]Change, bool, error) {
	if !s.kept(after+1, upTo) {
		return nil, false, nil
	}
	var out []Change
	size := 0
	for from := after; from < upTo; from += changesPage {
		to := min(from+changesPage, upTo)
		cs, err := s.store.LayoutChanges(ctx, layoutID, from, to)
		if err != nil {
			return nil, false, err
		}
		if int64(len(cs)) != to-from {
			return nil, false, nil
		}
		if size += OpsSize(cs); size > maxBytes {
			return nil, false, nil
		}
		for i := range cs {
			cs[i].Doc = nil // not needed by a resume; it is most of a row
		}
		out = append(out, cs...)
	}
	return out, true, nil
}

// copyWidgets makes, for user, a copy of each of from's widgets that items places,
// and returns items placing the copies instead.
func (s *Service) copyWidgets(ctx context.Context, t *tx, from, user string, items map[string]Item, author string) (map[string]Item, error) {
	out := make(map[string]Item, len(items))
	for _, id := range slices.Sorted(maps.Keys(items)) {
		w, err := t.Widget(ctx, from, id)
		if err != nil {
			return nil, err
		}
		w = w.Clone()
		c, err := s.insertWidget(ctx, t, user, w, author)
		if err != nil {
			return nil, err
		}
		out[c.ID] = items[id]
	}
	return out, nil
}
