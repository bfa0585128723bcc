package sync

import "context"

// Event is what the edit pipeline announces once a commit is durable: a
// LayoutCommitted, a WidgetChanged, a UserEvent, or a change of who may see a layout
// (AccessChanged, LinkRevoked, LayoutDeleted). The domain says what happened;
// where it is delivered (channel names, frames) is the hub's business.
type Event interface{ isEvent() }

// LayoutCommitted is a new version of a layout: the change that made it.
type LayoutCommitted struct {
	Owner    string
	LayoutID string
	Change   Change
}

// WidgetChanged is a new version of a widget's definition.
type WidgetChanged struct {
	Widget Widget
}

// EventName names a user event (SPEC §5, the `user` channel).
type EventName string

// The user events.
const (
	EventLayoutCreated    EventName = "layout.created"
	EventLayoutUpdated    EventName = "layout.updated"
	EventLayoutDeleted    EventName = "layout.deleted"
	EventWidgetCreated    EventName = "widget.created"
	EventWidgetDeleted    EventName = "widget.deleted"
	EventDashboardUpdated EventName = "dashboard.updated"
)

// UserEvent is a change to the set of a user's objects, for the user's own channel.
// Exactly one of Layout, Widget and Dashboard is set, as Name says.
type UserEvent struct {
	Owner     string
	Name      EventName
	Layout    *LayoutSummary
	Widget    *Widget
	Dashboard *Dashboard
}

// AccessChanged is a change of one user's role on a layout (SPEC §10): Role is the
// new role, "" when the user's access was removed.
type AccessChanged struct {
	Layout LayoutSummary
	User   string
	Role   Role
}

// LinkRevoked is a link of a layout that was revoked: the sockets it opened are
// closed.
type LinkRevoked struct {
	LayoutID string
	LinkID   string
}

// LayoutDeleted is a layout that is gone: its subscribers are told, and each of its
// members loses it.
type LayoutDeleted struct {
	Layout  LayoutSummary
	Members []string
}

func (AccessChanged) isEvent()   {}
func (LinkRevoked) isEvent()     {}
func (LayoutDeleted) isEvent()   {}
func (LayoutCommitted) isEvent() {}
func (WidgetChanged) isEvent()   {}
func (UserEvent) isEvent()       {}

// Announcer is told of every commit, after it is durable. It must not block for long
// and cannot fail an edit: a delivery it loses is repaired from the op log.
type Announcer interface {
	Announce(ctx context.Context, ev Event)
}

func userLayoutEvent(owner string, name EventName, l LayoutSummary) UserEvent {
	return UserEvent{Owner: owner, Name: name, Layout: &l}
}

func userWidgetEvent(owner string, name EventName, w Widget) UserEvent {
	return UserEvent{Owner: owner, Name: name, Widget: &w}
}
