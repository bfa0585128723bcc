package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	dsync "github.com/dashsync/dashsync/sync"
)

// dashboardUpdateRequest is the body of PUT /api/dashboard: preferences is an RFC 7396
// merge patch; currentLayoutId may be null (none); version, when given, must match.
type dashboardUpdateRequest struct {
	Preferences     json.RawMessage  `json:"preferences"`
	CurrentLayoutID optional[string] `json:"currentLayoutId"`
	Version         *int64           `json:"version" validate:"omitnil,min=0"`
}

func (r dashboardUpdateRequest) patch() dsync.DashboardPatch {
	return dsync.DashboardPatch{Preferences: r.Preferences, SetCurrent: r.CurrentLayoutID.Set,
		CurrentLayoutID: r.CurrentLayoutID.Value, Version: r.Version}
}

// dashboardLayout is the layout of POST /api/dashboard, named by its id and written
// whole with its base version.
type dashboardLayout struct {
	ID string `json:"id" validate:"required,max=64"`
	layoutFields
	Version *int64 `json:"version" validate:"required,min=1"`
	Force   bool   `json:"force"`
	EditID  string `json:"editId" validate:"omitempty,uuid"`
}

// dashboardSaveRequest is the body of POST /api/dashboard: a layout and the state,
// saved atomically. Preferences here replace the stored ones.
type dashboardSaveRequest struct {
	Layout          *dashboardLayout `json:"layout"`
	Preferences     json.RawMessage  `json:"preferences"`
	CurrentLayoutID optional[string] `json:"currentLayoutId"`
	Version         *int64           `json:"version" validate:"omitnil,min=0"`
}

// dashboardReply is GET /api/dashboard's answer (and POST's).
type dashboardReply struct {
	Dashboard dsync.Dashboard              `json:"dashboard"`
	Layout    *dsync.Layout                `json:"layout"`
	Widgets   []dsync.Widget               `json:"widgets"`
	Data      map[string]*dsync.WidgetData `json:"data"`
}

// dashboardOut is the dashboard as answered: preferences never saved read as {}.
func dashboardOut(d dsync.Dashboard) dsync.Dashboard {
	if len(d.Preferences) == 0 {
		d.Preferences = json.RawMessage(`{}`)
	}
	return d
}

func (s *Server) dashboardReply(c *gin.Context, v dsync.DashboardView) dashboardReply {
	ws := v.Widgets
	if ws == nil {
		ws = []dsync.Widget{}
	}
	return dashboardReply{Dashboard: dashboardOut(v.Dashboard), Layout: v.Layout, Widgets: ws, Data: s.dataOf(c, ws)}
}

// handleDashboardGet is GET /api/dashboard: the state, the current (else default)
// layout, its widgets and their data.
func (s *Server) handleDashboardGet(c *gin.Context) {
	v, err := s.svc.Dashboard(c.Request.Context(), userOf(c))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, s.dashboardReply(c, v))
}

// handleDashboardSave is POST /api/dashboard: the layout and the state in one
// transaction; a conflicting layout saves nothing.
func (s *Server) handleDashboardSave(c *gin.Context) {
	var req dashboardSaveRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	in := dsync.SaveDashboard{Patch: dsync.DashboardPatch{Preferences: req.Preferences, Replace: true,
		SetCurrent: req.CurrentLayoutID.Set, CurrentLayoutID: req.CurrentLayoutID.Value, Version: req.Version}}
	e := dsync.Edit{Author: userOf(c)}
	if l := req.Layout; l != nil {
		// Saving a layout is an edit: it spends one of the user's edit budget.
		if err := s.spendEdit(c); err != nil {
			s.writeError(c, err)
			return
		}
		doc, err := l.doc()
		if err != nil {
			s.writeError(c, err)
			return
		}
		in.LayoutID, in.Base, in.Layout = l.ID, *l.Version, &doc
		e.Force, e.EditID = l.Force, l.EditID
	}
	v, _, err := s.svc.Save(c.Request.Context(), userOf(c), in, e)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, s.dashboardReply(c, v))
}

// handleDashboardUpdate is PUT /api/dashboard: parts of the state.
func (s *Server) handleDashboardUpdate(c *gin.Context) {
	var req dashboardUpdateRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	d, err := s.svc.UpdateDashboard(c.Request.Context(), userOf(c), req.patch())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, dashboardOut(d))
}
