package sync

import (
	"encoding/json"
	"maps"
	"time"
)

// Time is a timestamp that encodes as RFC 3339 UTC with millisecond precision.
type Time struct{ time.Time }

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// NewTime truncates t to milliseconds in UTC.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// MarshalJSON encodes the time as RFC 3339 UTC with milliseconds.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(timeLayout) + `"`), nil
}

// UnmarshalJSON accepts any RFC 3339 time, or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = NewTime(p)
	return nil
}

// Item places one widget on a layout's grid.
type Item struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Settings is a free JSON object. Values are kept in canonical form (compact, object
// keys sorted) so that equal values have equal bytes.
type Settings map[string]json.RawMessage

// Layout is an arrangement of the owner's widgets on a grid.
type Layout struct {
	ID        string          `json:"id"`
	Owner     string          `json:"-"`
	Name      string          `json:"name"`
	IsDefault bool            `json:"isDefault"`
	Columns   int             `json:"columns"`
	Items     map[string]Item `json:"items"`
	Settings  Settings        `json:"settings"`
	Version   int64           `json:"version"`
	CreatedAt Time            `json:"createdAt"`
	UpdatedAt Time            `json:"updatedAt"`
}

// Clone returns a copy of l that shares no maps with it.
func (l Layout) Clone() Layout {
	l.Items = maps.Clone(l.Items)
	if l.Items == nil {
		l.Items = map[string]Item{}
	}
	l.Settings = maps.Clone(l.Settings)
	if l.Settings == nil {
		l.Settings = Settings{}
	}
	return l
}

// LayoutSummary is the short form of a layout used in lists and user events.
type LayoutSummary struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	IsDefault bool   `json:"isDefault"`
	Version   int64  `json:"version"`
	UpdatedAt Time   `json:"updatedAt"`
	// Owner is the layout's owner; Role the role of the user the summary is for
	// (SPEC §10), when it is known.
	Owner string `json:"owner,omitempty"`
	Role  Role   `json:"role,omitempty"`
}

// Summary returns the short form of l.
func (l Layout) Summary() LayoutSummary {
	return LayoutSummary{ID: l.ID, Name: l.Name, IsDefault: l.IsDefault, Version: l.Version, UpdatedAt: l.UpdatedAt}
}

// SummaryFor is l's short form for a user whose role on it is role.
func (l Layout) SummaryFor(role Role) LayoutSummary {
	out := l.Summary()
	out.Owner, out.Role = l.Owner, role
	return out
}

// Source says where a widget's data comes from.
type Source struct {
	Kind           string          `json:"kind"`
	URL            string          `json:"url,omitempty"`
	RefreshSeconds int             `json:"refreshSeconds"`
	TTLSeconds     int             `json:"ttlSeconds"`
	Data           json.RawMessage `json:"data,omitempty"`
}

// Source defaults (SPEC §2).
const (
	DefaultRefreshSeconds = 60
	DefaultTTLSeconds     = 3600
)

// Widget is a data tile the user owns; layouts place it.
type Widget struct {
	ID        string   `json:"id"`
	Owner     string   `json:"-"`
	Type      string   `json:"type"`
	Title     string   `json:"title"`
	Source    Source   `json:"source"`
	Settings  Settings `json:"settings"`
	Version   int64    `json:"version"`
	CreatedAt Time     `json:"createdAt"`
	UpdatedAt Time     `json:"updatedAt"`
}

// Clone returns a copy of w that shares no maps with it.
func (w Widget) Clone() Widget {
	w.Settings = maps.Clone(w.Settings)
	if w.Settings == nil {
		w.Settings = Settings{}
	}
	return w
}

// Dashboard is the user's own state.
type Dashboard struct {
	Owner           string          `json:"-"`
	CurrentLayoutID *string         `json:"currentLayoutId"`
	Preferences     json.RawMessage `json:"preferences"`
	Version         int64           `json:"version"`
}

// Change is one committed version of a layout or widget, as kept in its op log.
type Change struct {
	Version      int64  `json:"version"`
	Ops          []Op   `json:"ops"`
	Author       string `json:"author"`
	Client       string `json:"client,omitempty"`
	EditID       string `json:"editId,omitempty"`
	RestoredFrom *int64 `json:"restoredFrom,omitempty"`
	Time         Time   `json:"time"`

	// Rebased records whether the edit was rebased, so a resent editId gets the
	// original acknowledgement.
	Rebased bool `json:"-"`
	// Doc is the whole object after this version (JSON), for PUT diffs and restore.
	Doc json.RawMessage `json:"-"`
}

// WidgetData is what a source produced for a widget.
type WidgetData struct {
	WidgetID  string          `json:"widgetId"`
	Data      json.RawMessage `json:"data"`
	FetchedAt Time            `json:"fetchedAt"`
	ExpiresAt Time            `json:"expiresAt"`
	Stale     bool            `json:"stale"`
}
