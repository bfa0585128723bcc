package hub_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
)

// restAs makes a REST call as user and returns the status and the decoded JSON body
// (nil when there is none).
func restAs(t testing.TB, s *testenv.Server, user, method, path string, body any) (int, map[string]any) {
	t.Helper()
	status, b := s.REST(t, user, method, path, body)
	var out map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %s: %v", method, path, b, err)
		}
	}
	return status, out
}

// mustREST is restAs that fails unless the status is want.
func mustREST(t testing.TB, s *testenv.Server, user string, want int, method, path string, body any) map[string]any {
	t.Helper()
	status, out := restAs(t, s, user, method, path, body)
	if status != want {
		t.Fatalf("%s %s as %s: got %d %v, want %d", method, path, user, status, out, want)
	}
	return out
}

// summaryOf is the layout summary of SPEC §9 cut from a layout or summary object.
func summaryOf(l map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"id", "name", "isDefault", "version", "updatedAt"} {
		out[k] = l[k]
	}
	return out
}

// summaries lists user's layouts by id, as GET /api/dashboard/layouts has them.
func summaries(t testing.TB, s *testenv.Server, user string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, l := range mustREST(t, s, user, http.StatusOK, "GET", "/api/dashboard/layouts", nil)["layouts"].([]any) {
		m := l.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// userEvent is a `user` channel event: its name and its one payload.
type userEvent struct {
	name    string
	field   string // layout, widget or dashboard
	payload map[string]any
}

func (e userEvent) String() string { return fmt.Sprintf("%s %s %v", e.name, e.field, e.payload) }

// userEvents decodes the event messages among ms; each must be on `user` and carry
// exactly one payload, named for its kind.
func userEvents(t testing.TB, ms []wsclient.Msg) []userEvent {
	t.Helper()
	var out []userEvent
	for _, m := range ofType(ms, "event") {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(m.Raw, &raw); err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(maps.Keys(raw))
		var field string
		for _, k := range keys {
			if k != "type" && k != "channel" && k != "event" {
				if field != "" {
					t.Fatalf("event %s carries both %s and %s: %s", m.Event, field, k, m.Raw)
				}
				field = k
			}
		}
		if m.Channel != "user" || field == "" {
			t.Fatalf("event: got %s, want channel user and one payload", m.Raw)
		}
		var p map[string]any
		if err := json.Unmarshal(raw[field], &p); err != nil {
			t.Fatalf("event %s payload: %v in %s", m.Event, err, m.Raw)
		}
		out = append(out, userEvent{m.Event, field, p})
	}
	return out
}

// TestUserChannel_Events: a connection subscribed to `user` is told of the user's
// layouts created, renamed, made (or no longer) default and deleted, widgets created
// and deleted, and dashboard state changes, each with the payload of SPEC §9, as REST
// makes them; another user's connection on `user` hears none of it.
func TestUserChannel_Events(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := testenv.New(t, testenv.Options{Backend: backend})
		aliceBox, bobBox := newInbox(), newInbox()
		alice, bob := s.Dial(t, "alice", aliceBox.add), s.Dial(t, "bob", bobBox.add)
		for _, c := range []*wsclient.Client{alice, bob} {
			if r := req(t, c, map[string]any{"type": "subscribe", "channel": "user"}); r.Type != "subscribed" || r.Channel != "user" {
				t.Fatalf("subscribe user: got %s", r.Raw)
			}
		}

		// expect waits for the events one REST call caused and checks every event so
		// far: in order, each with its payload, and nothing else.
		var want []userEvent
		expect := func(evs ...userEvent) {
			t.Helper()
			want = append(want, evs...)
			ms := aliceBox.waitFor(t, evs[len(evs)-1].name, func(ms []wsclient.Msg) bool { return len(ofType(ms, "event")) >= len(want) })
			got := userEvents(t, ms)
			if len(got) != len(want) {
				t.Fatalf("got events %v, want %v", got, want)
			}
			for i := range got {
				if g, w := got[i], want[i]; g.name != w.name || g.field != w.field || !reflect.DeepEqual(g.payload, w.payload) {
					t.Fatalf("event #%d: got %v, want %v", i, g, w)
				}
			}
		}
		ev := func(name, field string, payload map[string]any) userEvent {
			if field == "layout" {
				payload = summaryOf(payload) // exactly the summary's fields, no more
			}
			return userEvent{name, field, payload}
		}

		w := mustREST(t, s, "alice", http.StatusCreated, "POST", "/api/dashboard/widgets",
			map[string]any{"type": "stat", "title": "CPU", "source": map[string]any{"kind": "push"}})
		expect(ev("widget.created", "widget", w))
		wid := w["id"].(string)

		first := mustREST(t, s, "alice", http.StatusCreated, "POST", "/api/dashboard/layouts",
			map[string]any{"name": "First", "items": map[string]any{wid: map[string]any{"x": 0, "y": 0, "w": 6, "h": 4}}})
		expect(ev("layout.created", "layout", summaryOf(first)))
		second := mustREST(t, s, "alice", http.StatusCreated, "POST", "/api/dashboard/layouts", map[string]any{"name": "Second"})
		expect(ev("layout.created", "layout", summaryOf(second)))
		l1, l2 := first["id"].(string), second["id"].(string)
		if first["isDefault"] != true || second["isDefault"] != false {
			t.Fatalf("isDefault: first %v, second %v; want the first layout to be the default", first["isDefault"], second["isDefault"])
		}

		// Renamed by a PATCH of /name.
		renamed := mustREST(t, s, "alice", http.StatusOK, "PATCH", "/api/dashboard/layouts/"+l1,
			map[string]any{"version": 1, "ops": []any{op("replace", "/name", "Renamed")}})
		if renamed["name"] != "Renamed" || renamed["version"] != 2.0 {
			t.Fatalf("rename: got %v", renamed)
		}
		expect(ev("layout.updated", "layout", summaryOf(renamed)))

		// The default changes: the old default and the new one each get an event.
		mustREST(t, s, "alice", http.StatusOK, "POST", "/api/dashboard/layouts/"+l2+"/default", nil)
		now := summaries(t, s, "alice")
		if now[l1]["isDefault"] != false || now[l2]["isDefault"] != true {
			t.Fatalf("after set default: got %v", now)
		}
		expect(ev("layout.updated", "layout", now[l1]), ev("layout.updated", "layout", now[l2]))

		d := mustREST(t, s, "alice", http.StatusOK, "PUT", "/api/dashboard",
			map[string]any{"preferences": map[string]any{"theme": "dark"}, "currentLayoutId": l2})
		expect(ev("dashboard.updated", "dashboard", d))

		gone := now[l1]
		mustREST(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/layouts/"+l1, nil)
		expect(ev("layout.deleted", "layout", gone))

		mustREST(t, s, "alice", http.StatusNoContent, "DELETE", "/api/dashboard/widgets/"+wid+"?remove=true", nil)
		expect(ev("widget.deleted", "widget", w))

		// Bob's socket heard none of it: his own event is the first he gets. Its
		// message was queued after anything of alice's could have been.
		bw := mustREST(t, s, "bob", http.StatusCreated, "POST", "/api/dashboard/widgets",
			map[string]any{"type": "text", "title": "Bob's", "source": map[string]any{"kind": "push"}})
		bobBox.waitFor(t, "bob's own event", func(ms []wsclient.Msg) bool { return len(ofType(ms, "event")) > 0 })
		if got := userEvents(t, bobBox.all()); len(got) != 1 || got[0].name != "widget.created" || got[0].payload["id"] != bw["id"] {
			t.Fatalf("bob's socket: got events %v, want only his own widget.created", got)
		}
		// And alice's heard nothing of bob's, up to an event of her own after it.
		d = mustREST(t, s, "alice", http.StatusOK, "PUT", "/api/dashboard", map[string]any{"preferences": map[string]any{"theme": "light"}})
		expect(ev("dashboard.updated", "dashboard", d))
	})
}
