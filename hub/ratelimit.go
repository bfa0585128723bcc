package hub

import (
	"context"

	"github.com/dashsync/dashsync/ratelimit"
	dsync "github.com/dashsync/dashsync/sync"
)

// Budgets, as metrics label them.
const (
	budgetMessages = "messages"
	budgetEdit     = "edit"
)

// spendMessage spends one of the connection's message budget: every client message
// does, whatever it is.
func (c *conn) spendMessage(ctx context.Context) error {
	return c.spend(ctx, budgetMessages, c.h.cfg.MessageLimiter, ratelimit.MessageKey(c.id), c.h.cfg.Limits.Messages)
}

// spendEdit spends one of the user's edit budget, which REST edits share.
func (c *conn) spendEdit(ctx context.Context) error {
	return c.spend(ctx, budgetEdit, c.h.cfg.Limiter, ratelimit.EditKey(c.uid), c.h.cfg.Limits.Edits)
}

// spend takes one token of key's budget under lim: nil when the message may go on, a
// rate_limited error carrying retryAfterMs when the budget is spent (the connection
// stays open). Without a limiter or with an unlimited lim, nothing is asked. A
// limiter failure allows the message (fail open), logged and counted; only a done
// ctx (the connection closing) is an error, unavailable.
func (c *conn) spend(ctx context.Context, budget string, l ratelimit.Limiter, key string, lim ratelimit.Limit) error {
	if l == nil || lim.Unlimited() {
		return nil
	}
	res, err := l.Allow(ctx, key, lim)
	if err != nil {
		if ctx.Err() != nil {
			return &dsync.Error{Code: dsync.CodeUnavailable, Message: "the connection is closing", Err: err}
		}
		c.h.m.limiterErrors.Inc()
		c.h.log.Warn("rate limiter failed; allowing the message", "client", c.id, "user", c.uid, "budget", budget, "err", err)
		return nil
	}
	if res.Allowed {
		return nil
	}
	c.h.m.limited.WithLabelValues(budget).Inc()
	what := "messages"
	if budget == budgetEdit {
		what = "edits"
	}
	e := dsync.Errorf(dsync.CodeRateLimited, "too many %s: at most %g a second (bursts of %d)", what, lim.Rate, lim.MinBurst())
	e.RetryAfterMs = res.RetryAfterMs()
	return e
}
