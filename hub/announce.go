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
	}
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
