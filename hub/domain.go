package hub

import (
	"context"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// Domain is what the hub asks of the domain: the calls its messages make (a
// *dsync.Service). Errors are *dsync.Error values with the codes each call documents.
type Domain interface {
	// LayoutWithRole returns layout id at its head with who's role on it (a user, or
	// "link:<id>"): not_found without access (SPEC §10).
	LayoutWithRole(ctx context.Context, who, id string) (dsync.Layout, dsync.Role, error)
	// Head returns layout id at its head, whoever asks: a channel's own reads, for
	// subscribers whose access was checked when they subscribed.
	Head(ctx context.Context, id string) (dsync.Layout, error)
	// WidgetWithRole returns widget id with who's role on it: owner for their own,
	// else the best role over the layouts shared with who that place it.
	WidgetWithRole(ctx context.Context, who, id string) (dsync.Widget, dsync.Role, error)
	// WidgetFor returns widget id if who may do a with it (not_found, forbidden).
	WidgetFor(ctx context.Context, who, id string, a dsync.Action) (dsync.Widget, error)
	// EditLayout runs an `edit` through the edit pipeline, which checks who may.
	EditLayout(ctx context.Context, owner, id string, e dsync.Edit) (dsync.Layout, dsync.Result, error)
	// ChangesSince returns the versions after..upTo of a layout, for gap fill and
	// resume, and whether they are all there within maxBytes of ops.
	ChangesSince(ctx context.Context, layoutID string, after, upTo int64, maxBytes int) ([]dsync.Change, bool, error)
}

// Data is what the hub asks of widget data (a *widgetdata.Service).
type Data interface {
	// Get returns w's data (nil: none yet); refresh forces a fetch (SPEC §6).
	Get(ctx context.Context, w dsync.Widget, refresh bool) (*dsync.WidgetData, error)
	// Follow keeps owner's widget id refreshed while this instance has subscribers to
	// it, until stop is called.
	Follow(owner, id string) (stop func())
}

var (
	_ Domain = (*dsync.Service)(nil)
	_ Data   = (*widgetdata.Service)(nil)
)
