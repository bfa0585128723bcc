package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	dsync "github.com/dashsync/dashsync/sync"
)

// Sharing routes (SPEC §10): a layout's access list and its links, the owner's alone.
// The domain checks the caller's role; these only decode and answer.

// accessPutRequest is the body of PUT /api/dashboard/layouts/:id/access: an RFC 7396
// merge of users (null removes one) and, optionally, the access version it is based
// on. The domain checks the roles and user ids.
type accessPutRequest struct {
	Users   map[string]*dsync.Role `json:"users" validate:"required,max=200"`
	Version *int64                 `json:"version" validate:"omitnil,min=0"`
}

// linkCreateRequest is the optional body of POST /api/dashboard/layouts/:id/links.
type linkCreateRequest struct {
	Role       dsync.Role `json:"role" validate:"omitempty,max=16"`
	TTLSeconds *int64     `json:"ttlSeconds"`
}

func (s *Server) routeSharing(g *gin.RouterGroup) {
	g.GET("/:id/access", s.handleAccessGet)
	g.PUT("/:id/access", s.handleAccessPut)
	g.POST("/:id/links", s.handleLinkCreate)
	g.DELETE("/:id/links/:linkId", s.handleLinkRevoke)
}

// handleAccessGet is GET /api/dashboard/layouts/:id/access.
func (s *Server) handleAccessGet(c *gin.Context) {
	a, err := s.svc.AccessOf(c.Request.Context(), userOf(c), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

// handleAccessPut is PUT /api/dashboard/layouts/:id/access.
func (s *Server) handleAccessPut(c *gin.Context) {
	var req accessPutRequest
	if err := s.bind(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	a, err := s.svc.UpdateAccess(c.Request.Context(), userOf(c), c.Param("id"), req.Users, req.Version)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

// handleLinkCreate is POST /api/dashboard/layouts/:id/links: the token is in this
// reply alone.
func (s *Server) handleLinkCreate(c *gin.Context) {
	var req linkCreateRequest
	if err := s.bindOptional(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	if req.Role == "" {
		req.Role = dsync.RoleViewer
	}
	ttl := dsync.DefaultLinkSeconds
	if req.TTLSeconds != nil {
		ttl = *req.TTLSeconds
	}
	l, err := s.svc.CreateLink(c.Request.Context(), userOf(c), c.Param("id"), req.Role, ttl)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, l)
}

// handleLinkRevoke is DELETE /api/dashboard/layouts/:id/links/:linkId.
func (s *Server) handleLinkRevoke(c *gin.Context) {
	if err := s.svc.RevokeLink(c.Request.Context(), userOf(c), c.Param("id"), c.Param("linkId")); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
