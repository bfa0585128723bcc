package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// RoutesOf lists the routes h (a *Server) registered, so that the authorization
// table (authz_test.go) can hold every one of them to a row.
func RoutesOf(h http.Handler) gin.RoutesInfo { return h.(*Server).engine.Routes() }
