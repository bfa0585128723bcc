package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// DashboardView is the user's dashboard with its current (else default) layout and
// the widgets that layout places, ordered by id.
type DashboardView struct {
	Dashboard Dashboard
	Layout    *Layout
	Widgets   []Widget
}

// Dashboard returns owner's dashboard view.
func (s *Service) Dashboard(ctx context.Context, owner string) (DashboardView, error) {
	if err := users(owner); err != nil {
		return DashboardView{}, err
	}
	return s.dashboardView(ctx, s.store, owner)
}

func (s *Service) dashboardView(ctx context.Context, r Reader, owner string) (DashboardView, error) {
	d, err := r.Dashboard(ctx, owner)
	if err != nil {
		return DashboardView{}, err
	}
	v := DashboardView{Dashboard: d, Widgets: []Widget{}}
	ls, err := r.Layouts(ctx, owner)
	if err != nil {
		return DashboardView{}, err
	}
	for i := range ls {
		if d.CurrentLayoutID != nil && ls[i].ID == *d.CurrentLayoutID {
			v.Layout = &ls[i]
			break
		}
		if ls[i].IsDefault && v.Layout == nil {
			v.Layout = &ls[i]
		}
	}
	if d.CurrentLayoutID != nil && (v.Layout == nil || v.Layout.ID != *d.CurrentLayoutID) {
		// The current layout is not owner's: one shared with them, unless that ended.
		l, role, err := r.LayoutAs(ctx, *d.CurrentLayoutID, owner)
		switch {
		case err == nil && role.rank() > 0:
			v.Layout = &l
		case err != nil && ErrorCode(err) != CodeNotFound:
			return DashboardView{}, err
		}
	}
	if v.Layout == nil {
		return v, nil
	}
	// A shared layout places its owner's widgets.
	ws, err := r.Widgets(ctx, v.Layout.Owner)
	if err != nil {
		return DashboardView{}, err
	}
	for _, w := range ws {
		if _, ok := v.Layout.Items[w.ID]; ok {
			v.Widgets = append(v.Widgets, w)
		}
	}
	slices.SortFunc(v.Widgets, func(a, b Widget) int { return strings.Compare(a.ID, b.ID) })
	return v, nil
}

// DashboardPatch updates parts of the dashboard state. Nil fields are absent.
type DashboardPatch struct {
	// Preferences is an RFC 7396 merge patch (PUT) or the whole object (POST, Replace).
	Preferences json.RawMessage
	Replace     bool
	// SetCurrent says whether CurrentLayoutID (nil: none) is to be written.
	SetCurrent      bool
	CurrentLayoutID *string
	// Version, when set, must equal the stored version.
	Version *int64
}

// UpdateDashboard applies a patch to owner's dashboard state.
func (s *Service) UpdateDashboard(ctx context.Context, owner string, p DashboardPatch) (Dashboard, error) {
	if err := users(owner); err != nil {
		return Dashboard{}, err
	}
	var out Dashboard
	err := s.run(ctx, func(t *tx) error {
		var err error
		out, err = s.updateDashboard(ctx, t, owner, p)
		return err
	})
	return out, err
}

func (s *Service) updateDashboard(ctx context.Context, t *tx, owner string, p DashboardPatch) (Dashboard, error) {
	d, err := t.Dashboard(ctx, owner)
	if err != nil {
		return Dashboard{}, err
	}
	if p.Version != nil && *p.Version != d.Version {
		return Dashboard{}, conflictError(d, d.Version, nil, "dashboard version %d is not the current version %d", *p.Version, d.Version)
	}
	next := d
	next.Owner = owner
	if p.Preferences != nil {
		prefs, err := applyPreferences(d.Preferences, p.Preferences, p.Replace)
		if err != nil {
			return Dashboard{}, err
		}
		next.Preferences = prefs
	}
	if p.SetCurrent {
		if p.CurrentLayoutID != nil {
			if _, _, err := s.open(ctx, t, owner, *p.CurrentLayoutID, ActRead); err != nil {
				if ErrorCode(err) == CodeNotFound {
					return Dashboard{}, Invalid("currentLayoutId", "exists", "", "layout %s does not exist", *p.CurrentLayoutID)
				}
				return Dashboard{}, err
			}
		}
		next.CurrentLayoutID = p.CurrentLayoutID
	}
	if string(next.Preferences) == string(d.Preferences) && samePtr(next.CurrentLayoutID, d.CurrentLayoutID) {
		return d, nil
	}
	if len(next.Preferences) > MaxSettingsSize {
		return Dashboard{}, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("preferences must be at most %d bytes", MaxSettingsSize),
			Details: []FieldError{{Field: "preferences", Rule: "max", Param: fmt.Sprint(MaxSettingsSize)}}}
	}
	next.Version = d.Version + 1
	if err := t.PutDashboard(ctx, next); err != nil {
		return Dashboard{}, fmt.Errorf("save dashboard: %w", err)
	}
	t.emit(UserEvent{Owner: owner, Name: EventDashboardUpdated, Dashboard: &next})
	return next, nil
}

func samePtr(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func applyPreferences(cur, patch json.RawMessage, replace bool) (json.RawMessage, error) {
	var p any
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, Invalid("preferences", "json", "", "preferences must be JSON")
	}
	if _, ok := p.(map[string]any); !ok {
		return nil, Invalid("preferences", "object", "", "preferences must be a JSON object")
	}
	if !replace {
		var c any = map[string]any{}
		if len(cur) > 0 {
			if err := json.Unmarshal(cur, &c); err != nil {
				return nil, fmt.Errorf("decode stored preferences: %w", err)
			}
		}
		p = MergePatch(c, p)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return Canonical(b)
}

// MergePatch applies an RFC 7396 merge patch to target and returns the result.
func MergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	out := make(map[string]any, len(tm))
	for k, v := range tm {
		out[k] = v
	}
	for k, v := range pm {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = MergePatch(out[k], v)
	}
	return out
}

// SaveDashboard is POST /api/dashboard: a layout written whole (with its base version)
// and the dashboard state, atomically: if the layout edit conflicts, nothing is saved.
type SaveDashboard struct {
	LayoutID string
	Base     int64
	Layout   *LayoutDoc
	Patch    DashboardPatch
}

// Save applies a SaveDashboard and returns the resulting view and the layout's result.
func (s *Service) Save(ctx context.Context, owner string, in SaveDashboard, e Edit) (DashboardView, Result, error) {
	if err := users(owner); err != nil {
		return DashboardView{}, Result{}, err
	}
	var (
		view DashboardView
		res  Result
	)
	err := s.run(ctx, func(t *tx) error {
		if in.Layout != nil {
			var err error
			if _, res, err = s.putLayout(ctx, t, owner, in.LayoutID, in.Base, *in.Layout, e); err != nil {
				return err
			}
		}
		if _, err := s.updateDashboard(ctx, t, owner, in.Patch); err != nil {
			return err
		}
		var err error
		view, err = s.dashboardView(ctx, t, owner)
		return err
	})
	return view, res, err
}
