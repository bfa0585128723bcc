package api_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"

	"github.com/dashsync/dashsync/api"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
)

// The authorization table of SPEC §10: every REST route and every WebSocket message
// type (rows) as asked by every kind of actor (columns), each cell the exact answer.
// TestAuthorization fails for a route the server registers, or a message type the
// hub handles, that has no row: a new one must say who may use it.

// authzActor is a column of the table: who asks, about the fixture's layout L (alice's).
type authzActor int

const (
	asOwner       authzActor = iota // alice, who owns L
	asEditor                        // bob, an editor of L
	asViewer                        // carol, a viewer of L
	asLink                          // a live link to L
	asStranger                      // eve, a user L is not shared with
	asOtherLink                     // a live link to dave's layout M
	asExpiredLink                   // a link to L past its expiry
	asRevokedLink                   // a revoked link to L
	authzColumns
)

var authzActorNames = [authzColumns]string{"owner", "editor", "viewer", "link", "stranger", "otherLink", "expiredLink", "revokedLink"}

func (a authzActor) String() string { return authzActorNames[a] }

// authzOutcome is the answer of one cell.
type authzOutcome struct {
	status int    // HTTP status (101: the WebSocket opened); 0 for a WebSocket reply
	code   string // the error code; "" for none
	reply  string // the WebSocket reply's type ("error" for an error)
	// item and itemCode are the status and error code of the one entry of a 207
	// (a batch or bulk answer about the fixture's widget or layout).
	item     int
	itemCode string
}

func (o authzOutcome) String() string {
	switch {
	case o.reply != "" && o.code != "":
		return fmt.Sprintf("WebSocket %s %s", o.reply, o.code)
	case o.reply != "":
		return "WebSocket " + o.reply
	case o.item != 0:
		return fmt.Sprintf("%d with the entry %d %s", o.status, o.item, o.itemCode)
	case o.code != "":
		return fmt.Sprintf("%d %s", o.status, o.code)
	}
	return strconv.Itoa(o.status)
}

// allowed reports whether the answer says the action was done.
func (o authzOutcome) allowed() bool {
	return o.code == "" && o.itemCode == "" && o.status < 400 && o.reply != "error"
}

// authzRow is a row of the table: a REST request (method and route, the gin route it
// covers) or WebSocket messages (msg, the type it covers), and each actor's answer.
type authzRow struct {
	name string
	// REST: the route covered, and the path sent, with {L} {W} {P} {O} {link} standing
	// for the fixture's ids. GET /api/ws is a WebSocket dial.
	method, route, target string
	body                  func(f *authzFixture, t *testing.T, a authzActor) any
	// WebSocket: the message type covered ("" for none) and the messages sent on a
	// connection of the actor's; the reply to the last one is the answer.
	msg  string
	send func(f *authzFixture, t *testing.T, token string) []map[string]any
	// fresh gives each cell a fixture of its own: the row destroys what others use.
	fresh bool
	// prep runs before each cell.
	prep func(f *authzFixture, t *testing.T)
	// state is what the row changes: a cell that answers it was done must have
	// changed it, one that answers a refusal must not have.
	state func(f *authzFixture, t *testing.T) string
	// check looks further into an allowed cell's answer.
	check func(f *authzFixture, t *testing.T, a authzActor, body []byte)
	want  [authzColumns]authzOutcome
}

func (r authzRow) overWebSocket() bool { return r.send != nil || r.route == "/api/ws" }

// authzTable is the table. Columns: owner, editor, viewer, link, stranger, otherLink,
// expiredLink, revokedLink.
func authzTable() []authzRow {
	type cells = [authzColumns]authzOutcome
	// The answers.
	var (
		ok           = authzOutcome{status: http.StatusOK}
		created      = authzOutcome{status: http.StatusCreated}
		noContent    = authzOutcome{status: http.StatusNoContent}
		upgraded     = authzOutcome{status: http.StatusSwitchingProtocols}
		invalid      = authzOutcome{status: http.StatusBadRequest, code: "validation_failed"}
		unauthorized = authzOutcome{status: http.StatusUnauthorized, code: "unauthorized"} // REST, and a refused upgrade
		forbidden    = authzOutcome{status: http.StatusForbidden, code: "forbidden"}
		notFound     = authzOutcome{status: http.StatusNotFound, code: "not_found"}

		subscribed   = authzOutcome{reply: "subscribed"}
		unsubscribed = authzOutcome{reply: "unsubscribed"}
		acked        = authzOutcome{reply: "ack"}
		refreshed    = authzOutcome{reply: "refreshed"}
		authed       = authzOutcome{reply: "authed"}
		pong         = authzOutcome{reply: "pong"}
		wsBad        = authzOutcome{reply: "error", code: "bad_request"}
		wsForbidden  = authzOutcome{reply: "error", code: "forbidden"}
		wsNotFound   = authzOutcome{reply: "error", code: "not_found"}
	)
	// multi is a 207 whose entry answered o.
	multi := func(o authzOutcome) authzOutcome {
		return authzOutcome{status: http.StatusMultiStatus, item: o.status, itemCode: o.code}
	}
	// everyone is the row of a route that needs no token: the same answer for all.
	everyone := func(o authzOutcome) (w cells) {
		for i := range w {
			w[i] = o
		}
		return w
	}
	sub := func(channel string) map[string]any { return map[string]any{"type": "subscribe", "channel": channel} }

	return []authzRow{
		// Health, metrics and the demo page need no token.
		{name: "health", method: "GET", route: "/healthz", target: "/healthz", want: everyone(ok)},
		{name: "readiness", method: "GET", route: "/readyz", target: "/readyz", want: everyone(ok)},
		{name: "metrics", method: "GET", route: "/metrics", target: "/metrics", want: everyone(ok)},
		{name: "demo page", method: "GET", route: "/", target: "/", want: everyone(ok)},
		{name: "demo page head", method: "HEAD", route: "/", target: "/", want: everyone(ok)},
		{name: "demo asset", method: "GET", route: "/web/*file", target: "/web/app.js", want: everyone(ok)},
		{name: "demo asset head", method: "HEAD", route: "/web/*file", target: "/web/app.js", want: everyone(ok)},
		{name: "dev token", method: "GET", route: "/dev/token", target: "/dev/token?user=zed", want: everyone(ok)},

		// The caller's own dashboard: any user's, no link's.
		{name: "dashboard", method: "GET", route: "/api/dashboard", target: "/api/dashboard",
			want: cells{ok, ok, ok, forbidden, ok, forbidden, unauthorized, unauthorized}},
		{name: "save state", method: "POST", route: "/api/dashboard", target: "/api/dashboard",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"preferences": map[string]int64{"p": f.e.next()}}
			},
			want: cells{ok, ok, ok, forbidden, ok, forbidden, unauthorized, unauthorized}},
		{name: "save state with L", method: "POST", route: "/api/dashboard", target: "/api/dashboard",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"layout": map[string]any{"id": f.L, "version": f.layoutVersion(t), "name": f.e.name("D")}}
			},
			state: (*authzFixture).layoutState,
			want:  cells{ok, ok, forbidden, forbidden, notFound, forbidden, unauthorized, unauthorized}},
		{name: "update state", method: "PUT", route: "/api/dashboard", target: "/api/dashboard",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"preferences": map[string]int64{"q": f.e.next()}}
			},
			want: cells{ok, ok, ok, forbidden, ok, forbidden, unauthorized, unauthorized}},
		// Without access L does not exist: as for any unknown layout, validation_failed.
		{name: "make L current", method: "PUT", route: "/api/dashboard", target: "/api/dashboard",
			body:  func(f *authzFixture, t *testing.T, _ authzActor) any { return map[string]any{"currentLayoutId": f.L} },
			check: (*authzFixture).checkCurrentIsL,
			want:  cells{ok, ok, ok, forbidden, invalid, forbidden, unauthorized, unauthorized}},
		{name: "templates", method: "GET", route: "/api/dashboard/templates", target: "/api/dashboard/templates",
			want: cells{ok, ok, ok, forbidden, ok, forbidden, unauthorized, unauthorized}},

		// Widgets: the data of those placed on L is every member's and the link's; the
		// definition and pushes are alice's alone.
		{name: "own widgets", method: "GET", route: "/api/dashboard/widgets", target: "/api/dashboard/widgets",
			want: cells{ok, ok, ok, forbidden, ok, forbidden, unauthorized, unauthorized}},
		{name: "create widget", method: "POST", route: "/api/dashboard/widgets", target: "/api/dashboard/widgets",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any { return authzStaticWidget },
			want: cells{created, created, created, forbidden, created, forbidden, unauthorized, unauthorized}},
		{name: "batch", method: "GET", route: "/api/dashboard/widgets/batch", target: "/api/dashboard/widgets/batch?ids={W}",
			want: cells{ok, ok, ok, ok, multi(notFound), multi(notFound), unauthorized, unauthorized}},
		{name: "batch refresh", method: "GET", route: "/api/dashboard/widgets/batch", target: "/api/dashboard/widgets/batch?ids={W}&refresh=true",
			want: cells{ok, ok, multi(forbidden), multi(forbidden), multi(notFound), multi(notFound), unauthorized, unauthorized}},
		{name: "batch", method: "POST", route: "/api/dashboard/widgets/batch", target: "/api/dashboard/widgets/batch",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any { return map[string]any{"ids": []string{f.W}} },
			want: cells{ok, ok, ok, ok, multi(notFound), multi(notFound), unauthorized, unauthorized}},
		{name: "batch refresh", method: "POST", route: "/api/dashboard/widgets/batch", target: "/api/dashboard/widgets/batch",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"ids": []string{f.W}, "refresh": true}
			},
			want: cells{ok, ok, multi(forbidden), multi(forbidden), multi(notFound), multi(notFound), unauthorized, unauthorized}},
		{name: "widget on L", method: "GET", route: "/api/dashboard/widgets/:id", target: "/api/dashboard/widgets/{W}",
			want: cells{ok, ok, ok, ok, notFound, notFound, unauthorized, unauthorized}},
		{name: "widget not on L", method: "GET", route: "/api/dashboard/widgets/:id", target: "/api/dashboard/widgets/{O}",
			want: cells{ok, notFound, notFound, notFound, notFound, notFound, unauthorized, unauthorized}},
		{name: "widget refresh", method: "GET", route: "/api/dashboard/widgets/:id", target: "/api/dashboard/widgets/{W}?refresh=true",
			want: cells{ok, ok, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "update widget", method: "POST", route: "/api/dashboard/widgets/:id", target: "/api/dashboard/widgets/{W}",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"version": f.widget(t, f.W).Version, "title": f.e.name("T")}
			},
			state: func(f *authzFixture, t *testing.T) string { return fmt.Sprint(f.widget(t, f.W).Version) },
			want:  cells{ok, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "clear data", method: "DELETE", route: "/api/dashboard/widgets/:id", target: "/api/dashboard/widgets/{P}",
			prep: (*authzFixture).pushData, state: (*authzFixture).pushedData,
			want: cells{noContent, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "remove widget", method: "DELETE", route: "/api/dashboard/widgets/:id", target: "/api/dashboard/widgets/{W}?remove=true",
			fresh: true,
			state: func(f *authzFixture, t *testing.T) string {
				_, err := f.e.srv.Service.Widget(context.Background(), "alice", f.W)
				_, placed := f.layout(t).Items[f.W]
				return fmt.Sprintf("widget: %s, placed on L: %v", dsync.ErrorCode(err), placed)
			},
			want: cells{noContent, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "push data", method: "PUT", route: "/api/dashboard/widgets/:id/data", target: "/api/dashboard/widgets/{P}/data",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"data": map[string]int64{"n": f.e.next()}}
			},
			state: (*authzFixture).pushedData,
			want:  cells{ok, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},

		// Layouts.
		{name: "own layouts", method: "GET", route: "/api/dashboard/layouts", target: "/api/dashboard/layouts",
			want: cells{ok, ok, ok, forbidden, ok, forbidden, unauthorized, unauthorized}},
		{name: "layouts with shared", method: "GET", route: "/api/dashboard/layouts", target: "/api/dashboard/layouts?include=shared",
			check: (*authzFixture).checkSharedList,
			want:  cells{ok, ok, ok, forbidden, ok, forbidden, unauthorized, unauthorized}},
		{name: "create layout", method: "POST", route: "/api/dashboard/layouts", target: "/api/dashboard/layouts",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any { return map[string]any{"name": "Mine"} },
			want: cells{created, created, created, forbidden, created, forbidden, unauthorized, unauthorized}},
		{name: "bulk update L", method: "PUT", route: "/api/dashboard/layouts", target: "/api/dashboard/layouts",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"layouts": []any{map[string]any{"id": f.L, "version": f.layoutVersion(t), "name": f.e.name("B")}}}
			},
			state: (*authzFixture).layoutState,
			want:  cells{ok, ok, multi(forbidden), multi(forbidden), multi(notFound), multi(notFound), unauthorized, unauthorized}},
		{name: "read L", method: "GET", route: "/api/dashboard/layouts/:id", target: "/api/dashboard/layouts/{L}",
			want: cells{ok, ok, ok, ok, notFound, notFound, unauthorized, unauthorized}},
		{name: "put L", method: "PUT", route: "/api/dashboard/layouts/:id", target: "/api/dashboard/layouts/{L}",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"version": f.layoutVersion(t), "name": f.e.name("P")}
			},
			state: (*authzFixture).layoutState,
			want:  cells{ok, ok, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "patch L", method: "PATCH", route: "/api/dashboard/layouts/:id", target: "/api/dashboard/layouts/{L}",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"version": f.layoutVersion(t), "ops": []any{f.e.settingOp()}}
			},
			state: (*authzFixture).layoutState, check: (*authzFixture).checkAuthor,
			want: cells{ok, ok, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		// A shared layout places its owner's widgets only: an editor's own is invalid.
		{name: "place own widget on L", method: "PATCH", route: "/api/dashboard/layouts/:id", target: "/api/dashboard/layouts/{L}",
			fresh: true, // L keeps the items the other rows count on
			body: func(f *authzFixture, t *testing.T, a authzActor) any {
				id := f.O // a link owns no widget: alice's, placed on no layout
				if _, isUser := authzUsers[a]; isUser {
					id = f.e.widgetOf(t, f.tokens[a])
				}
				item := map[string]int{"x": 4, "y": 0, "w": 2, "h": 2}
				return map[string]any{"version": f.layoutVersion(t), "ops": []any{map[string]any{"op": "add", "path": "/items/" + id, "value": item}}}
			},
			state: (*authzFixture).layoutState,
			want:  cells{ok, invalid, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "delete L", method: "DELETE", route: "/api/dashboard/layouts/:id", target: "/api/dashboard/layouts/{L}",
			fresh: true,
			state: func(f *authzFixture, t *testing.T) string {
				_, err := f.e.srv.Service.Layout(context.Background(), "alice", f.L)
				return string(dsync.ErrorCode(err))
			},
			want: cells{noContent, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "clone L", method: "POST", route: "/api/dashboard/layouts/:id", target: "/api/dashboard/layouts/{L}",
			check: (*authzFixture).checkClone,
			want:  cells{created, created, created, forbidden, notFound, forbidden, unauthorized, unauthorized}},
		{name: "make L default", method: "POST", route: "/api/dashboard/layouts/:id/default", target: "/api/dashboard/layouts/{L}/default",
			fresh: true,
			state: func(f *authzFixture, t *testing.T) string { return fmt.Sprint(f.layout(t).IsDefault) },
			want:  cells{ok, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "history of L", method: "GET", route: "/api/dashboard/layouts/:id/versions", target: "/api/dashboard/layouts/{L}/versions",
			want: cells{ok, ok, ok, ok, notFound, notFound, unauthorized, unauthorized}},
		{name: "restore version 1 of L", method: "POST", route: "/api/dashboard/layouts/:id/versions/:v/restore",
			target: "/api/dashboard/layouts/{L}/versions/1/restore",
			prep:   (*authzFixture).ownerEdit, state: (*authzFixture).layoutState,
			want: cells{ok, ok, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},

		// Access and links: the owner's alone.
		{name: "access of L", method: "GET", route: "/api/dashboard/layouts/:id/access", target: "/api/dashboard/layouts/{L}/access",
			want: cells{ok, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "share L", method: "PUT", route: "/api/dashboard/layouts/:id/access", target: "/api/dashboard/layouts/{L}/access",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any {
				return map[string]any{"users": map[string]string{f.e.name("erin"): "viewer"}}
			},
			state: func(f *authzFixture, t *testing.T) string {
				a, err := f.e.srv.Service.AccessOf(context.Background(), "alice", f.L)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(a.Version, a.Users)
			},
			want: cells{ok, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "make a link", method: "POST", route: "/api/dashboard/layouts/:id/links", target: "/api/dashboard/layouts/{L}/links",
			body: func(f *authzFixture, t *testing.T, _ authzActor) any { return map[string]any{"role": "viewer"} },
			state: func(f *authzFixture, t *testing.T) string {
				a, err := f.e.srv.Service.AccessOf(context.Background(), "alice", f.L)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(len(a.Links), " live links")
			},
			want: cells{created, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},
		{name: "revoke the link", method: "DELETE", route: "/api/dashboard/layouts/:id/links/:linkId", target: "/api/dashboard/layouts/{L}/links/{link}",
			fresh: true,
			state: func(f *authzFixture, t *testing.T) string {
				lk, err := f.e.srv.Store.Link(context.Background(), f.link)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint("revoked: ", lk.Revoked)
			},
			want: cells{noContent, forbidden, forbidden, forbidden, notFound, notFound, unauthorized, unauthorized}},

		// The WebSocket: anyone with a live token opens it; what they may do on it is
		// what they may do over REST.
		{name: "open", method: "GET", route: "/api/ws", target: "/api/ws", check: (*authzFixture).checkHelloUser,
			want: cells{upgraded, upgraded, upgraded, upgraded, upgraded, upgraded, unauthorized, unauthorized}},
		{name: "subscribe layout:L", msg: "subscribe",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{sub("layout:" + f.L)}
			},
			check: (*authzFixture).checkSubscribedRole,
			want:  cells{subscribed, subscribed, subscribed, subscribed, wsNotFound, wsNotFound, unauthorized, unauthorized}},
		{name: "subscribe widget on L", msg: "subscribe",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{sub("widget:" + f.W)}
			},
			want: cells{subscribed, subscribed, subscribed, subscribed, wsNotFound, wsNotFound, unauthorized, unauthorized}},
		{name: "subscribe widget not on L", msg: "subscribe",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{sub("widget:" + f.O)}
			},
			want: cells{subscribed, wsNotFound, wsNotFound, wsNotFound, wsNotFound, wsNotFound, unauthorized, unauthorized}},
		{name: "subscribe user", msg: "subscribe",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any { return []map[string]any{sub("user")} },
			want: cells{subscribed, subscribed, subscribed, wsForbidden, subscribed, wsForbidden, unauthorized, unauthorized}},
		// Only a subscription that was made can be ended.
		{name: "unsubscribe layout:L", msg: "unsubscribe",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{sub("layout:" + f.L), {"type": "unsubscribe", "channel": "layout:" + f.L}}
			},
			want: cells{unsubscribed, unsubscribed, unsubscribed, unsubscribed, wsBad, wsBad, unauthorized, unauthorized}},
		{name: "edit layout:L", msg: "edit",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{{"type": "edit", "channel": "layout:" + f.L, "base": f.layoutVersion(t), "ops": []any{f.e.settingOp()}}}
			},
			state: (*authzFixture).layoutState, check: (*authzFixture).checkAuthor,
			want: cells{acked, acked, wsForbidden, wsForbidden, wsNotFound, wsNotFound, unauthorized, unauthorized}},
		{name: "refresh widget on L", msg: "refresh",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{{"type": "refresh", "channel": "widget:" + f.W}}
			},
			want: cells{refreshed, refreshed, wsForbidden, wsForbidden, wsNotFound, wsNotFound, unauthorized, unauthorized}},
		// Subscribed, the role granted at subscribe time decides.
		{name: "refresh widget on L subscribed", msg: "refresh",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{sub("widget:" + f.W), {"type": "refresh", "channel": "widget:" + f.W}}
			},
			want: cells{refreshed, refreshed, wsForbidden, wsForbidden, wsNotFound, wsNotFound, unauthorized, unauthorized}},
		// A user sends a token of their own; a link, its link token.
		{name: "auth", msg: "auth",
			send: func(f *authzFixture, t *testing.T, tok string) []map[string]any {
				return []map[string]any{{"type": "auth", "token": tok}}
			},
			want: cells{authed, authed, authed, wsForbidden, authed, wsForbidden, unauthorized, unauthorized}},
		{name: "ping", msg: "ping",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{{"type": "ping"}}
			},
			want: cells{pong, pong, pong, pong, pong, pong, unauthorized, unauthorized}},
		{name: "unknown message type",
			send: func(f *authzFixture, t *testing.T, _ string) []map[string]any {
				return []map[string]any{{"type": "frobnicate"}}
			},
			want: cells{wsBad, wsBad, wsBad, wsBad, wsBad, wsBad, unauthorized, unauthorized}},
	}
}

var authzStaticWidget = map[string]any{"type": "stat", "title": "T", "source": map[string]any{"kind": "static", "data": map[string]int{"value": 42}}}

// TestAuthorization_EveryRouteAndMessageAnswersEveryActorAsSpec10Says runs the table
// on each store backend, after checking that every route and message type has a row.
func TestAuthorization_EveryRouteAndMessageAnswersEveryActorAsSpec10Says(t *testing.T) {
	t.Parallel()
	wantEveryMessageTypeInTable(t)
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		e := newAuthzEnv(t, backend)
		wantEveryRouteInTable(t, e.srv)
		shared := e.newFixture(t)
		for _, r := range authzTable() {
			t.Run(r.name+" "+r.what(), func(t *testing.T) {
				for a := range authzColumns {
					t.Run(a.String(), func(t *testing.T) {
						f := shared
						if r.fresh {
							f = e.newFixture(t)
						}
						e.cell(t, r, f, a)
					})
				}
			})
		}
	})
}

func (r authzRow) what() string {
	if r.msg != "" || r.send != nil {
		return "(WebSocket " + r.msg + ")"
	}
	return "(" + r.method + " " + r.route + ")"
}

// wantEveryRouteInTable fails for a route srv registers without a row, and for a row
// whose route is not registered.
func wantEveryRouteInTable(t *testing.T, srv *testenv.Server) {
	t.Helper()
	rows := map[string]bool{}
	for _, r := range authzTable() {
		if r.route != "" {
			rows[r.method+" "+r.route] = true
		}
	}
	registered := map[string]bool{}
	for _, rt := range api.RoutesOf(srv.HTTP.Config.Handler) {
		k := rt.Method + " " + rt.Path
		registered[k] = true
		if !rows[k] {
			t.Errorf("route %s has no row in authzTable: add one saying what each actor gets", k)
		}
	}
	for k := range rows {
		if !registered[k] {
			t.Errorf("authzTable has a row for %s, which the server does not register", k)
		}
	}
}

// wantEveryMessageTypeInTable fails for a message type the hub handles (a case of the
// switch on the message's type in (*conn).handle) without a row.
func wantEveryMessageTypeInTable(t *testing.T) {
	t.Helper()
	rows := map[string]bool{}
	for _, r := range authzTable() {
		if r.msg != "" {
			rows[r.msg] = true
		}
	}
	handled := hubMessageTypes(t)
	for _, typ := range handled {
		if !rows[typ] {
			t.Errorf("the hub handles message type %q, which has no row in authzTable: add one saying what each actor gets", typ)
		}
	}
	for typ := range rows {
		if !slices.Contains(handled, typ) {
			t.Errorf("authzTable has a row for message type %q, which the hub does not handle", typ)
		}
	}
}

// hubMessageTypes reads the message types the hub handles from its source: the
// string cases of the switch on m.Type in (*conn).handle.
func hubMessageTypes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "hub", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var types []string
	found := false
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, isFunc := d.(*ast.FuncDecl)
			if !isFunc || fn.Name.Name != "handle" || fn.Recv == nil || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				sw, isSwitch := n.(*ast.SwitchStmt)
				if !isSwitch {
					return true
				}
				if sel, isSel := sw.Tag.(*ast.SelectorExpr); !isSel || sel.Sel.Name != "Type" {
					return true
				}
				found = true
				for _, s := range sw.Body.List {
					for _, e := range s.(*ast.CaseClause).List {
						lit, isLit := e.(*ast.BasicLit)
						if !isLit || lit.Kind != token.STRING {
							t.Errorf("%s: a message type case that is not a string literal: teach hubMessageTypes to read it", fset.Position(e.Pos()))
							continue
						}
						v, _ := strconv.Unquote(lit.Value)
						types = append(types, v)
					}
				}
				return false
			})
		}
	}
	if !found || len(types) == 0 {
		t.Fatal("found no switch on the message type in the hub's handle method: hubMessageTypes must follow where the hub dispatches messages")
	}
	return types
}

// authzEnv is one backend's server, with what every fixture shares: alice's first
// layout (her default, so that L is neither her default nor her last) and dave's
// layout M with a link.
type authzEnv struct {
	srv         *testenv.Server
	seq         atomic.Int64
	otherLink   string // its token
	otherLinkID string
	otherLayout string // M, the layout of otherLink
}

func newAuthzEnv(t *testing.T, backend string) *authzEnv {
	t.Helper()
	// Web files and dev tokens on: every route the server can register is.
	web := fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>t</title>")}, "app.js": {Data: []byte("export {}\n")}}
	srv := testenv.New(t, testenv.Options{Backend: backend, API: func(c *api.Config) { c.Web, c.DevTokens = web, true }})
	e := &authzEnv{srv: srv}
	e.must(t, "alice", "POST", "/api/dashboard/layouts", map[string]any{"name": "Home"}, http.StatusCreated, nil)
	var m dsync.Layout
	e.must(t, "dave", "POST", "/api/dashboard/layouts", map[string]any{"name": "M"}, http.StatusCreated, &m)
	var lk dsync.NewLink
	e.must(t, "dave", "POST", "/api/dashboard/layouts/"+m.ID+"/links", map[string]any{}, http.StatusCreated, &lk)
	e.otherLink, e.otherLinkID, e.otherLayout = lk.Token, lk.ID, m.ID
	// A link made by hand the way the expired one is, but live: it works, so the
	// expired one's refusal is its expiry's.
	live := e.insertLink(t, m.ID, time.Now().Add(time.Hour))
	if st, b := srv.RESTToken(t, live, "GET", "/api/dashboard/layouts/"+m.ID, nil); st != http.StatusOK {
		t.Fatalf("a hand-made live link: got %d %s, want 200", st, b)
	}
	return e
}

func (e *authzEnv) next() int64               { return e.seq.Add(1) }
func (e *authzEnv) name(prefix string) string { return fmt.Sprintf("%s-%d", prefix, e.next()) }

// settingOp is an op that changes L whatever it holds.
func (e *authzEnv) settingOp() map[string]any {
	return map[string]any{"op": "add", "path": "/settings/n", "value": e.next()}
}

// must sends a request as user and wants status, decoding the answer into out.
func (e *authzEnv) must(t *testing.T, user, method, path string, body any, status int, out any) {
	t.Helper()
	st, b := e.srv.REST(t, user, method, path, body)
	if st != status {
		t.Fatalf("%s %s as %s: got %d %s, want %d", method, path, user, st, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
}

// widgetOf creates a widget as the holder of token and returns its id.
func (e *authzEnv) widgetOf(t *testing.T, token string) string {
	t.Helper()
	st, b := e.srv.RESTToken(t, token, "POST", "/api/dashboard/widgets", authzStaticWidget)
	var w dsync.Widget
	if st != http.StatusCreated || json.Unmarshal(b, &w) != nil {
		t.Fatalf("create a widget: got %d %s, want 201", st, b)
	}
	return w.ID
}

// insertLink writes a viewer link of layout straight to the store, expiring at exp,
// and returns its token, made as the domain makes link tokens ("dsl_<layout>_<id>_<secret>",
// the store keeping the secret's SHA-256): the API would not make a link that is
// already expired.
func (e *authzEnv) insertLink(t *testing.T, layout string, exp time.Time) string {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	hash := sha256.Sum256(secret)
	id := uuid.NewString()
	lk := dsync.Link{ID: id, LayoutID: layout, Role: dsync.RoleViewer, Hash: hash[:],
		CreatedAt: dsync.NewTime(exp.Add(-time.Hour)), ExpiresAt: dsync.NewTime(exp)}
	ctx := context.Background()
	if err := e.srv.Store.InTx(ctx, func(tx dsync.Tx) error { return tx.CreateLink(ctx, lk) }); err != nil {
		t.Fatal(err)
	}
	return "dsl_" + layout + "_" + id + "_" + base64.RawURLEncoding.EncodeToString(secret)
}

// authzFixture is alice's layout L, shared with bob (editor) and carol (viewer), placing
// W (static) and P (push), besides her widget O placed on no layout; with a live
// link, a revoked one and an expired one.
type authzFixture struct {
	e             *authzEnv
	L, W, P, O    string
	link          string // the live link's id
	tokens        [authzColumns]string
	revokedLinkID string
}

func (e *authzEnv) newFixture(t *testing.T) *authzFixture {
	t.Helper()
	f := &authzFixture{e: e}
	var w dsync.Widget
	e.must(t, "alice", "POST", "/api/dashboard/widgets", authzStaticWidget, http.StatusCreated, &w)
	f.W = w.ID
	e.must(t, "alice", "POST", "/api/dashboard/widgets", map[string]any{"type": "stat", "source": map[string]any{"kind": "push"}}, http.StatusCreated, &w)
	f.P = w.ID
	e.must(t, "alice", "POST", "/api/dashboard/widgets", authzStaticWidget, http.StatusCreated, &w)
	f.O = w.ID
	var l dsync.Layout
	e.must(t, "alice", "POST", "/api/dashboard/layouts", map[string]any{"name": "L", "items": map[string]dsync.Item{
		f.W: {X: 0, Y: 0, W: 2, H: 2}, f.P: {X: 2, Y: 0, W: 2, H: 2}}}, http.StatusCreated, &l)
	f.L = l.ID
	e.must(t, "alice", "PUT", "/api/dashboard/layouts/"+f.L+"/access",
		map[string]any{"users": map[string]string{"bob": "editor", "carol": "viewer"}}, http.StatusOK, nil)
	var live, revoked dsync.NewLink
	e.must(t, "alice", "POST", "/api/dashboard/layouts/"+f.L+"/links", map[string]any{"role": "viewer"}, http.StatusCreated, &live)
	e.must(t, "alice", "POST", "/api/dashboard/layouts/"+f.L+"/links", nil, http.StatusCreated, &revoked)
	e.must(t, "alice", "DELETE", "/api/dashboard/layouts/"+f.L+"/links/"+revoked.ID, nil, http.StatusNoContent, nil)
	f.link, f.revokedLinkID = live.ID, revoked.ID
	f.tokens = [authzColumns]string{
		asOwner:       testenv.Token(t, authzUsers[asOwner]),
		asEditor:      testenv.Token(t, authzUsers[asEditor]),
		asViewer:      testenv.Token(t, authzUsers[asViewer]),
		asLink:        live.Token,
		asStranger:    testenv.Token(t, authzUsers[asStranger]),
		asOtherLink:   e.otherLink,
		asExpiredLink: e.insertLink(t, f.L, time.Now().Add(-time.Hour)),
		asRevokedLink: revoked.Token,
	}
	return f
}

func (f *authzFixture) expand(target string) string {
	return strings.NewReplacer("{L}", f.L, "{W}", f.W, "{P}", f.P, "{O}", f.O, "{link}", f.link).Replace(target)
}

// layout reads L as alice.
func (f *authzFixture) layout(t *testing.T) dsync.Layout {
	t.Helper()
	l, err := f.e.srv.Service.Layout(context.Background(), "alice", f.L)
	if err != nil {
		t.Fatalf("read L: %v", err)
	}
	return l
}

func (f *authzFixture) layoutVersion(t *testing.T) int64 { t.Helper(); return f.layout(t).Version }

func (f *authzFixture) layoutState(t *testing.T) string {
	t.Helper()
	return fmt.Sprint("version ", f.layoutVersion(t))
}

// widget reads one of alice's widgets.
func (f *authzFixture) widget(t *testing.T, id string) dsync.Widget {
	t.Helper()
	w, err := f.e.srv.Service.Widget(context.Background(), "alice", id)
	if err != nil {
		t.Fatalf("read widget %s: %v", id, err)
	}
	return w
}

// ownerEdit has alice change L, so that restoring version 1 changes it back.
func (f *authzFixture) ownerEdit(t *testing.T) {
	t.Helper()
	f.e.must(t, "alice", "PATCH", "/api/dashboard/layouts/"+f.L,
		map[string]any{"version": f.layoutVersion(t), "ops": []any{f.e.settingOp()}}, http.StatusOK, nil)
}

// pushData has alice push data to P, so that clearing it changes something.
func (f *authzFixture) pushData(t *testing.T) {
	t.Helper()
	f.e.must(t, "alice", "PUT", "/api/dashboard/widgets/"+f.P+"/data",
		map[string]any{"data": map[string]int64{"n": f.e.next()}}, http.StatusOK, nil)
}

// pushedData is P's cached data, as alice reads it.
func (f *authzFixture) pushedData(t *testing.T) string {
	t.Helper()
	var got struct {
		Data *struct {
			Data json.RawMessage `json:"data"`
		} `json:"data"`
	}
	f.e.must(t, "alice", "GET", "/api/dashboard/widgets/"+f.P, nil, http.StatusOK, &got)
	if got.Data == nil {
		return "no data"
	}
	return string(got.Data.Data)
}

// cell asks row r as actor a and checks the answer, and that the row's state changed
// exactly when the answer says the action was done.
func (e *authzEnv) cell(t *testing.T, r authzRow, f *authzFixture, a authzActor) {
	t.Helper()
	if r.prep != nil {
		r.prep(f, t)
	}
	var before string
	if r.state != nil {
		before = r.state(f, t)
	}
	var (
		got  authzOutcome
		body []byte
	)
	if r.overWebSocket() {
		got, body = e.dial(t, r, f, a)
	} else {
		got, body = e.rest(t, r, f, a)
	}
	want := r.want[a]
	if got != want {
		t.Errorf("got %v, want %v; answer: %.600s", got, want, body)
	}
	if r.state != nil {
		switch after := r.state(f, t); {
		case got.allowed() && after == before:
			t.Errorf("answered %v, yet nothing changed (%s)", got, before)
		case !got.allowed() && after != before:
			t.Errorf("answered %v, yet it changed: %s → %s", got, before, after)
		}
	}
	if r.check != nil && got == want && got.allowed() {
		r.check(f, t, a, body)
	}
}

func (e *authzEnv) rest(t *testing.T, r authzRow, f *authzFixture, a authzActor) (authzOutcome, []byte) {
	t.Helper()
	var body any
	if r.body != nil {
		body = r.body(f, t, a)
	}
	st, b := e.srv.RESTToken(t, f.tokens[a], r.method, f.expand(r.target), body)
	return restOutcome(st, b), b
}

// restOutcome reads an answer: its status, error code and, for a 207, its one entry.
func restOutcome(status int, b []byte) authzOutcome {
	o := authzOutcome{status: status}
	type entry struct {
		Status int `json:"status"`
		Error  *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	var body struct {
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
		Results json.RawMessage `json:"results"`
	}
	_ = json.Unmarshal(b, &body)
	if status >= 400 {
		o.code = "(none)"
		if body.Error != nil {
			o.code = body.Error.Code
		}
	}
	if status == http.StatusMultiStatus {
		var entries []entry
		var byID map[string]entry
		if json.Unmarshal(body.Results, &byID) == nil {
			for _, e := range byID {
				entries = append(entries, e)
			}
		} else {
			_ = json.Unmarshal(body.Results, &entries)
		}
		o.item = -1 // not one entry
		if len(entries) == 1 {
			o.item = entries[0].Status
			if entries[0].Error != nil {
				o.itemCode = entries[0].Error.Code
			}
		}
	}
	return o
}

// dial opens a WebSocket as actor a and sends the row's messages: the answer is the
// refused upgrade, the opened socket (no messages), or the last message's reply.
func (e *authzEnv) dial(t *testing.T, r authzRow, f *authzFixture, a authzActor) (authzOutcome, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := wsclient.Dial(ctx, e.srv.WSURL, wsclient.Options{Token: f.tokens[a]})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return restOutcome(resp.StatusCode, b), b
	}
	defer c.CloseNow()
	if r.send == nil {
		return authzOutcome{status: http.StatusSwitchingProtocols}, []byte(c.Hello.Raw)
	}
	var m wsclient.Msg
	for _, msg := range r.send(f, t, f.tokens[a]) {
		if m, err = c.Request(ctx, msg); err != nil {
			t.Fatalf("%v: %v", msg, err)
		}
	}
	o := authzOutcome{reply: m.Type}
	if m.Type == "error" {
		o.code = "(none)"
		if m.Error != nil {
			o.code = m.Error.Code
		}
	}
	return o, m.Raw
}

// authzUsers are the users of the user columns.
var authzUsers = map[authzActor]string{asOwner: "alice", asEditor: "bob", asViewer: "carol", asStranger: "eve"}

// authzRoles is the role each user column has on L.
var authzRoles = map[authzActor]string{asOwner: "owner", asEditor: "editor", asViewer: "viewer", asLink: "viewer"}

// checkSubscribedRole: `subscribed` for a layout carries the subscriber's role.
func (f *authzFixture) checkSubscribedRole(t *testing.T, a authzActor, body []byte) {
	t.Helper()
	var m struct {
		Role string `json:"role"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Role != authzRoles[a] {
		t.Errorf("subscribed with role %q, want %q: %s", m.Role, authzRoles[a], body)
	}
}

// checkSharedList: ?include=shared lists L for its owner and members, with their role.
func (f *authzFixture) checkSharedList(t *testing.T, a authzActor, body []byte) {
	t.Helper()
	var got struct {
		Layouts []dsync.LayoutSummary `json:"layouts"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got.Layouts, func(s dsync.LayoutSummary) bool { return s.ID == f.L })
	role := ""
	if i >= 0 {
		role = string(got.Layouts[i].Role)
	}
	if role != authzRoles[a] {
		t.Errorf("L listed with role %q, want %q (\"\": not listed)", role, authzRoles[a])
	}
}

// checkClone: the copy is the caller's; a member's places copies of alice's widgets.
func (f *authzFixture) checkClone(t *testing.T, a authzActor, body []byte) {
	t.Helper()
	var l dsync.Layout
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	_, hasW := l.Items[f.W]
	_, hasP := l.Items[f.P]
	if l.ID == f.L || len(l.Items) != len(f.layout(t).Items) || hasW != (a == asOwner) || hasP != (a == asOwner) {
		t.Errorf("clone by %s: got %s, want a new layout placing %s", a,
			body, map[bool]string{true: "W and P", false: "copies of W and P"}[a == asOwner])
	}
}

// checkCurrentIsL: the caller's dashboard now shows L with its widgets.
func (f *authzFixture) checkCurrentIsL(t *testing.T, a authzActor, _ []byte) {
	t.Helper()
	st, b := f.e.srv.RESTToken(t, f.tokens[a], "GET", "/api/dashboard", nil)
	var got struct {
		Layout  *dsync.Layout  `json:"layout"`
		Widgets []dsync.Widget `json:"widgets"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &got) != nil || got.Layout == nil || got.Layout.ID != f.L || len(got.Widgets) != len(f.layout(t).Items) {
		t.Errorf("GET /api/dashboard after making L current: got %d %.600s, want L with W and P", st, b)
	}
}

// checkAuthor: an edit is authored by whoever made it, an editor too.
func (f *authzFixture) checkAuthor(t *testing.T, a authzActor, _ []byte) {
	t.Helper()
	cs, _, err := f.e.srv.Service.History(context.Background(), "alice", f.L, 0, 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("history of L: %v %v", cs, err)
	}
	if cs[0].Author != authzUsers[a] {
		t.Errorf("the edit is authored by %q, want %q", cs[0].Author, authzUsers[a])
	}
}

// checkHelloUser: the hello names the user, or a link as "link:<id>" with the layout
// it may read (a user's hello names none).
func (f *authzFixture) checkHelloUser(t *testing.T, a authzActor, body []byte) {
	t.Helper()
	var m struct {
		User   string `json:"user"`
		Layout string `json:"layout"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	want := map[authzActor]string{asLink: dsync.LinkUserPrefix + f.link, asOtherLink: dsync.LinkUserPrefix + f.e.otherLinkID}[a]
	if want == "" {
		want = authzUsers[a]
	}
	if m.User != want {
		t.Errorf("hello as %q, want %q: %s", m.User, want, body)
	}
	if wantLayout := map[authzActor]string{asLink: f.L, asOtherLink: f.e.otherLayout}[a]; m.Layout != wantLayout {
		t.Errorf("hello names layout %q, want %q: %s", m.Layout, wantLayout, body)
	}
}
