package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dashsync/dashsync/api"
)

// Layout geometry: every widget is w×h = sharedW×2 on a grid of gridColumns; the
// shared widget's x moves within 0…gridColumns-sharedW, each editor's own widget's y
// within 0…maxY.
const (
	gridColumns = 12
	sharedW     = 2
	maxY        = 10000
)

// layoutPlan is one layout of the run: who owns it, its widgets, and which
// connections subscribe to and edit it.
type layoutPlan struct {
	Index int
	User  string
	Token string
	// Member is the editor the layout is shared with (--shared), and ConnToken the
	// token its connections use: the member's, or the owner's without --shared.
	Member    string
	ConnToken string
	ID        string
	Shared    string   // the widget every editor moves (overlapping edits)
	Own       []string // one widget per editor of the layout (non-overlapping edits)
	Initial   int64    // version once created
	Subs      int      // connections subscribed to it
	Editors   int      // of which edit
}

// restClient speaks the REST API of the first URL.
type restClient struct {
	base string
	http *http.Client
	errs *counters
}

// restError is a REST failure: the HTTP status and the error code of the body.
type restError struct {
	Status int
	Code   string
	Msg    string
}

func (e *restError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Msg)
}

// do sends one request as the token's user and decodes a 2xx answer into out. A 429
// is retried after its Retry-After, a few times (each counted as rate_limited).
func (r *restClient) do(ctx context.Context, method, path, token string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, r.base+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := r.http.Do(req)
		if err != nil {
			r.errs.add("rest")
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			r.errs.add("rest")
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if resp.StatusCode/100 == 2 {
			if out == nil {
				return nil
			}
			return json.Unmarshal(b, out)
		}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &eb)
		re := &restError{Status: resp.StatusCode, Code: eb.Error.Code, Msg: eb.Error.Message}
		if re.Code == "" {
			re.Code = "http_" + strconv.Itoa(resp.StatusCode)
		}
		r.errs.add(re.Code)
		if resp.StatusCode != http.StatusTooManyRequests || attempt >= 10 {
			return fmt.Errorf("%s %s: %w", method, path, re)
		}
		wait := time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = time.Duration(s)*time.Second + 50*time.Millisecond
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// userName is the id of user u, and memberName that of the member u's layouts are
// shared with (--shared).
func userName(c config, u int) string   { return c.UserPrefix + "u" + strconv.Itoa(u) }
func memberName(c config, u int) string { return c.UserPrefix + "m" + strconv.Itoa(u) }

// plan assigns connections, editors and owners: connection i subscribes to layout
// i mod L and the first E connections edit; layout l belongs to user l mod U.
func plan(c config, ttl time.Duration) ([]*layoutPlan, error) {
	tokens := make([]string, c.Users)
	members := make([]string, c.Users)
	for u := range tokens {
		var err error
		if tokens[u], err = api.MintToken(c.Secret, userName(c, u), ttl); err != nil {
			return nil, err
		}
		if members[u], err = api.MintToken(c.Secret, memberName(c, u), ttl); err != nil {
			return nil, err
		}
	}
	ls := make([]*layoutPlan, c.Layouts)
	for l := range ls {
		u := l % c.Users
		ls[l] = &layoutPlan{Index: l, User: userName(c, u), Token: tokens[u], ConnToken: tokens[u]}
		if c.Shared {
			ls[l].Member, ls[l].ConnToken = memberName(c, u), members[u]
		}
	}
	for i := range c.Conns {
		ls[i%c.Layouts].Subs++
		if i < c.Editors {
			ls[i%c.Layouts].Editors++
		}
	}
	return ls, nil
}

type widgetBody struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Source map[string]any `json:"source"`
}

type item struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

type layoutBody struct {
	Name    string          `json:"name"`
	Columns int             `json:"columns"`
	Items   map[string]item `json:"items"`
}

// setUp creates every layout as its user: a shared push widget, one push widget per
// editor (at least one, so a layout always has a couple), and the layout placing them.
func setUp(ctx context.Context, rc *restClient, ls []*layoutPlan, runID string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, l := range ls {
		g.Go(func() error {
			if err := setUpLayout(ctx, rc, l, runID); err != nil {
				return fmt.Errorf("set up layout %d (user %s): %w", l.Index, l.User, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func setUpLayout(ctx context.Context, rc *restClient, l *layoutPlan, runID string) error {
	newWidget := func(title string) (string, error) {
		var w struct {
			ID string `json:"id"`
		}
		err := rc.do(ctx, http.MethodPost, "/api/dashboard/widgets", l.Token,
			widgetBody{Type: "stat", Title: title, Source: map[string]any{"kind": "push"}}, &w)
		if err == nil && w.ID == "" {
			err = errors.New("create widget: no id in the answer")
		}
		return w.ID, err
	}
	var err error
	if l.Shared, err = newWidget(fmt.Sprintf("load %s shared", runID)); err != nil {
		return err
	}
	items := map[string]item{l.Shared: {X: 0, Y: 0, W: sharedW, H: 2}}
	for k := range max(l.Editors, 1) {
		id, err := newWidget(fmt.Sprintf("load %s editor %d", runID, k))
		if err != nil {
			return err
		}
		l.Own = append(l.Own, id)
		items[id] = item{X: (k * sharedW) % gridColumns, Y: 2 + 2*k, W: sharedW, H: 2}
	}
	var out struct {
		ID      string `json:"id"`
		Version int64  `json:"version"`
	}
	body := layoutBody{Name: fmt.Sprintf("load %s layout %d", runID, l.Index), Columns: gridColumns, Items: items}
	if err := rc.do(ctx, http.MethodPost, "/api/dashboard/layouts", l.Token, body, &out); err != nil {
		return err
	}
	if out.ID == "" {
		return errors.New("create layout: no id in the answer")
	}
	l.ID, l.Initial = out.ID, out.Version
	if l.Member != "" {
		body := map[string]any{"users": map[string]string{l.Member: "editor"}}
		if err := rc.do(ctx, http.MethodPut, "/api/dashboard/layouts/"+l.ID+"/access", l.Token, body, nil); err != nil {
			return fmt.Errorf("share with %s: %w", l.Member, err)
		}
	}
	return nil
}

// finalVersion reads the layout's version from the server.
func finalVersion(ctx context.Context, rc *restClient, l *layoutPlan) (int64, error) {
	var out struct {
		Version int64 `json:"version"`
	}
	err := rc.do(ctx, http.MethodGet, "/api/dashboard/layouts/"+l.ID, l.Token, nil, &out)
	return out.Version, err
}
