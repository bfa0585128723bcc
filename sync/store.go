package sync

import "context"

// Reader reads objects. Every read of an object is scoped to its owner: another owner's
// object, like a missing one, is a *Error with CodeNotFound. A backend that cannot be
// reached gives CodeUnavailable; a cancelled context gives the context's error.
type Reader interface {
	// Layout returns one layout.
	Layout(ctx context.Context, owner, id string) (Layout, error)
	// Layouts returns all of owner's layouts, oldest first (by creation, then id).
	Layouts(ctx context.Context, owner string) ([]Layout, error)
	// LayoutChanges returns the kept changes of a layout with after < version <= upTo,
	// in ascending version order. Trimmed versions are simply absent.
	LayoutChanges(ctx context.Context, layoutID string, after, upTo int64) ([]Change, error)
	// LayoutPaths is LayoutChanges for an overlap check: each change with only its
	// version and the distinct paths its ops wrote (Ops with Path alone; no values,
	// no Doc), read without decoding the ops' values.
	LayoutPaths(ctx context.Context, layoutID string, after, upTo int64) ([]Change, error)
	// LayoutHistory returns up to limit kept changes with version < before, newest first.
	LayoutHistory(ctx context.Context, layoutID string, before int64, limit int) ([]Change, error)
	// LayoutChangeByEdit returns the kept change of a layout committed with editID,
	// or CodeNotFound.
	LayoutChangeByEdit(ctx context.Context, layoutID, editID string) (Change, error)

	// Widget returns one widget.
	Widget(ctx context.Context, owner, id string) (Widget, error)
	// Widgets returns all of owner's widgets, oldest first (by creation, then id).
	Widgets(ctx context.Context, owner string) ([]Widget, error)
	// WidgetChanges is LayoutChanges for a widget.
	WidgetChanges(ctx context.Context, widgetID string, after, upTo int64) ([]Change, error)
	// WidgetPaths is LayoutPaths for a widget.
	WidgetPaths(ctx context.Context, widgetID string, after, upTo int64) ([]Change, error)
	// WidgetChangeByEdit is LayoutChangeByEdit for a widget.
	WidgetChangeByEdit(ctx context.Context, widgetID, editID string) (Change, error)

	// Dashboard returns owner's dashboard state; one never saved has Version 0, no
	// current layout and Preferences {}.
	Dashboard(ctx context.Context, owner string) (Dashboard, error)
}

// Tx is a store transaction: reads see its own writes, and nothing of it is visible to
// others before it commits. Writes are compare-and-swap on the version. ErrStale and
// ErrDuplicateEdit may arrive wrapped (in a *Error with CodeVersionConflict): test for
// them with errors.Is. A write that fails with one of them, or with CodeNotFound, wrote
// nothing and leaves the Tx usable.
type Tx interface {
	Reader
	writes
}

// writes are a Tx's writes.
type writes interface {
	// CreateLayout inserts a layout at version 1 with its first change. A second
	// default layout for one owner gives ErrStale (the caller re-reads and retries).
	CreateLayout(ctx context.Context, l Layout, c Change) error
	// UpdateLayout replaces a layout whose stored version is l.Version-1 and appends c
	// (c.Version == l.Version) to its op log. It returns ErrStale when the stored
	// version differs, ErrDuplicateEdit when c.EditID is already in the layout's log,
	// and CodeNotFound when the layout is gone.
	UpdateLayout(ctx context.Context, l Layout, c Change) error
	// DeleteLayout deletes a layout and its op log.
	DeleteLayout(ctx context.Context, owner, id string) error
	// TrimLayoutChanges deletes a layout's changes with version <= upTo.
	TrimLayoutChanges(ctx context.Context, layoutID string, upTo int64) error

	// CreateWidget, UpdateWidget, DeleteWidget and TrimWidgetChanges are the same for
	// widgets.
	CreateWidget(ctx context.Context, w Widget, c Change) error
	UpdateWidget(ctx context.Context, w Widget, c Change) error
	DeleteWidget(ctx context.Context, owner, id string) error
	TrimWidgetChanges(ctx context.Context, widgetID string, upTo int64) error

	// PutDashboard stores d if the stored version is d.Version-1 (0: none stored yet),
	// else ErrStale.
	PutDashboard(ctx context.Context, d Dashboard) error
}

// Store keeps layouts, widgets, their op logs and dashboards.
type Store interface {
	Reader
	// InTx runs fn in one transaction and commits when fn returns nil; otherwise it
	// rolls back and returns fn's error unchanged. It never retries. When the
	// connection drops during the commit the outcome is unknown (CodeUnavailable):
	// edits carry an editId so that a resend is answered from the op log.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store; calls after Close fail with CodeUnavailable.
	Close() error
}
