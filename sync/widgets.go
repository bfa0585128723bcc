package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// widgetKind wires widgets into the generic edit pipeline.
func (s *Service) widgetKind() kind[Widget] {
	return kind[Widget]{
		name:    "widget",
		load:    func(ctx context.Context, r Reader, owner, id string) (Widget, error) { return r.Widget(ctx, owner, id) },
		version: func(w Widget) int64 { return w.Version },
		changes: func(ctx context.Context, r Reader, id string, after, upTo int64) ([]Change, error) {
			return r.WidgetChanges(ctx, id, after, upTo)
		},
		paths: func(ctx context.Context, r Reader, id string, after, upTo int64) ([]Change, error) {
			return r.WidgetPaths(ctx, id, after, upTo)
		},
		byEdit: func(ctx context.Context, r Reader, id, editID string) (Change, error) {
			return r.WidgetChangeByEdit(ctx, id, editID)
		},
		apply: func(w Widget, e Edit) (Widget, error) {
			next, err := ApplyWidgetOps(w, e.Ops)
			if err != nil {
				return w, err
			}
			return next, normalizeSource(&next.Source)
		},
		validate: func(ctx context.Context, _ *tx, _ string, old, next Widget) error {
			return s.validateWidget(ctx, old, next)
		},
		same:  SameWidgetDoc,
		diff:  DiffWidget,
		id:    func(w Widget) string { return w.ID },
		clone: Widget.Clone,
		stamp: func(w Widget, v int64, at Time) Widget {
			w.Version, w.UpdatedAt = v, at
			return w
		},
		commit: func(ctx context.Context, t *tx, w Widget, c Change) error {
			if err := t.UpdateWidget(ctx, w, c); err != nil {
				return fmt.Errorf("commit widget %s: %w", w.ID, err)
			}
			if upTo, ok := s.trimAfter(c.Version); ok {
				if err := t.TrimWidgetChanges(ctx, w.ID, upTo); err != nil {
					return err
				}
			}
			t.emit(WidgetChanged{Widget: w})
			return nil
		},
	}
}

// validateWidget checks next; its source is checked only when it changed (so a widget
// whose host stopped resolving can still be renamed).
func (s *Service) validateWidget(ctx context.Context, old, next Widget) error {
	if err := ValidateWidget(next); err != nil {
		return err
	}
	if old.Source.Kind == next.Source.Kind && old.Source.URL == next.Source.URL && string(old.Source.Data) == string(next.Source.Data) && old.ID != "" {
		return nil
	}
	return s.sources.CheckSource(ctx, next.Source)
}

// normalizeSource fills the source defaults and puts static data in canonical form.
func normalizeSource(src *Source) error {
	if src.RefreshSeconds == 0 {
		src.RefreshSeconds = DefaultRefreshSeconds
	}
	if src.TTLSeconds == 0 {
		src.TTLSeconds = DefaultTTLSeconds
	}
	if len(src.Data) > 0 {
		c, err := Canonical(src.Data)
		if err != nil {
			return Invalid("source.data", "json", "", "source.data is not valid JSON")
		}
		src.Data = c
	}
	return nil
}

// WidgetDoc is the editable part of a widget as a client sends it whole. Nil fields are
// absent and keep their value.
type WidgetDoc struct {
	Type     *string
	Title    *string
	Source   *Source
	Settings Settings
}

func (d WidgetDoc) over(base Widget) Widget {
	out := base.Clone()
	if d.Type != nil {
		out.Type = *d.Type
	}
	if d.Title != nil {
		out.Title = *d.Title
	}
	if d.Source != nil {
		// Defaults are filled before the diff, so an omitted refreshSeconds is not
		// recorded as a change to 0. Bad data is left for validation to refuse.
		src := *d.Source
		_ = normalizeSource(&src)
		out.Source = src
	}
	if d.Settings != nil {
		out.Settings = d.Settings
	}
	return out
}

// Widgets lists owner's widgets.
func (s *Service) Widgets(ctx context.Context, owner string) ([]Widget, error) {
	if err := users(owner); err != nil {
		return nil, err
	}
	return s.store.Widgets(ctx, owner)
}

// Widget returns widget id if who may read its data (ActReadData): see WidgetFor.
func (s *Service) Widget(ctx context.Context, who, id string) (Widget, error) {
	return s.WidgetFor(ctx, who, id, ActReadData)
}

// WidgetFor returns widget id if who may do a with it: who's own widget (any action),
// or one placed on a layout shared with who, or on a link's layout, where who's best
// role over those layouts permits a (SPEC §10). Without any such layout the widget is
// not_found; with a role that does not permit a, forbidden.
func (s *Service) WidgetFor(ctx context.Context, who, id string, a Action) (Widget, error) {
	w, role, err := s.WidgetWithRole(ctx, who, id)
	if err != nil {
		return Widget{}, err
	}
	if err := Allow(role, IsLink(who), a, "widget", id); err != nil {
		return Widget{}, err
	}
	return w, nil
}

// WidgetWithRole returns widget id with who's role on it: RoleOwner for who's own
// widget, else the best role over the layouts shared with who (or the link's layout)
// that place it; not_found without any.
func (s *Service) WidgetWithRole(ctx context.Context, who, id string) (Widget, Role, error) {
	if !IsLink(who) {
		w, err := s.ownWidget(ctx, who, id)
		if ErrorCode(err) != CodeNotFound {
			return w, RoleOwner, err
		}
	}
	reach, err := s.reach(ctx, who)
	if err != nil {
		return Widget{}, "", err
	}
	return s.reachedRole(ctx, reach, id)
}

// WidgetResult is one widget of WidgetsFor: the widget, or why who may not have it.
type WidgetResult struct {
	Widget Widget
	Err    error
}

// WidgetsFor is WidgetFor for each of ids, in order, reading who's widgets and the
// layouts shared with who once for all of them.
func (s *Service) WidgetsFor(ctx context.Context, who string, ids []string, a Action) ([]WidgetResult, error) {
	mine := map[string]Widget{}
	if !IsLink(who) {
		ws, err := s.store.Widgets(ctx, who)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			mine[w.ID] = w
		}
	}
	out := make([]WidgetResult, len(ids))
	var reach []SharedLayout
	looked := false
	for i, id := range ids {
		if w, ok := mine[id]; ok {
			out[i].Widget = w
			continue
		}
		if !looked {
			var err error
			if reach, err = s.reach(ctx, who); err != nil {
				return nil, err
			}
			looked = true
		}
		out[i].Widget, out[i].Err = s.reached(ctx, who, reach, id, a)
	}
	return out, nil
}

// reach returns the layouts through which who may reach widgets not their own: the
// layouts shared with a user, or a link's layout (none once it is revoked or expired).
func (s *Service) reach(ctx context.Context, who string) ([]SharedLayout, error) {
	if !IsLink(who) {
		return s.store.SharedWith(ctx, who)
	}
	lk, err := s.liveLink(ctx, s.store, strings.TrimPrefix(who, LinkUserPrefix))
	if ErrorCode(err) == CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l, _, err := s.store.LayoutAs(ctx, lk.LayoutID, who)
	if ErrorCode(err) == CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []SharedLayout{{Layout: l, Role: lk.Role}}, nil
}

// reached returns widget id if one of the layouts of reach places it with a role (the
// best of them) that permits a.
func (s *Service) reached(ctx context.Context, who string, reach []SharedLayout, id string, a Action) (Widget, error) {
	w, role, err := s.reachedRole(ctx, reach, id)
	if err != nil {
		return Widget{}, err
	}
	if err := Allow(role, IsLink(who), a, "widget", id); err != nil {
		return Widget{}, err
	}
	return w, nil
}

// reachedRole returns widget id with the best role of the layouts of reach that
// place it; not_found when none does.
func (s *Service) reachedRole(ctx context.Context, reach []SharedLayout, id string) (Widget, Role, error) {
	var (
		best  Role
		owner string
	)
	for _, c := range reach {
		if _, ok := c.Layout.Items[id]; ok && c.Role.rank() > best.rank() {
			best, owner = c.Role, c.Layout.Owner
		}
	}
	if best == "" {
		return Widget{}, "", Errorf(CodeNotFound, "widget %s not found", id)
	}
	w, err := s.ownWidget(ctx, owner, id)
	return w, best, err
}

// ownWidget returns one of owner's widgets.
func (s *Service) ownWidget(ctx context.Context, owner, id string) (Widget, error) {
	if s.widgets == nil {
		return s.store.Widget(ctx, owner, id)
	}
	w, gen, ok := s.widgets.get(owner, id)
	if ok {
		return w, nil
	}
	w, err := s.store.Widget(ctx, owner, id)
	if err == nil {
		s.widgets.put(w, gen)
	}
	return w, err
}

// CreateWidget creates a widget at version 1.
func (s *Service) CreateWidget(ctx context.Context, owner string, doc WidgetDoc, author string) (Widget, error) {
	if err := users(owner); err != nil {
		return Widget{}, err
	}
	if doc.Type == nil {
		return Widget{}, Invalid("type", "required", "", "type is required")
	}
	if doc.Source == nil {
		return Widget{}, Invalid("source", "required", "", "source is required")
	}
	var out Widget
	err := s.run(ctx, func(t *tx) error {
		var err error
		out, err = s.insertWidget(ctx, t, owner, doc.over(Widget{}), author)
		return err
	})
	return out, err
}

func (s *Service) insertWidget(ctx context.Context, t *tx, owner string, w Widget, author string) (Widget, error) {
	w = w.Clone()
	if err := normalizeSource(&w.Source); err != nil {
		return Widget{}, err
	}
	if err := s.validateWidget(ctx, Widget{}, w); err != nil {
		return Widget{}, err
	}
	now := NewTime(s.now())
	w.ID, w.Owner, w.Version, w.CreatedAt, w.UpdatedAt = s.newID(), owner, 1, now, now
	c := Change{Version: 1, Ops: DiffWidget(Widget{}, w), Author: author, Time: now}
	var err error
	if c.Doc, err = json.Marshal(w); err != nil {
		return Widget{}, err
	}
	if err := t.CreateWidget(ctx, w, c); err != nil {
		return Widget{}, fmt.Errorf("create widget: %w", err)
	}
	t.emit(userWidgetEvent(owner, EventWidgetCreated, w))
	return w, nil
}

// UpdateWidget applies a whole widget definition sent with base version base under
// the rule of SPEC §3 (paths /title, /type, /source/<key>, /settings/<key>).
func (s *Service) UpdateWidget(ctx context.Context, owner, id string, base int64, doc WidgetDoc, e Edit) (Widget, Result, error) {
	if _, err := s.WidgetFor(ctx, owner, id, ActOwnWidget); err != nil {
		return Widget{}, Result{}, err
	}
	var (
		out Widget
		res Result
	)
	err := s.run(ctx, func(t *tx) error {
		k := s.widgetKind()
		e, err := put(ctx, s, t, k, owner, id, base, doc.over, e)
		if err != nil {
			return err
		}
		out, res, err = edit(ctx, s, t, k, owner, id, e)
		return err
	})
	return out, res, err
}

// RemoveWidget deletes a widget and takes it out of every layout that places it (each
// such layout gets a new version).
func (s *Service) RemoveWidget(ctx context.Context, owner, id, author string) error {
	if _, err := s.WidgetFor(ctx, owner, id, ActOwnWidget); err != nil {
		return err
	}
	return s.run(ctx, func(t *tx) error {
		w, err := t.Widget(ctx, owner, id)
		if err != nil {
			return err
		}
		ls, err := t.Layouts(ctx, owner)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if _, ok := l.Items[id]; !ok {
				continue
			}
			e := Edit{Base: l.Version, Force: true, Author: author, Ops: []Op{{Op: OpRemove, Path: PathOf("items", id)}}}
			if _, _, err := s.editLayout(ctx, t, owner, l.ID, e); err != nil {
				return err
			}
		}
		if err := t.DeleteWidget(ctx, owner, id); err != nil {
			return fmt.Errorf("delete widget %s: %w", id, err)
		}
		t.emit(userWidgetEvent(owner, EventWidgetDeleted, w))
		return nil
	})
}
