package api

import (
	"context"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/dashsync/dashsync/ratelimit"
	dsync "github.com/dashsync/dashsync/sync"
)

// Budgets, as metrics label them.
const (
	budgetREST = "rest"
	budgetEdit = "edit"
)

// limitREST is the middleware after authenticate: every /api request (the WebSocket
// upgrade included) spends one of the user's REST budget; over it, 429 rate_limited
// with Retry-After, before anything else runs.
func (s *Server) limitREST(c *gin.Context) {
	if err := s.spend(c.Request.Context(), budgetREST, ratelimit.RESTKey(userOf(c)), s.limits.REST); err != nil {
		s.writeError(c, err)
		return
	}
	c.Next()
}

// limitEdit is the middleware of the routes that are one layout edit each (PATCH,
// PUT and restore of a layout): they also spend one of the user's edit budget, which
// WebSocket edits share.
func (s *Server) limitEdit(c *gin.Context) {
	if err := s.spendEdit(c); err != nil {
		s.writeError(c, err)
		return
	}
	c.Next()
}

// spendEdit spends one of the user's edit budget.
func (s *Server) spendEdit(c *gin.Context) error {
	return s.spend(c.Request.Context(), budgetEdit, ratelimit.EditKey(userOf(c)), s.limits.Edits)
}

// spend takes one token of key's budget under lim: nil when the request may go on, a
// rate_limited error carrying retryAfterMs when the budget is spent. Without a
// limiter or with an unlimited lim, nothing is asked. A limiter failure allows the
// request (fail open: a Redis outage must not stop the API), logged and counted; only
// a done ctx is returned as an error.
func (s *Server) spend(ctx context.Context, budget, key string, lim ratelimit.Limit) error {
	if s.limiter == nil || lim.Unlimited() {
		return nil
	}
	res, err := s.limiter.Allow(ctx, key, lim)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.metrics.limiterErrors.Inc()
		s.log.WarnContext(ctx, "rate limiter failed; allowing the request",
			"request_id", requestIDFrom(ctx), "budget", budget, "err", err)
		return nil
	}
	if res.Allowed {
		return nil
	}
	s.metrics.limited.WithLabelValues(budget).Inc()
	e := dsync.Errorf(dsync.CodeRateLimited, "%s", limitMessage(budget, lim))
	e.RetryAfterMs = res.RetryAfterMs()
	return e
}

// limitMessage tells the user which limit was hit.
func limitMessage(budget string, lim ratelimit.Limit) string {
	what := "requests"
	if budget == budgetEdit {
		what = "edits"
	}
	return fmt.Sprintf("too many %s: at most %g a second (bursts of %d)", what, lim.Rate, lim.MinBurst())
}
