package hub

import (
	"context"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// Domain is what the hub asks of the domain: the calls its messages make (a
// *dsync.Service). Errors are *dsync.Error values with the codes each call documents.
type Domain interface {
	// Layout returns owner's layout id at its head (not_found for another owner's).
	Layout(ctx context.Context, owner, id string) (dsync.Layout, error)
	// Widget returns owner's widget id (not_found for another owner's).
	Widget(ctx context.Context, owner, id string) (dsync.Widget, error)
	// EditLayout runs an `edit` through the edit pipeline.
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
