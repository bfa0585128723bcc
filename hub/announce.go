package hub

import (
	"context"
	"sync/atomic"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// Announcer is what the domain and the widget data service announce to: a
// dsync.Announcer and a widgetdata.Announcer. It exists before the Hub, because the
// hub is built from the service and the data service, which announce to it; New
// binds it to its hub. Until then there is nobody to deliver to, and what is announced
// is dropped (the op log has every version). Each event is turned into the frame its
// subscribers receive, encoded once, and published on the hub's broker under the
// channel the hub names for it.
type Announcer struct {
	hub atomic.Pointer[Hub]
}

var (
	_ dsync.Announcer      = (*Announcer)(nil)
	_ widgetdata.Announcer = (*Announcer)(nil)
)

// NewAnnouncer returns an Announcer to hand to the service and the data service, and
// then to New.
func NewAnnouncer() *Announcer { return &Announcer{} }

// Announce implements dsync.Announcer.
func (a *Announcer) Announce(ctx context.Context, ev dsync.Event) {
	h := a.hub.Load()
	if h == nil {
		return
	}
	switch ev := ev.(type) {
	case dsync.LayoutCommitted:
		h.publishRaw(ctx, layoutChannel(ev.LayoutID), ev.Change.Version, opFrame(ev.LayoutID, &ev.Change))
	case dsync.WidgetChanged:
		name := widgetChannel(ev.Widget.ID)
		h.publishRaw(ctx, name, 0, encode(outbound{Type: "widget", Channel: name, Widget: &ev.Widget}))
	case dsync.UserEvent:
		out := outbound{Type: "event", Channel: kindUser, Event: string(ev.Name),
			Layout: ev.Layout, Widget: ev.Widget, Dashboard: ev.Dashboard}
		h.publishRaw(ctx, userChannel(ev.Owner), 0, encode(out))
	case dsync.AccessChanged:
		h.publishRaw(ctx, userChannel(ev.User), 0, sharedFrame(ev.Layout, ev.Role))
		h.notify(ctx, accessNotice{Kind: noticeUser, Layout: ev.Layout.ID, User: ev.User})
	case dsync.LinkRevoked:
		h.notify(ctx, accessNotice{Kind: noticeLink, Layout: ev.LayoutID, Link: ev.LinkID})
	case dsync.LayoutDeleted:
		for _, u := range ev.Members {
			h.publishRaw(ctx, userChannel(u), 0, sharedFrame(ev.Layout, ""))
		}
		h.notify(ctx, accessNotice{Kind: noticeDeleted, Layout: ev.Layout.ID, Members: ev.Members})
	}
}

// sharedFrame is the user event telling a user they gained or changed a role on a
// layout (layout.shared, with its summary and the role) or lost it (layout.unshared,
// with its id).
func sharedFrame(l dsync.LayoutSummary, role dsync.Role) []byte {
	if role == "" {
		return encode(struct {
			Type    string `json:"type"`
			Channel string `json:"channel"`
			Event   string `json:"event"`
			Layout  struct {
				ID string `json:"id"`
			} `json:"layout"`
		}{Type: "event", Channel: kindUser, Event: "layout.unshared", Layout: struct {
			ID string `json:"id"`
		}{l.ID}})
	}
	return encode(outbound{Type: "event", Channel: kindUser, Event: "layout.shared", Layout: &l, Role: string(role)})
}

// notify publishes an access notice to every instance (this one included).
func (h *Hub) notify(ctx context.Context, n accessNotice) {
	h.publishRaw(ctx, accessChannel, 0, encode(n))
}

// AnnounceData implements widgetdata.Announcer.
func (a *Announcer) AnnounceData(ctx context.Context, ev widgetdata.DataChanged) {
	h := a.hub.Load()
	if h == nil {
		return
	}
	name := widgetChannel(ev.WidgetID)
	h.publishRaw(ctx, name, 0, encode(outbound{Type: "data", Channel: name, Data: rawPtr(encode(ev.Data))}))
}
