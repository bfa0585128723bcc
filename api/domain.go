package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/dashsync/dashsync/hub"
	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/widgetdata"
)

// Domain is what the REST routes ask of the domain (a *dsync.Service), one call per
// route or less. Errors are *dsync.Error values; writeError answers them. Every call
// that names a caller ("who", "owner", "user") takes the authenticated actor: a user
// id, or "link:<id>" for a link token; the domain decides what that actor may do
// (SPEC §10), so no handler checks roles itself.
type Domain interface {
	// Ping is the "store" readiness check.
	Ping(ctx context.Context) error

	Dashboard(ctx context.Context, owner string) (dsync.DashboardView, error)
	UpdateDashboard(ctx context.Context, owner string, p dsync.DashboardPatch) (dsync.Dashboard, error)
	Save(ctx context.Context, owner string, in dsync.SaveDashboard, e dsync.Edit) (dsync.DashboardView, dsync.Result, error)
	TemplatesFor(user string) ([]dsync.Template, error)

	Layouts(ctx context.Context, user string, shared bool) ([]dsync.LayoutSummary, error)
	Layout(ctx context.Context, owner, id string) (dsync.Layout, error)
	CreateLayout(ctx context.Context, owner string, in dsync.NewLayout) (dsync.Layout, error)
	EditLayout(ctx context.Context, owner, id string, e dsync.Edit) (dsync.Layout, dsync.Result, error)
	PutLayout(ctx context.Context, owner, id string, base int64, doc dsync.LayoutDoc, e dsync.Edit) (dsync.Layout, dsync.Result, error)
	PutLayouts(ctx context.Context, owner string, items []dsync.BulkItem, author string) []dsync.BulkResult
	DeleteLayout(ctx context.Context, owner, id, author string) error
	SetDefault(ctx context.Context, owner, id, author string) (dsync.Layout, error)
	CloneLayout(ctx context.Context, owner, id string, name *string, author string) (dsync.Layout, error)
	History(ctx context.Context, owner, id string, before int64, limit int) ([]dsync.Change, int64, error)
	Restore(ctx context.Context, owner, id string, v int64, author string) (dsync.Layout, dsync.Result, error)

	// Sharing (SPEC §10): the access list and links of a layout, and link tokens.
	AccessOf(ctx context.Context, who, id string) (dsync.AccessView, error)
	UpdateAccess(ctx context.Context, who, id string, users map[string]*dsync.Role, version *int64) (dsync.AccessView, error)
	CreateLink(ctx context.Context, who, id string, role dsync.Role, ttlSeconds int64) (dsync.NewLink, error)
	RevokeLink(ctx context.Context, who, id, linkID string) error
	LinkUser(ctx context.Context, token string) (dsync.LinkActor, error)

	Widgets(ctx context.Context, owner string) ([]dsync.Widget, error)
	WidgetFor(ctx context.Context, who, id string, a dsync.Action) (dsync.Widget, error)
	WidgetsFor(ctx context.Context, who string, ids []string, a dsync.Action) ([]dsync.WidgetResult, error)
	CreateWidget(ctx context.Context, owner string, doc dsync.WidgetDoc, author string) (dsync.Widget, error)
	UpdateWidget(ctx context.Context, owner, id string, base int64, doc dsync.WidgetDoc, e dsync.Edit) (dsync.Widget, dsync.Result, error)
	RemoveWidget(ctx context.Context, owner, id, author string) error
}

// Data is what the REST routes ask of widget data (a *widgetdata.Service).
type Data interface {
	Get(ctx context.Context, w dsync.Widget, refresh bool) (*dsync.WidgetData, error)
	Batch(ctx context.Context, ws []dsync.Widget, refresh bool) []widgetdata.Result
	Push(ctx context.Context, w dsync.Widget, raw json.RawMessage) (dsync.WidgetData, error)
	Clear(ctx context.Context, w dsync.Widget) error
}

// Sockets serves GET /api/ws (a *hub.Hub): it admits and upgrades an authenticated
// request, or returns the refusal for the API to answer.
type Sockets interface {
	ServeWS(w http.ResponseWriter, r *http.Request, id hub.Identity) error
}

var (
	_ Domain  = (*dsync.Service)(nil)
	_ Data    = (*widgetdata.Service)(nil)
	_ Sockets = (*hub.Hub)(nil)
)
