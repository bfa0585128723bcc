package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// sourceBody is a widget source as clients send it. Zero refresh and TTL take the
// defaults; whether the kind is known and its URL allowed is the domain's to check.
type sourceBody struct {
	Kind           string          `json:"kind" validate:"required,max=32"`
	URL            string          `json:"url" validate:"omitempty,max=2048"`
	RefreshSeconds int             `json:"refreshSeconds" validate:"omitempty,min=1"`
	TTLSeconds     int             `json:"ttlSeconds" validate:"omitempty,min=1"`
	Data           json.RawMessage `json:"data"`
}

// widgetFields are the editable fields of a widget as clients send it whole, and the
// read-only ones a GET returned (accepted and ignored).
type widgetFields struct {
	Type     *string                    `json:"type" validate:"omitnil,min=1,max=32"`
	Title    *string                    `json:"title" validate:"omitnil,max=200"`
	Source   *sourceBody                `json:"source"`
	Settings map[string]json.RawMessage `json:"settings"`

	ID        json.RawMessage `json:"id"`
	CreatedAt json.RawMessage `json:"createdAt"`
	UpdatedAt json.RawMessage `json:"updatedAt"`
	Rebased   json.RawMessage `json:"rebased"`
}

func (f widgetFields) doc() (dsync.WidgetDoc, error) {
	d := dsync.WidgetDoc{Type: f.Type, Title: f.Title}
	if f.Source != nil {
		d.Source = &dsync.Source{Kind: f.Source.Kind, URL: f.Source.URL, RefreshSeconds: f.Source.RefreshSeconds,
			TTLSeconds: f.Source.TTLSeconds, Data: f.Source.Data}
	}
	if f.Settings != nil {
		s, err := dsync.CanonicalSettings(f.Settings)
		if err != nil {
			return d, err
		}
		d.Settings = s
	}
	return d, nil
}

// widgetCreateRequest is the body of POST /api/dashboard/widgets.
type widgetCreateRequest struct {
	widgetFields
	Version json.RawMessage `json:"version"` // ignored: a new widget starts at 1
}

// widgetUpdateRequest is the body of POST /api/dashboard/widgets/:id: the whole
// definition and the version it was based on.
type widgetUpdateRequest struct {
	widgetFields
	Version *int64 `json:"version" validate:"required,min=1"`
	Force   bool   `json:"force"`
	EditID  string `json:"editId" validate:"omitempty,uuid"`
}

// widgetDataRequest is the body of PUT /api/dashboard/widgets/:id/data.
type widgetDataRequest struct {
	Data json.RawMessage `json:"data" validate:"required"`
}

// batchRequest is the body of POST /api/dashboard/widgets/batch, and what the query
// of the GET form is read into.
type batchRequest struct {
	IDs     []string `json:"ids" validate:"required,min=1,max=50,dive,required,max=64"`
	Refresh bool     `json:"refresh"`
}

type widgetReply struct {
	dsync.Widget
	Rebased bool `json:"rebased"`
}

type widgetListReply struct {
	Widgets []dsync.Widget `json:"widgets"`
}

// widgetWithData is GET /api/dashboard/widgets/:id's answer; Data is null when the
// widget has no data yet.
type widgetWithData struct {
	Widget dsync.Widget      `json:"widget"`
	Data   *dsync.WidgetData `json:"data"`
}

// batchResult is one id's outcome in a batch: its status and either its data (null
// when it has none yet) or its error.
type batchResult struct {
	Status int         `json:"status"`
	Data   any         `json:"data,omitempty"` // a *dsync.WidgetData, null when nil
	Error  *wire.Error `json:"error,omitempty"`
}

type batchReply struct {
	Results map[string]batchResult `json:"results"`
}

// handleWidgetList is GET /api/dashboard/widgets.
func (s *Server) handleWidgetList(c *gin.Context) {
	ws, err := s.svc.Widgets(c.Request.Context(), userOf(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	if ws == nil {
		ws = []dsync.Widget{}
	}
	c.JSON(http.StatusOK, widgetListReply{Widgets: ws})
}

// handleWidgetCreate is POST /api/dashboard/widgets.
func (s *Server) handleWidgetCreate(c *gin.Context) {
	var req widgetCreateRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	doc, err := req.doc()
	if err != nil {
		s.writeError(c, err)
		return
	}
	w, err := s.svc.CreateWidget(c.Request.Context(), userOf(c), doc, userOf(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, w)
}

// handleWidgetGet is GET /api/dashboard/widgets/:id?refresh=: the widget and its
// data, cache-first unless refresh is true.
func (s *Server) handleWidgetGet(c *gin.Context) {
	refresh, err := queryBool(c, "refresh")
	if err != nil {
		s.writeError(c, err)
		return
	}
	act := dsync.ActReadData
	if refresh {
		act = dsync.ActRefresh
	}
	w, err := s.svc.WidgetFor(c.Request.Context(), userOf(c), c.Param("id"), act)
	if err != nil {
		s.writeError(c, err)
		return
	}
	d, err := s.data.Get(c.Request.Context(), w, refresh)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, widgetWithData{Widget: w, Data: d})
}

// handleWidgetUpdate is POST /api/dashboard/widgets/:id: the whole definition with the
// version it was based on, under the rule of SPEC §3. Data cached from the old source
// is dropped when the source changed.
func (s *Server) handleWidgetUpdate(c *gin.Context) {
	var req widgetUpdateRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	doc, err := req.doc()
	if err != nil {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	before, err := s.svc.WidgetFor(ctx, userOf(c), c.Param("id"), dsync.ActOwnWidget)
	if err != nil {
		s.writeError(c, err)
		return
	}
	e := dsync.Edit{Force: req.Force, EditID: req.EditID, Author: userOf(c)}
	w, res, err := s.svc.UpdateWidget(ctx, userOf(c), c.Param("id"), *req.Version, doc, e)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if res.Committed && !sameSource(before.Source, w.Source) {
		if err := s.data.Clear(ctx, w); err != nil {
			s.writeError(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, widgetReply{Widget: w, Rebased: res.Rebased})
}

// sameSource reports whether two sources produce the same data: refresh and TTL
// changes keep what is cached.
func sameSource(a, b dsync.Source) bool {
	return a.Kind == b.Kind && a.URL == b.URL && bytes.Equal(a.Data, b.Data)
}

// handleWidgetDelete is DELETE /api/dashboard/widgets/:id?remove=: clears the
// widget's cached data; with remove=true also deletes the widget and takes it out of
// every layout.
func (s *Server) handleWidgetDelete(c *gin.Context) {
	remove, err := queryBool(c, "remove")
	if err != nil {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	w, err := s.svc.WidgetFor(ctx, userOf(c), c.Param("id"), dsync.ActOwnWidget)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if !remove {
		if err := s.data.Clear(ctx, w); err != nil {
			s.writeError(c, err)
			return
		}
		c.Status(http.StatusNoContent)
		return
	}
	if err := s.svc.RemoveWidget(ctx, userOf(c), w.ID, userOf(c)); err != nil {
		s.writeError(c, err)
		return
	}
	// The widget is gone: data left in the cache is unreachable and expires with its
	// TTL, so a failure to clear it is logged rather than failing the delete.
	if err := s.data.Clear(ctx, w); err != nil {
		s.log.WarnContext(ctx, "clear data of a removed widget", "request_id", requestIDFrom(ctx), "widget", w.ID, "err", err)
	}
	c.Status(http.StatusNoContent)
}

// handleWidgetDataPut is PUT /api/dashboard/widgets/:id/data: data for a push widget.
func (s *Server) handleWidgetDataPut(c *gin.Context) {
	var req widgetDataRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	w, err := s.svc.WidgetFor(c.Request.Context(), userOf(c), c.Param("id"), dsync.ActOwnWidget)
	if err != nil {
		s.writeError(c, err)
		return
	}
	d, err := s.data.Push(c.Request.Context(), w, req.Data)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, d)
}

// handleWidgetBatchGet is GET /api/dashboard/widgets/batch?ids=a,b&refresh=.
func (s *Server) handleWidgetBatchGet(c *gin.Context) {
	refresh, err := queryBool(c, "refresh")
	if err != nil {
		s.writeError(c, err)
		return
	}
	req := batchRequest{Refresh: refresh}
	if ids := c.Query("ids"); ids != "" {
		for id := range strings.SplitSeq(ids, ",") {
			req.IDs = append(req.IDs, strings.TrimSpace(id))
		}
	}
	if err := s.validate(&req); err != nil {
		s.writeError(c, err)
		return
	}
	s.batch(c, req)
}

// handleWidgetBatchPost is POST /api/dashboard/widgets/batch {"ids":[…],"refresh":…}.
func (s *Server) handleWidgetBatchPost(c *gin.Context) {
	var req batchRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	s.batch(c, req)
}

// batch answers the data of up to 50 widgets, fetched in parallel: 200 when every id
// succeeded, else 207 with each id's status (an id the caller may not read is a 404
// of its own; one they may read but not refresh, with refresh, a 403).
func (s *Server) batch(c *gin.Context, req batchRequest) {
	ctx := c.Request.Context()
	act := dsync.ActReadData
	if req.Refresh {
		act = dsync.ActRefresh
	}
	ids := make([]string, 0, len(req.IDs))
	seen := make(map[string]bool, len(req.IDs))
	for _, id := range req.IDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	got, err := s.svc.WidgetsFor(ctx, userOf(c), ids, act)
	if err != nil {
		s.writeError(c, err)
		return
	}
	mine := make(map[string]dsync.WidgetResult, len(got))
	for i, r := range got {
		mine[ids[i]] = r
	}
	reply := batchReply{Results: make(map[string]batchResult, len(req.IDs))}
	status := http.StatusOK
	fail := func(id string, err error) {
		st, body := s.describe(ctx, err)
		reply.Results[id] = batchResult{Status: st, Error: &body.Error}
		status = http.StatusMultiStatus
	}
	var found []dsync.Widget
	for _, id := range req.IDs {
		if _, seen := reply.Results[id]; seen {
			continue
		}
		if r := mine[id]; r.Err != nil {
			fail(id, r.Err)
			continue
		}
		reply.Results[id] = batchResult{}
		found = append(found, mine[id].Widget)
	}
	for i, r := range s.data.Batch(ctx, found, req.Refresh) {
		if r.Err != nil {
			fail(found[i].ID, r.Err)
			continue
		}
		reply.Results[found[i].ID] = batchResult{Status: http.StatusOK, Data: r.Data}
	}
	c.JSON(status, reply)
}

// dataOf reads the data of ws (cache-first) for the dashboard view: widgets whose data
// cannot be had are left out, and logged.
func (s *Server) dataOf(c *gin.Context, ws []dsync.Widget) map[string]*dsync.WidgetData {
	ctx := c.Request.Context()
	out := make(map[string]*dsync.WidgetData, len(ws))
	for i, r := range s.data.Batch(ctx, ws, false) {
		switch {
		case r.Err != nil:
			s.log.InfoContext(ctx, "widget data unavailable for the dashboard", "request_id", requestIDFrom(ctx),
				"widget", ws[i].ID, "code", dsync.ErrorCode(r.Err), "err", r.Err)
		case r.Data != nil:
			out[ws[i].ID] = r.Data
		}
	}
	return out
}
