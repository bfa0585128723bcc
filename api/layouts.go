package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// itemBody is a layout item as clients send it: every coordinate is required. The
// bounds that depend on the layout (x + w ≤ columns) are the domain's to check.
type itemBody struct {
	X *int `json:"x" validate:"required,min=0"`
	Y *int `json:"y" validate:"required,min=0,max=10000"`
	W *int `json:"w" validate:"required,min=1"`
	H *int `json:"h" validate:"required,min=1,max=100"`
}

// layoutFields are the editable fields of a layout as clients send it whole, and the
// read-only ones a GET returned: those are accepted, so that GET → change → PUT
// works, and ignored (SPEC §9).
type layoutFields struct {
	Name     *string                    `json:"name" validate:"omitnil,min=1,max=100"`
	Columns  *int                       `json:"columns" validate:"omitnil,min=1,max=48"`
	Items    map[string]itemBody        `json:"items" validate:"omitempty,max=200,dive,keys,min=1,max=64,endkeys"`
	Settings map[string]json.RawMessage `json:"settings"`

	IsDefault json.RawMessage `json:"isDefault"`
	CreatedAt json.RawMessage `json:"createdAt"`
	UpdatedAt json.RawMessage `json:"updatedAt"`
	Rebased   json.RawMessage `json:"rebased"`
}

// doc turns the fields into the domain's document; absent fields stay nil.
func (f layoutFields) doc() (dsync.LayoutDoc, error) {
	d := dsync.LayoutDoc{Name: f.Name, Columns: f.Columns}
	if f.Items != nil {
		d.Items = make(map[string]dsync.Item, len(f.Items))
		for id, it := range f.Items {
			d.Items[id] = dsync.Item{X: *it.X, Y: *it.Y, W: *it.W, H: *it.H}
		}
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

// layoutCreateRequest is the body of POST /api/dashboard/layouts: a document, or the
// name of a built-in template.
type layoutCreateRequest struct {
	layoutFields
	Template string          `json:"template" validate:"omitempty,max=64,excluded_with=Name Columns Items Settings"`
	ID       json.RawMessage `json:"id"`      // ignored
	Version  json.RawMessage `json:"version"` // ignored: a new layout starts at 1
}

// layoutPutRequest is the body of PUT /api/dashboard/layouts/:id: the whole document
// and the version it was based on.
type layoutPutRequest struct {
	layoutFields
	ID      json.RawMessage `json:"id"` // the URL names the layout
	Version *int64          `json:"version" validate:"required,min=1"`
	Force   bool            `json:"force"`
	EditID  string          `json:"editId" validate:"omitempty,uuid"`
}

// layoutBulkEntry is one layout of PUT /api/dashboard/layouts, named by its id.
type layoutBulkEntry struct {
	ID string `json:"id" validate:"required,max=64"`
	layoutFields
	Version *int64 `json:"version" validate:"required,min=1"`
}

type layoutBulkRequest struct {
	Layouts []layoutBulkEntry `json:"layouts" validate:"required,min=1,max=100,dive"`
}

// opBody is one JSON Patch op.
type opBody struct {
	Op    string          `json:"op" validate:"required,oneof=add replace remove"`
	Path  string          `json:"path" validate:"required,max=1024"`
	Value json.RawMessage `json:"value"`
}

// layoutPatchRequest is the body of PATCH /api/dashboard/layouts/:id (SPEC §9), with
// the meaning of a WebSocket edit.
type layoutPatchRequest struct {
	Version *int64   `json:"version" validate:"required,min=1"`
	Ops     []opBody `json:"ops" validate:"required,max=1000,dive"`
	Force   bool     `json:"force"`
	EditID  string   `json:"editId" validate:"omitempty,uuid"`
}

func (r layoutPatchRequest) ops() []dsync.Op {
	ops := make([]dsync.Op, len(r.Ops))
	for i, o := range r.Ops {
		ops[i] = dsync.Op{Op: o.Op, Path: o.Path, Value: o.Value}
	}
	return ops
}

// layoutCloneRequest is the optional body of POST /api/dashboard/layouts/:id.
type layoutCloneRequest struct {
	Name *string `json:"name" validate:"omitnil,min=1,max=100"`
}

// noBody is the body of routes that take none: nothing, or an empty object.
type noBody struct{}

// layoutReply is a layout as updates answer it: with whether the edit was rebased.
type layoutReply struct {
	dsync.Layout
	Rebased bool `json:"rebased"`
}

type layoutListReply struct {
	Layouts []dsync.LayoutSummary `json:"layouts"`
}

type historyReply struct {
	Versions []dsync.Change `json:"versions"`
	Next     *int64         `json:"next"`
}

// bulkResult is one entry's outcome in a bulk update.
type bulkResult struct {
	ID        string           `json:"id"`
	Status    int              `json:"status"`
	Layout    *layoutReply     `json:"layout,omitempty"`
	Error     *wire.Error      `json:"error,omitempty"`
	Current   any              `json:"current,omitempty"`
	Conflicts []dsync.Conflict `json:"conflicts,omitzero"`
}

type bulkReply struct {
	Results []bulkResult `json:"results"`
}

// handleLayoutList is GET /api/dashboard/layouts.
func (s *Server) handleLayoutList(c *gin.Context) {
	var shared bool
	switch inc := c.Query("include"); inc {
	case "":
	case "shared":
		shared = true
	default:
		s.writeError(c, dsync.Invalid("include", "oneof", "shared", "include must be \"shared\""))
		return
	}
	ls, err := s.svc.Layouts(c.Request.Context(), userOf(c), shared)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if ls == nil {
		ls = []dsync.LayoutSummary{}
	}
	c.JSON(http.StatusOK, layoutListReply{Layouts: ls})
}

// handleLayoutCreate is POST /api/dashboard/layouts.
func (s *Server) handleLayoutCreate(c *gin.Context) {
	var req layoutCreateRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	doc, err := req.doc()
	if err != nil {
		s.writeError(c, err)
		return
	}
	l, err := s.svc.CreateLayout(c.Request.Context(), userOf(c), dsync.NewLayout{Doc: doc, Template: req.Template, Author: userOf(c)})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, l)
}

// handleLayoutBulkUpdate is PUT /api/dashboard/layouts: each entry is applied on its
// own; 200 when all commit, else 207 with each entry's status. Each entry is one edit:
// an entry over the user's edit budget gets its own 429 and is not applied.
func (s *Server) handleLayoutBulkUpdate(c *gin.Context) {
	var req layoutBulkRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	items := make([]dsync.BulkItem, len(req.Layouts))
	for i, e := range req.Layouts {
		doc, err := e.doc()
		if err != nil {
			s.writeError(c, err)
			return
		}
		items[i] = dsync.BulkItem{ID: e.ID, Base: *e.Version, Doc: doc}
	}
	reply := bulkReply{Results: make([]bulkResult, len(items))}
	status := http.StatusOK
	fail := func(i int, id string, err error) {
		st, body := s.describe(c.Request.Context(), err)
		reply.Results[i] = bulkResult{ID: id, Status: st, Error: &body.Error, Current: body.Current, Conflicts: body.Conflicts}
		status = http.StatusMultiStatus
	}
	allowed := make([]dsync.BulkItem, 0, len(items))
	at := make([]int, 0, len(items)) // each allowed entry's index in items
	for i, it := range items {
		if err := s.spendEdit(c); err != nil {
			fail(i, it.ID, err)
			continue
		}
		allowed, at = append(allowed, it), append(at, i)
	}
	var results []dsync.BulkResult
	if len(allowed) > 0 {
		results = s.svc.PutLayouts(c.Request.Context(), userOf(c), allowed, userOf(c))
	}
	for j, r := range results {
		if r.Err != nil {
			fail(at[j], r.ID, r.Err)
			continue
		}
		reply.Results[at[j]] = bulkResult{ID: r.ID, Status: http.StatusOK, Layout: &layoutReply{Layout: r.Layout, Rebased: r.Rebased}}
	}
	c.JSON(status, reply)
}

// handleLayoutGet is GET /api/dashboard/layouts/:id.
func (s *Server) handleLayoutGet(c *gin.Context) {
	l, err := s.svc.Layout(c.Request.Context(), userOf(c), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, l)
}

// handleLayoutUpdate is PUT /api/dashboard/layouts/:id: the whole document with the
// version it was based on, under the rule of SPEC §3.
func (s *Server) handleLayoutUpdate(c *gin.Context) {
	var req layoutPutRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	doc, err := req.doc()
	if err != nil {
		s.writeError(c, err)
		return
	}
	e := dsync.Edit{Force: req.Force, EditID: req.EditID, Author: userOf(c)}
	l, res, err := s.svc.PutLayout(c.Request.Context(), userOf(c), c.Param("id"), *req.Version, doc, e)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, layoutReply{Layout: l, Rebased: res.Rebased})
}

// handleLayoutPatch is PATCH /api/dashboard/layouts/:id: ops against a base version.
func (s *Server) handleLayoutPatch(c *gin.Context) {
	var req layoutPatchRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	e := dsync.Edit{Base: *req.Version, Ops: req.ops(), Force: req.Force, EditID: req.EditID, Author: userOf(c)}
	l, res, err := s.svc.EditLayout(c.Request.Context(), userOf(c), c.Param("id"), e)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, layoutReply{Layout: l, Rebased: res.Rebased})
}

// handleLayoutDelete is DELETE /api/dashboard/layouts/:id.
func (s *Server) handleLayoutDelete(c *gin.Context) {
	if err := s.svc.DeleteLayout(c.Request.Context(), userOf(c), c.Param("id"), userOf(c)); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// handleLayoutClone is POST /api/dashboard/layouts/:id: a copy under a new name.
func (s *Server) handleLayoutClone(c *gin.Context) {
	var req layoutCloneRequest
	if err := s.bindOptional(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	l, err := s.svc.CloneLayout(c.Request.Context(), userOf(c), c.Param("id"), req.Name, userOf(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, l)
}

// handleLayoutSetDefault is POST /api/dashboard/layouts/:id/default.
func (s *Server) handleLayoutSetDefault(c *gin.Context) {
	if err := s.bindOptional(c, &noBody{}); err != nil {
		s.writeError(c, err)
		return
	}
	l, err := s.svc.SetDefault(c.Request.Context(), userOf(c), c.Param("id"), userOf(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, l)
}

// handleLayoutHistory is GET /api/dashboard/layouts/:id/versions?before=&limit=:
// kept versions, newest first, paged.
func (s *Server) handleLayoutHistory(c *gin.Context) {
	before, _, err := queryInt(c, "before", 1)
	if err != nil {
		s.writeError(c, err)
		return
	}
	limit, _, err := queryInt(c, "limit", 1)
	if err != nil {
		s.writeError(c, err)
		return
	}
	cs, next, err := s.svc.History(c.Request.Context(), userOf(c), c.Param("id"), before, int(min(limit, 100)))
	if err != nil {
		s.writeError(c, err)
		return
	}
	reply := historyReply{Versions: cs}
	if reply.Versions == nil {
		reply.Versions = []dsync.Change{}
	}
	if next > 0 {
		reply.Next = &next
	}
	c.JSON(http.StatusOK, reply)
}

// handleLayoutRestore is POST /api/dashboard/layouts/:id/versions/:v/restore: the
// document of version v committed as a new version.
func (s *Server) handleLayoutRestore(c *gin.Context) {
	if err := s.bindOptional(c, &noBody{}); err != nil {
		s.writeError(c, err)
		return
	}
	v, err := strconv.ParseInt(c.Param("v"), 10, 64)
	if err != nil || v < 1 {
		s.writeError(c, dsync.Invalid("v", "min", "1", "the version to restore must be a positive integer"))
		return
	}
	l, _, err := s.svc.Restore(c.Request.Context(), userOf(c), c.Param("id"), v, userOf(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, l)
}

// handleTemplateList is GET /api/dashboard/templates.
func (s *Server) handleTemplateList(c *gin.Context) {
	ts, err := s.svc.TemplatesFor(userOf(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"templates": ts})
}
