package sync

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Action is something an actor does with a layout or with the widgets placed on it;
// the table says which role it needs (SPEC §10).
type Action int

// The actions of SPEC §10's table.
const (
	// ActRead: read the layout, its history and versions; subscribe to it.
	ActRead Action = iota
	// ActReadData: read and subscribe to the data of a widget placed on it.
	ActReadData
	// ActClone: copy it (with copies of its widgets) for oneself.
	ActClone
	// ActEdit: edit it (edit, PUT, PATCH, bulk PUT), restore, undo and redo, label.
	ActEdit
	// ActRefresh: force a data refresh of a widget placed on it.
	ActRefresh
	// ActManage: change its access and links, delete it, make it the default.
	ActManage
	// ActOwnWidget: change a widget's definition, push its data, remove it: the
	// widget's owner's alone, whoever the layouts it is placed on are shared with.
	ActOwnWidget
)

// permission is one row of the table: the least role an action needs, and whether a
// link may do it.
type permission struct {
	name string
	need Role
	link bool
}

// permissions is SPEC §10's table. Every check of what an actor may do reads it.
var permissions = map[Action]permission{
	ActRead:      {"read", RoleViewer, true},
	ActReadData:  {"read the data of", RoleViewer, true},
	ActClone:     {"clone", RoleViewer, false},
	ActEdit:      {"edit", RoleEditor, false},
	ActRefresh:   {"refresh the data of", RoleEditor, false},
	ActManage:    {"manage", RoleOwner, false},
	ActOwnWidget: {"change", RoleOwner, false},
}

// Actions lists every action of the table, in order.
func Actions() []Action { return slices.Sorted(maps.Keys(permissions)) }

// String names the action as the table does.
func (a Action) String() string { return permissions[a].name }

// Permits reports whether role (of a user, or of a link when link) allows action a.
func Permits(role Role, link bool, a Action) bool {
	p, ok := permissions[a]
	return ok && role.rank() >= p.need.rank() && (p.link || !link)
}

// Allow answers an actor's request for a on an object of kind with id: nil when
// role permits it, not_found without any role, forbidden with one that does not.
func Allow(role Role, link bool, a Action, kind, id string) error {
	switch {
	case role.rank() == 0:
		return Errorf(CodeNotFound, "%s %s not found", kind, id)
	case Permits(role, link, a):
		return nil
	case link:
		return Errorf(CodeForbidden, "a link may not %s this %s", a, kind)
	}
	return Errorf(CodeForbidden, "the %s role may not %s this %s", role, a, kind)
}

// IsLink reports whether who is a link's actor ("link:<id>") rather than a user.
func IsLink(who string) bool { return strings.HasPrefix(who, LinkUserPrefix) }

// users refuses a link actor what only users may do (their own dashboard, widgets,
// layouts lists, new layouts).
func users(who string) error {
	if IsLink(who) {
		return Errorf(CodeForbidden, "a link may only read its layout")
	}
	return nil
}

// MaxUserLen bounds a user id (a token's sub) in characters.
const MaxUserLen = 128

// CheckUserID checks a user id: 1 to MaxUserLen printable characters of valid UTF-8,
// not starting with LinkUserPrefix (reserved for links).
func CheckUserID(user string) error {
	if user == "" || !utf8.ValidString(user) || utf8.RuneCountInString(user) > MaxUserLen ||
		strings.ContainsFunc(user, unicode.IsControl) {
		return fmt.Errorf("user id must be 1 to %d printable characters of valid UTF-8", MaxUserLen)
	}
	if IsLink(user) {
		return fmt.Errorf("user ids starting with %q are links'", LinkUserPrefix)
	}
	return nil
}

// open reads layout id as who sees it and checks that who may do a with it. A link
// is read from the store on every call, so a revoked or expired one fails at once
// on every instance.
func (s *Service) open(ctx context.Context, r Reader, who, id string, a Action) (Layout, Role, error) {
	if !IsLink(who) {
		l, role, err := r.LayoutAs(ctx, id, who)
		if err != nil {
			return Layout{}, "", err
		}
		return l, role, Allow(role, false, a, "layout", id)
	}
	lk, err := s.liveLink(ctx, r, strings.TrimPrefix(who, LinkUserPrefix))
	if err != nil || lk.LayoutID != id {
		return Layout{}, "", Errorf(CodeNotFound, "layout %s not found", id)
	}
	l, _, err := r.LayoutAs(ctx, id, who)
	if err != nil {
		return Layout{}, "", err
	}
	return l, lk.Role, Allow(lk.Role, true, a, "layout", id)
}

// liveLink returns link id unless it is revoked or expired (not_found then).
func (s *Service) liveLink(ctx context.Context, r Reader, id string) (Link, error) {
	lk, err := r.Link(ctx, id)
	if err != nil {
		return Link{}, err
	}
	if lk.Revoked || !s.now().Before(lk.ExpiresAt.Time) {
		return Link{}, Errorf(CodeNotFound, "link %s not found", id)
	}
	return lk, nil
}

// LayoutWithRole is Layout with who's role on it.
func (s *Service) LayoutWithRole(ctx context.Context, who, id string) (Layout, Role, error) {
	return s.open(ctx, s.store, who, id, ActRead)
}

// Head returns layout id as stored, for whoever asks: the reads of a channel that
// fans the layout out to subscribers whose access was checked when they subscribed.
func (s *Service) Head(ctx context.Context, id string) (Layout, error) {
	l, _, err := s.store.LayoutAs(ctx, id, "")
	return l, err
}

// LinkActor is who a link token stands for: the actor ("link:<id>"), the one layout
// it may read, and when it expires.
type LinkActor struct {
	Who      string
	LayoutID string
	Expires  time.Time
}

// LinkUser checks a link token against the store and returns the actor it stands for.
// An unknown, revoked or expired link, or a token that is not a link's, is
// unauthorized.
func (s *Service) LinkUser(ctx context.Context, token string) (LinkActor, error) {
	layout, id, hash, ok := parseLinkToken(token)
	bad := Errorf(CodeUnauthorized, "the link is not valid: unknown, revoked or expired")
	if !ok || !ValidText(id) || !ValidText(layout) {
		return LinkActor{}, bad
	}
	lk, err := s.liveLink(ctx, s.store, id)
	switch {
	case ErrorCode(err) == CodeNotFound:
		return LinkActor{}, bad
	case err != nil:
		return LinkActor{}, err
	case !sameHash(lk.Hash, hash) || lk.LayoutID != layout:
		return LinkActor{}, bad
	}
	return LinkActor{Who: LinkUserPrefix + lk.ID, LayoutID: lk.LayoutID, Expires: lk.ExpiresAt.Time}, nil
}

// Sharing bounds (SPEC §10).
const (
	MaxMembers         = 100
	MaxLiveLinks       = 20
	MinLinkTTL         = 60 * time.Second
	MaxLinkTTL         = 365 * 24 * time.Hour
	DefaultLinkTTL     = 30 * 24 * time.Hour
	MaxLinkTTLSeconds  = int64(MaxLinkTTL / time.Second)
	MinLinkTTLSeconds  = int64(MinLinkTTL / time.Second)
	DefaultLinkSeconds = int64(DefaultLinkTTL / time.Second)
	maxAccessPatchKeys = 2 * MaxMembers
)

// AccessView is a layout's access list with its live links (SPEC §10).
type AccessView struct {
	Owner   string          `json:"owner"`
	Users   map[string]Role `json:"users"`
	Links   []Link          `json:"links"`
	Version int64           `json:"version"`
}

// AccessOf returns layout id's access list and live links: the owner's alone.
func (s *Service) AccessOf(ctx context.Context, who, id string) (AccessView, error) {
	if _, _, err := s.open(ctx, s.store, who, id, ActManage); err != nil {
		return AccessView{}, err
	}
	return s.accessView(ctx, s.store, id)
}

func (s *Service) accessView(ctx context.Context, r Reader, id string) (AccessView, error) {
	a, err := r.Access(ctx, id)
	if err != nil {
		return AccessView{}, err
	}
	links, err := r.Links(ctx, id)
	if err != nil {
		return AccessView{}, err
	}
	now := s.now()
	live := []Link{}
	for _, l := range links {
		if now.Before(l.ExpiresAt.Time) {
			live = append(live, l)
		}
	}
	users := a.Users
	if users == nil {
		users = map[string]Role{}
	}
	return AccessView{Owner: a.Owner, Users: users, Links: live, Version: a.Version}, nil
}

// UpdateAccess applies an RFC 7396 merge of users (a nil role removes the user) to
// layout id's access list. With version set, it must equal the access version (else
// version_conflict with the current access list).
func (s *Service) UpdateAccess(ctx context.Context, who, id string, users map[string]*Role, version *int64) (AccessView, error) {
	if len(users) > maxAccessPatchKeys {
		return AccessView{}, Invalid("users", "max", fmt.Sprint(MaxMembers), "a layout is shared with at most %d users", MaxMembers)
	}
	keys := slices.Sorted(maps.Keys(users)) // the same input reports the same first error
	for _, u := range keys {
		if err := CheckUserID(u); err != nil {
			return AccessView{}, Invalid("users", "key", "", "users: %v", err)
		}
		if r := users[u]; r != nil && *r != RoleViewer && *r != RoleEditor {
			return AccessView{}, Invalid("users."+u, "oneof", "viewer editor", "users.%s must be viewer, editor or null", u)
		}
	}
	var out AccessView
	err := s.run(ctx, func(t *tx) error {
		l, _, err := s.open(ctx, t, who, id, ActManage)
		if err != nil {
			return err
		}
		a, err := t.Access(ctx, id)
		if err != nil {
			return err
		}
		if version != nil && *version != a.Version {
			cur, err := s.accessView(ctx, t, id)
			if err != nil {
				return err
			}
			return conflictError(cur, a.Version, nil, "access version %d is not the current version %d", *version, a.Version)
		}
		next := maps.Clone(a.Users)
		if next == nil {
			next = map[string]Role{}
		}
		for _, u := range keys {
			if u == l.Owner {
				return Invalid("users."+u, "owner", "", "the owner cannot be listed: they own the layout")
			}
			if r := users[u]; r == nil {
				delete(next, u)
			} else {
				next[u] = *r
			}
		}
		if len(next) > MaxMembers {
			return Invalid("users", "max", fmt.Sprint(MaxMembers), "a layout is shared with at most %d users", MaxMembers)
		}
		if maps.Equal(next, a.Users) || (len(next) == 0 && len(a.Users) == 0) {
			out, err = s.accessView(ctx, t, id)
			return err
		}
		if err := t.PutAccess(ctx, Access{LayoutID: id, Owner: l.Owner, Users: next, Version: a.Version + 1}); err != nil {
			return fmt.Errorf("save access of layout %s: %w", id, err)
		}
		for _, u := range slices.Sorted(maps.Keys(mergeKeys(a.Users, next))) {
			if a.Users[u] != next[u] {
				t.emit(AccessChanged{Layout: l.SummaryFor(next[u]), User: u, Role: next[u]})
			}
		}
		out, err = s.accessView(ctx, t, id)
		return err
	})
	return out, err
}

func mergeKeys(a, b map[string]Role) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// NewLink is a link made by CreateLink: the link and its token, shown once.
type NewLink struct {
	Link
	Token string `json:"token"`
}

// CreateLink makes a read-only link to layout id, valid for ttlSeconds
// (DefaultLinkSeconds, 30 days, when the client names none).
func (s *Service) CreateLink(ctx context.Context, who, id string, role Role, ttlSeconds int64) (NewLink, error) {
	if role != RoleViewer {
		return NewLink{}, Invalid("role", "oneof", "viewer", "a link's role is viewer")
	}
	if ttlSeconds < MinLinkTTLSeconds || ttlSeconds > MaxLinkTTLSeconds {
		return NewLink{}, Invalid("ttlSeconds", "range", fmt.Sprintf("%d-%d", MinLinkTTLSeconds, MaxLinkTTLSeconds),
			"ttlSeconds must be between %d and %d", MinLinkTTLSeconds, MaxLinkTTLSeconds)
	}
	secret := make([]byte, linkSecretLen)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails
	hash := sha256.Sum256(secret)
	var out NewLink
	err := s.run(ctx, func(t *tx) error {
		if _, _, err := s.open(ctx, t, who, id, ActManage); err != nil {
			return err
		}
		view, err := s.accessView(ctx, t, id)
		if err != nil {
			return err
		}
		if len(view.Links) >= MaxLiveLinks {
			return Errorf(CodeConflict, "a layout has at most %d live links: revoke one first", MaxLiveLinks)
		}
		now := NewTime(s.now())
		lk := Link{ID: s.newID(), LayoutID: id, Role: role, Hash: hash[:], CreatedAt: now,
			ExpiresAt: NewTime(now.Add(time.Duration(ttlSeconds) * time.Second))}
		if err := t.CreateLink(ctx, lk); err != nil {
			return fmt.Errorf("create link: %w", err)
		}
		out = NewLink{Link: lk, Token: linkToken(lk.LayoutID, lk.ID, secret)}
		return nil
	})
	return out, err
}

// RevokeLink revokes link linkID of layout id: its token stops working on every
// instance, and the sockets opened with it are closed.
func (s *Service) RevokeLink(ctx context.Context, who, id, linkID string) error {
	return s.run(ctx, func(t *tx) error {
		if _, _, err := s.open(ctx, t, who, id, ActManage); err != nil {
			return err
		}
		if !ValidText(linkID) {
			return Errorf(CodeNotFound, "link %s not found", linkID)
		}
		if err := t.RevokeLink(ctx, id, linkID); err != nil {
			return err
		}
		t.emit(LinkRevoked{LayoutID: id, LinkID: linkID})
		return nil
	})
}
