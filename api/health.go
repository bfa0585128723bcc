package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness answers.
const (
	checkOK     = "ok"
	checkFailed = "failed"
)

type readyResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleHealth is GET /healthz: the process is alive.
func (s *Server) handleHealth(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// handleReady is GET /readyz: 200 when the store and every configured check answer,
// else 503 naming the checks that failed (their errors go to the log only).
func (s *Server) handleReady(c *gin.Context) {
	checks := append([]Check{{Name: "store", Check: s.svc.Ping}}, s.checks...)
	results := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, ch := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(c.Request.Context(), s.readyWait)
			defer cancel()
			defer func() {
				if r := recover(); r != nil {
					results[i] = fmt.Errorf("check panicked: %v", r)
				}
			}()
			results[i] = ch.Check(ctx)
		})
	}
	wg.Wait()
	resp := readyResponse{Status: checkOK, Checks: make(map[string]string, len(checks))}
	status := http.StatusOK
	for i, ch := range checks {
		resp.Checks[ch.Name] = checkOK
		if err := results[i]; err != nil {
			s.log.WarnContext(c.Request.Context(), "readiness check failed", "check", ch.Name, "err", err)
			resp.Checks[ch.Name] = checkFailed
			resp.Status = "unavailable"
			status = http.StatusServiceUnavailable
		}
	}
	c.JSON(status, resp)
}

// handleMetrics is GET /metrics: the Prometheus registry given in Config.
func (s *Server) handleMetrics() gin.HandlerFunc {
	h := promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry})
	return gin.WrapH(h)
}
