package memory

import (
	"context"
	"sync"
	"time"

	"github.com/dashsync/dashsync/hub"
)

var _ hub.ConnSlots = (*ConnSlots)(nil)

// DefaultSlotTTL is how long a connection slot lives without a refresh.
const DefaultSlotTTL = 30 * time.Second

// ConnSlots is the in-process hub.ConnSlots of the embedded default: one instance,
// so the count is this process's.
type ConnSlots struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	users map[string]map[string]time.Time // user → conn → expiry
}

// NewConnSlots returns an empty slot store whose slots live ttl (0: DefaultSlotTTL)
// without a refresh, on the clock now (nil: time.Now).
func NewConnSlots(ttl time.Duration, now func() time.Time) *ConnSlots {
	if ttl <= 0 {
		ttl = DefaultSlotTTL
	}
	if now == nil {
		now = time.Now
	}
	return &ConnSlots{ttl: ttl, now: now, users: map[string]map[string]time.Time{}}
}

// live drops user's expired slots and returns the others. Called with s.mu held.
func (s *ConnSlots) live(user string, now time.Time) map[string]time.Time {
	m := s.users[user]
	for conn, exp := range m {
		if !now.Before(exp) {
			delete(m, conn)
		}
	}
	return m
}

// Acquire implements hub.ConnSlots.
func (s *ConnSlots) Acquire(ctx context.Context, user, conn string, max int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.live(user, now)
	if _, held := m[conn]; !held && len(m) >= max {
		return false, nil
	}
	if m == nil {
		m = map[string]time.Time{}
		s.users[user] = m
	}
	m[conn] = now.Add(s.ttl)
	return true, nil
}

// Release implements hub.ConnSlots.
func (s *ConnSlots) Release(ctx context.Context, user, conn string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users[user], conn)
	if len(s.users[user]) == 0 {
		delete(s.users, user)
	}
	return nil
}

// Refresh implements hub.ConnSlots.
func (s *ConnSlots) Refresh(ctx context.Context, user string, conns []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(conns) == 0 {
		return nil
	}
	exp := s.now().Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.users[user]
	if m == nil {
		m = map[string]time.Time{}
		s.users[user] = m
	}
	for _, c := range conns {
		m[c] = exp
	}
	return nil
}
