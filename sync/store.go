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

	// LayoutAs returns layout id, whoever owns it, with user's role on it: RoleOwner
	// for its owner, the access list's role for a member, "" for anyone else. A
	// missing layout is CodeNotFound. It is one read of the store.
	LayoutAs(ctx context.Context, id, user string) (Layout, Role, error)
	// Access returns a layout's access list: Users empty (never nil) and Version 0
	// when it was never shared. A missing layout is CodeNotFound.
	Access(ctx context.Context, layoutID string) (Access, error)
	// SharedWith returns the layouts user is a member of (not the ones user owns),
	// oldest first (by creation, then id), each with user's role.
	SharedWith(ctx context.Context, user string) ([]SharedLayout, error)
	// Link returns one link, revoked or expired as it may be; CodeNotFound when there
	// is none (or its layout was deleted).
	Link(ctx context.Context, id string) (Link, error)
	// Links returns the links of a layout that are not revoked, expired ones
	// included, oldest first (by creation, then id).
	Links(ctx context.Context, layoutID string) ([]Link, error)
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
	// version differs and CodeNotFound when the layout is gone. It does not look at
	// c.EditID (a UUID, or empty): the caller keeps an editId in a layout's log once
	// by reading LayoutChangeByEdit in the transaction whose compare-and-swap then
	// decides (a concurrent commit of the same editId makes it ErrStale).
	UpdateLayout(ctx context.Context, l Layout, c Change) error
	// DeleteLayout deletes a layout, its op log, its access list and its links.
	DeleteLayout(ctx context.Context, owner, id string) error
	// TrimLayoutChanges deletes a layout's changes with version <= upTo.
	TrimLayoutChanges(ctx context.Context, layoutID string, upTo int64) error

	// CreateWidget, UpdateWidget, DeleteWidget and TrimWidgetChanges are the same for
	// widgets, except that UpdateWidget returns ErrDuplicateEdit when c.EditID is
	// already in the widget's log.
	CreateWidget(ctx context.Context, w Widget, c Change) error
	UpdateWidget(ctx context.Context, w Widget, c Change) error
	DeleteWidget(ctx context.Context, owner, id string) error
	TrimWidgetChanges(ctx context.Context, widgetID string, upTo int64) error

	// ReadForEdits reads, for a group of layout edits, what each layout's edits need
	// (see EditRead), in one round trip where the store can, and locks each layout
	// for the rest of the transaction, in the order given. The result has one
	// EditState per read, in order; a missing layout is an EditState whose Err is
	// CodeNotFound, not an error of the call.
	ReadForEdits(ctx context.Context, reads []EditRead) ([]EditState, error)
	// WriteLayouts writes a group's edits: for each entry, the layout's new document
	// if its stored version is From (else ErrStale, or CodeNotFound when it is gone),
	// its changes appended to its op log, and its changes up to TrimUpTo dropped (0:
	// none). It is as many statements as UpdateLayout would be, in one round trip
	// where the store can. After an error the transaction must be rolled back.
	WriteLayouts(ctx context.Context, ws []LayoutWrite) error

	// PutDashboard stores d if the stored version is d.Version-1 (0: none stored yet),
	// else ErrStale.
	PutDashboard(ctx context.Context, d Dashboard) error

	// PutAccess replaces the members of a.LayoutID's access list with a.Users if its
	// stored access version is a.Version-1, else ErrStale; CodeNotFound when the
	// layout is gone. a.Owner is not written.
	PutAccess(ctx context.Context, a Access) error
	// CreateLink inserts a link; CodeNotFound when its layout is gone.
	CreateLink(ctx context.Context, l Link) error
	// RevokeLink marks link id of layout layoutID revoked. A link that is not there,
	// is another layout's, or is revoked already is CodeNotFound.
	RevokeLink(ctx context.Context, layoutID, id string) error
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

// EditRead asks a store for what a group's edits of one layout need.
type EditRead struct {
	LayoutID string
	// Users are the editors whose roles are wanted.
	Users []string
	// EditIDs are the editIds whose kept changes, if any, are wanted.
	EditIDs []string
	// The paths of the changes with version > After and > head-MaxBack are wanted.
	After, MaxBack int64
	// Widgets are widget ids the edits may place: those that are the layout
	// owner's are wanted.
	Widgets []string
}

// EditState is what a store read for one EditRead.
type EditState struct {
	// Layout is the head; Err is CodeNotFound (and Layout zero) when it is missing.
	Layout Layout
	Err    error
	// Roles holds each of the Users' role: RoleOwner, a member's role, or "".
	Roles map[string]Role
	// Edits holds, by editId, the kept changes committed with one of the EditIDs
	// (Version, Rebased and EditID at least).
	Edits map[string]Change
	// Paths are the wanted changes with their paths (as LayoutPaths), ascending.
	Paths []Change
	// Widgets are those of the wanted widgets that exist as the owner's.
	Widgets []Widget
}

// LayoutWrite is one layout's part of a group's writes: the document at its new
// version, the version it replaces, the changes From+1 … Layout.Version in order,
// and the op log trim (0: none).
type LayoutWrite struct {
	Layout   Layout
	From     int64
	Changes  []Change
	TrimUpTo int64
}
