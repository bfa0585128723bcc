package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	dsync "github.com/dashsync/dashsync/sync"
)

var layoutCases = []testCase{
	{"Layout_CreateAnswers201AndTheFirstIsDefault", testLayoutCreate},
	{"Layout_CreateFromTemplateMakesItsWidgets", testLayoutCreateFromTemplate},
	{"Layout_CreateRefusesBadInput", testLayoutCreateBadInput},
	{"Layout_ListIsWrappedSummaries", testLayoutList},
	{"Layout_AnotherUsersLayoutIsNotFound", testLayoutOtherUser},
	{"Layout_GetChangePutRoundTrips", testLayoutPutRoundTrip},
	{"Layout_PutsOfDifferentFieldsBothCommit", testLayoutPutDifferentFields},
	{"Layout_PutsOfTheSameFieldConflict", testLayoutPutSameField},
	{"Layout_PutWithForceOverwrites", testLayoutPutForce},
	{"Layout_PutThatChangesNothingCommitsNothing", testLayoutPutNoop},
	{"Layout_PatchesOfDifferentFieldsBothCommit", testLayoutPatchDifferentFields},
	{"Layout_PatchesOfTheSameFieldConflict", testLayoutPatchSameField},
	{"Layout_ConcurrentPatchesOfDifferentItemsBothCommit", testLayoutConcurrentPatches},
	{"Layout_PatchWithAResentEditIDIsAppliedOnce", testLayoutPatchEditID},
	{"Layout_BadInputGetsItsCodeAndChangesNothing", testLayoutBadInput},
	{"Layout_BulkPutPartialSuccessIs207", testLayoutBulk},
	{"Layout_BulkPutAllCommittedIs200", testLayoutBulkAllOK},
	{"Layout_DeleteLastIs409Conflict", testLayoutDeleteLast},
	{"Layout_DeleteDefaultMovesDefaultToMostRecentlyUpdated", testLayoutDeleteDefault},
	{"Layout_SetDefault", testLayoutSetDefault},
	{"Layout_CloneAnswers201", testLayoutClone},
	{"Layout_HistoryPages", testLayoutHistory},
	{"Layout_HistoryLimitIsClampedTo100", testLayoutHistoryClamp},
	{"Layout_RestoreCommitsAnOldVersion", testLayoutRestore},
	{"Layout_TemplatesAreListed", testTemplates},
}

func testLayoutCreate(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "static")
	first := c.createLayout(t, "First", w.ID)
	if first.Version != 1 || !first.IsDefault || first.Name != "First" || first.Columns != 12 || first.ID == "" {
		t.Errorf("got %+v, want version 1, default, name First, 12 columns, an id", first)
	}
	if _, err := time.Parse(time.RFC3339, first.CreatedAt); err != nil || !strings.HasSuffix(first.CreatedAt, "Z") {
		t.Errorf("got createdAt %q, want RFC 3339 UTC", first.CreatedAt)
	}
	if first.Rebased != nil {
		t.Errorf("a create answers the bare layout, got rebased %v", *first.Rebased)
	}
	if it := first.Items[w.ID]; it != (dsync.Item{X: 0, Y: 0, W: 2, H: 2}) {
		t.Errorf("got item %+v", it)
	}
	second := c.createLayout(t, "Second")
	if second.IsDefault {
		t.Errorf("second layout is the default")
	}
	// Columns default to 12; settings are kept.
	var l layout
	c.do(t, "POST", "/api/dashboard/layouts", `{"name":"S","settings":{"theme":"dark"}}`).want(t, http.StatusCreated, &l)
	if l.Columns != 12 || l.Settings["theme"] != "dark" {
		t.Errorf("got columns %d settings %v", l.Columns, l.Settings)
	}
	// Read-only fields of a GET may come along and are ignored.
	body := `{"id":"mine","isDefault":true,"version":9,"createdAt":"x","updatedAt":null,"rebased":true,"name":"Copy","columns":6,"items":{}}`
	c.do(t, "POST", "/api/dashboard/layouts", body).want(t, http.StatusCreated, &l)
	if l.ID == "mine" || l.IsDefault || l.Version != 1 || l.Columns != 6 {
		t.Errorf("read-only fields were not ignored: %+v", l)
	}
}

func testLayoutCreateFromTemplate(t *testing.T, h *harness) {
	c := h.newUser(t)
	var l layout
	c.do(t, "POST", "/api/dashboard/layouts", `{"template":"ops-overview"}`).want(t, http.StatusCreated, &l)
	if l.Name != "Ops overview" || len(l.Items) != 5 || !l.IsDefault {
		t.Fatalf("got %+v, want the ops-overview template with 5 items", l)
	}
	var ws struct{ Widgets []widget }
	c.do(t, "GET", "/api/dashboard/widgets", nil).want(t, http.StatusOK, &ws)
	if len(ws.Widgets) != 5 {
		t.Fatalf("got %d widgets, want 5", len(ws.Widgets))
	}
	for _, w := range ws.Widgets {
		if _, ok := l.Items[w.ID]; !ok {
			t.Errorf("widget %s is not on the layout", w.ID)
		}
	}
}

func testLayoutCreateBadInput(t *testing.T, h *harness) {
	c := h.newUser(t)
	cases := []badCreate{
		{"no name", `{"columns":12}`, 400, "validation_failed", "name"},
		{"empty name", `{"name":""}`, 400, "validation_failed", "name"},
		{"name too long", `{"name":"` + strings.Repeat("n", 101) + `"}`, 400, "validation_failed", "name"},
		{"columns 0", `{"name":"a","columns":0}`, 400, "validation_failed", "columns"},
		{"columns 49", `{"name":"a","columns":49}`, 400, "validation_failed", "columns"},
		{"unknown template", `{"template":"nope"}`, 400, "validation_failed", "template"},
		{"template with a name", `{"template":"starter","name":"x"}`, 400, "validation_failed", "template"},
		{"unknown widget", `{"name":"a","items":{"nope":{"x":0,"y":0,"w":1,"h":1}}}`, 400, "validation_failed", "items.nope"},
		{"unknown field", `{"name":"a","colour":"red"}`, 400, "bad_request", ""},
		{"not JSON", `{"name":`, 400, "bad_request", ""},
		{"array", `[]`, 400, "bad_request", ""},
		{"empty", ``, 400, "bad_request", ""},
		{"settings over 16 KiB", `{"name":"a","settings":{"k":"` + strings.Repeat("s", 17<<10) + `"}}`, 413, "too_large", "settings"},
	}
	wantCreatesRefused[layout](t, c, "/api/dashboard/layouts", cases)
}

func testLayoutList(t *testing.T, h *harness) {
	c := h.newUser(t)
	var empty map[string][]map[string]any
	c.do(t, "GET", "/api/dashboard/layouts", nil).want(t, http.StatusOK, &empty)
	if l, ok := empty["layouts"]; !ok || len(l) != 0 {
		t.Fatalf(`got %v, want {"layouts":[]}`, empty)
	}
	a := c.createLayout(t, "A")
	b := c.createLayout(t, "B")
	var got map[string][]map[string]any
	c.do(t, "GET", "/api/dashboard/layouts", nil).want(t, http.StatusOK, &got)
	ls := got["layouts"]
	if len(ls) != 2 {
		t.Fatalf("got %d layouts, want 2", len(ls))
	}
	ids := []string{ls[0]["id"].(string), ls[1]["id"].(string)}
	slices.Sort(ids)
	want := []string{a.ID, b.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("got ids %v, want %v", ids, want)
	}
	for _, l := range ls {
		keys := make([]string, 0, len(l))
		for k := range l {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"id", "isDefault", "name", "updatedAt", "version"}) {
			t.Errorf("got summary keys %v, want id, name, isDefault, version, updatedAt", keys)
		}
	}
}

func testLayoutOtherUser(t *testing.T, h *harness) {
	alice, bob := h.newUser(t), h.newUser(t)
	l := alice.createLayout(t, "Alice's")
	alice.createLayout(t, "Alice's other")
	paths := []string{"/api/dashboard/layouts/" + l.ID, "/api/dashboard/layouts/" + l.ID + "/versions"}
	before := alice.snapshot(t, paths...)
	cases := []struct{ method, path, body string }{
		{"GET", "/api/dashboard/layouts/" + l.ID, ""},
		{"PUT", "/api/dashboard/layouts/" + l.ID, `{"name":"mine","version":1}`},
		{"PATCH", "/api/dashboard/layouts/" + l.ID, `{"version":1,"ops":[{"op":"replace","path":"/name","value":"mine"}]}`},
		{"DELETE", "/api/dashboard/layouts/" + l.ID, ""},
		{"POST", "/api/dashboard/layouts/" + l.ID, ""},
		{"POST", "/api/dashboard/layouts/" + l.ID + "/default", ""},
		{"GET", "/api/dashboard/layouts/" + l.ID + "/versions", ""},
		{"POST", "/api/dashboard/layouts/" + l.ID + "/versions/1/restore", ""},
	}
	for _, tc := range cases {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		bob.do(t, tc.method, tc.path, body).wantError(t, http.StatusNotFound, "not_found")
	}
	alice.wantUnchanged(t, before, paths...)
	alice.do(t, "GET", "/api/dashboard/layouts/no-such-id", nil).wantError(t, http.StatusNotFound, "not_found")
}

func testLayoutPutRoundTrip(t *testing.T, h *harness) {
	c := h.newUser(t)
	w1, w2 := c.createWidget(t, "static"), c.createWidget(t, "push")
	l := c.createLayout(t, "Round trip", w1.ID)
	// GET → change → PUT, sending back everything the GET gave.
	r := c.do(t, "GET", "/api/dashboard/layouts/"+l.ID, nil)
	body := strings.Replace(string(r.body), `"name":"Round trip"`, `"name":"Renamed"`, 1)
	body = strings.Replace(body, `"items":{`, fmt.Sprintf(`"items":{"%s":{"x":4,"y":0,"w":4,"h":3},`, w2.ID), 1)
	var got layout
	c.do(t, "PUT", "/api/dashboard/layouts/"+l.ID, body).want(t, http.StatusOK, &got)
	if got.Name != "Renamed" || got.Version != 2 || len(got.Items) != 2 || got.Rebased == nil || *got.Rebased {
		t.Fatalf("got %+v, want Renamed at version 2 with 2 items, rebased false", got)
	}
	if got.CreatedAt != l.CreatedAt || got.ID != l.ID || !got.IsDefault {
		t.Errorf("read-only fields changed: %+v", got)
	}
	// Absent fields keep their value; an empty items object clears the items.
	var cleared layout
	c.do(t, "PUT", "/api/dashboard/layouts/"+l.ID, `{"version":2,"items":{}}`).want(t, http.StatusOK, &cleared)
	if cleared.Name != "Renamed" || len(cleared.Items) != 0 || cleared.Version != 3 {
		t.Errorf("got %+v, want Renamed with no items at version 3", cleared)
	}
}

// twoPuts sends two PUTs based on the same version, one after the other.
func twoPuts(t *testing.T, c *client, id string, base int64, a, b string) (*resp, *resp) {
	t.Helper()
	put := func(fields string) *resp {
		return c.do(t, "PUT", "/api/dashboard/layouts/"+id, fmt.Sprintf(`{"version":%d,%s}`, base, fields))
	}
	return put(a), put(b)
}

func testLayoutPutDifferentFields(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "static")
	l := c.createLayout(t, "L", w.ID)
	item := func(x, width int) string {
		return fmt.Sprintf(`"items":{"%s":{"x":%d,"y":0,"w":%d,"h":2}}`, w.ID, x, width)
	}
	r1, r2 := twoPuts(t, c, l.ID, 1, item(3, 2), item(0, 5))
	var a, b layout
	r1.want(t, http.StatusOK, &a)
	r2.want(t, http.StatusOK, &b)
	if *a.Rebased || !*b.Rebased || b.Version != 3 {
		t.Fatalf("got rebased %v then %v, version %d; want false then true, version 3", *a.Rebased, *b.Rebased, b.Version)
	}
	if got := c.getLayout(t, l.ID).Items[w.ID]; got != (dsync.Item{X: 3, Y: 0, W: 5, H: 2}) {
		t.Errorf("got item %+v, want both edits (x 3, w 5)", got)
	}
}

func testLayoutPutSameField(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "L")
	r1, r2 := twoPuts(t, c, l.ID, 1, `"name":"First"`, `"name":"Second"`)
	r1.want(t, http.StatusOK, nil)
	e := r2.wantError(t, http.StatusConflict, "version_conflict")
	var cur layout
	if err := json.Unmarshal(e.Current, &cur); err != nil || cur.Name != "First" || cur.Version != 2 {
		t.Errorf("got current %s, want the layout named First at version 2", e.Current)
	}
	if len(e.Conflicts) != 1 || e.Conflicts[0].Path != "/name" || e.Conflicts[0].Version != 2 || e.Conflicts[0].Reason != "overlap" {
		t.Errorf("got conflicts %+v, want one overlap on /name at version 2", e.Conflicts)
	}
	if got := c.getLayout(t, l.ID); got.Name != "First" || got.Version != 2 {
		t.Errorf("a conflict changed the layout: %+v", got)
	}
}

func testLayoutPutForce(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "L")
	c.do(t, "PUT", "/api/dashboard/layouts/"+l.ID, `{"version":1,"name":"First"}`).want(t, http.StatusOK, nil)
	var got layout
	c.do(t, "PUT", "/api/dashboard/layouts/"+l.ID, `{"version":1,"name":"Forced","force":true}`).want(t, http.StatusOK, &got)
	if got.Name != "Forced" || got.Version != 3 {
		t.Errorf("got %+v, want Forced at version 3", got)
	}
}

func testLayoutPutNoop(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "L")
	var got layout
	c.do(t, "PUT", "/api/dashboard/layouts/"+l.ID, `{"version":1,"name":"L"}`).want(t, http.StatusOK, &got)
	if got.Version != 1 {
		t.Errorf("a PUT that changes nothing committed version %d", got.Version)
	}
}

func patchBody(base int64, ops string) string {
	return fmt.Sprintf(`{"version":%d,"ops":[%s]}`, base, ops)
}

func testLayoutPatchDifferentFields(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "static")
	l := c.createLayout(t, "L", w.ID)
	p := "/api/dashboard/layouts/" + l.ID
	var a, b layout
	c.do(t, "PATCH", p, patchBody(1, fmt.Sprintf(`{"op":"replace","path":"/items/%s/x","value":4}`, w.ID))).want(t, http.StatusOK, &a)
	c.do(t, "PATCH", p, patchBody(1, fmt.Sprintf(`{"op":"replace","path":"/items/%s/y","value":7}`, w.ID))).want(t, http.StatusOK, &b)
	if *a.Rebased || !*b.Rebased || b.Version != 3 || b.Items[w.ID] != (dsync.Item{X: 4, Y: 7, W: 2, H: 2}) {
		t.Errorf("got %+v then %+v, want both committed, the second rebased", a, b)
	}
}

func testLayoutPatchSameField(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "static")
	l := c.createLayout(t, "L", w.ID)
	p := "/api/dashboard/layouts/" + l.ID
	c.do(t, "PATCH", p, patchBody(1, fmt.Sprintf(`{"op":"replace","path":"/items/%s/x","value":4}`, w.ID))).want(t, http.StatusOK, nil)
	before := c.snapshot(t, p)
	// /items/<id> overlaps /items/<id>/x.
	e := c.do(t, "PATCH", p, patchBody(1, fmt.Sprintf(`{"op":"remove","path":"/items/%s"}`, w.ID))).
		wantError(t, http.StatusConflict, "version_conflict")
	if len(e.Conflicts) != 1 || e.Conflicts[0].Op != 0 || e.Conflicts[0].Version != 2 {
		t.Errorf("got conflicts %+v, want op 0 against version 2", e.Conflicts)
	}
	if len(e.Current) == 0 {
		t.Errorf("a conflict without current: %s", e.Current)
	}
	c.wantUnchanged(t, before, p)
}

func testLayoutConcurrentPatches(t *testing.T, h *harness) {
	c := h.newUser(t)
	const n = 4
	ws := make([]string, n)
	for i := range ws {
		ws[i] = c.createWidget(t, "static").ID
	}
	l := c.createLayout(t, "L", ws...)
	p := "/api/dashboard/layouts/" + l.ID
	var wg sync.WaitGroup
	results := make([]*resp, n)
	for i, id := range ws {
		wg.Go(func() {
			results[i] = c.do(t, "PATCH", p, patchBody(1, fmt.Sprintf(`{"op":"replace","path":"/items/%s/h","value":%d}`, id, 3+i)))
		})
	}
	wg.Wait()
	rebased := 0
	for _, r := range results {
		var got layout
		r.want(t, http.StatusOK, &got)
		if *got.Rebased {
			rebased++
		}
	}
	if rebased != n-1 {
		t.Errorf("got %d rebased edits, want %d", rebased, n-1)
	}
	got := c.getLayout(t, l.ID)
	if got.Version != 1+n {
		t.Errorf("got version %d, want %d", got.Version, 1+n)
	}
	for i, id := range ws {
		if got.Items[id].H != 3+i {
			t.Errorf("item %d: got h %d, want %d", i, got.Items[id].H, 3+i)
		}
	}
}

func testLayoutPatchEditID(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "L")
	p := "/api/dashboard/layouts/" + l.ID
	body := fmt.Sprintf(`{"version":1,"editId":"%s","ops":[{"op":"add","path":"/settings/n","value":1}]}`, uuid.NewString())
	var a, b layout
	c.do(t, "PATCH", p, body).want(t, http.StatusOK, &a)
	c.do(t, "PATCH", p, body).want(t, http.StatusOK, &b)
	if a.Version != 2 || b.Version != 2 || c.getLayout(t, l.ID).Version != 2 {
		t.Errorf("got versions %d and %d, want the resent edit acknowledged as 2 once", a.Version, b.Version)
	}
}

func testLayoutBadInput(t *testing.T, h *harness) {
	c, other := h.newUser(t), h.newUser(t)
	w := c.createWidget(t, "static")
	l := c.createLayout(t, "Bounds", w.ID)
	p := "/api/dashboard/layouts/" + l.ID
	paths := []string{p, p + "/versions", "/api/dashboard/layouts"}
	expired := h.token(t, c.user, -time.Minute)
	forged := (&harness{secret: []byte("not the server's secret, but long")}).token(t, c.user, time.Hour)
	item := func(fields string) string {
		return fmt.Sprintf(`{"version":1,"items":{"%s":{%s}}}`, w.ID, fields)
	}
	huge := `{"version":1,"name":"` + strings.Repeat("x", 1<<20) + `"}`
	cases := []struct {
		name, method, path, body string
		token                    string // "" is c's
		status                   int
		code                     string
		field, message           string
	}{
		{"malformed JSON", "PUT", p, `{"version":1,"name":`, "", 400, "bad_request", "", ""},
		{"not JSON at all", "PUT", p, `version=1`, "", 400, "bad_request", "", ""},
		{"trailing data", "PUT", p, `{"version":1}{"version":1}`, "", 400, "bad_request", "", ""},
		{"empty body", "PUT", p, ``, "", 400, "bad_request", "", ""},
		{"unknown field", "PUT", p, `{"version":1,"nmae":"x"}`, "", 400, "bad_request", "", `unknown field "nmae"`},
		{"unknown item field", "PUT", p, item(`"x":0,"y":0,"w":1,"h":1,"z":1`), "", 400, "bad_request", "", ""},
		{"name of the wrong type", "PUT", p, `{"version":1,"name":5}`, "", 400, "validation_failed", "name", "name must be a string"},
		{"version of the wrong type", "PUT", p, `{"version":"1","name":"x"}`, "", 400, "validation_failed", "version", ""},
		{"item coordinate of the wrong type", "PUT", p, item(`"x":"0","y":0,"w":1,"h":1`), "", 400, "validation_failed", "items." + w.ID + ".x", ""},
		{"items of the wrong type", "PUT", p, `{"version":1,"items":[]}`, "", 400, "validation_failed", "items", ""},
		{"item out of bounds", "PUT", p, item(`"x":0,"y":0,"w":13,"h":1`), "", 400, "validation_failed", "items." + w.ID + ".w", "items." + w.ID + ".w must be at most 12"},
		{"item beyond the right edge", "PUT", p, item(`"x":10,"y":0,"w":4,"h":1`), "", 400, "validation_failed", "items." + w.ID + ".w", "must be at most 2"},
		{"item negative x", "PUT", p, item(`"x":-1,"y":0,"w":1,"h":1`), "", 400, "validation_failed", "items." + w.ID + ".x", "must be at least 0"},
		{"item too tall", "PUT", p, item(`"x":0,"y":0,"w":1,"h":101`), "", 400, "validation_failed", "items." + w.ID + ".h", "must be at most 100"},
		{"item missing h", "PUT", p, item(`"x":0,"y":0,"w":1`), "", 400, "validation_failed", "items." + w.ID + ".h", "is required"},
		{"item of a widget that does not exist", "PUT", p, `{"version":1,"items":{"ghost":{"x":0,"y":0,"w":1,"h":1}}}`, "", 400, "validation_failed", "items.ghost", ""},
		{"columns too narrow for the items", "PUT", p, `{"version":1,"columns":1}`, "", 400, "validation_failed", "items." + w.ID + ".w", "must be at most 1"},
		{"missing version", "PUT", p, `{"name":"x"}`, "", 400, "validation_failed", "version", "version is required"},
		{"version 0", "PUT", p, `{"name":"x","version":0}`, "", 400, "validation_failed", "version", ""},
		{"version ahead", "PUT", p, `{"name":"x","version":7}`, "", 400, "validation_failed", "version", ""},
		{"editId not a UUID", "PUT", p, `{"name":"x","version":1,"editId":"e1"}`, "", 400, "validation_failed", "editId", ""},
		{"body over 1 MiB", "PUT", p, huge, "", 413, "too_large", "", ""},
		{"another user's layout", "PUT", p, `{"version":1,"name":"x"}`, other.token, 404, "not_found", "", ""},
		{"expired token", "PUT", p, `{"version":1,"name":"x"}`, expired, 401, "unauthorized", "", ""},
		{"wrongly signed token", "PUT", p, `{"version":1,"name":"x"}`, forged, 401, "unauthorized", "", ""},
		{"patch missing version", "PATCH", p, `{"ops":[{"op":"replace","path":"/name","value":"x"}]}`, "", 400, "validation_failed", "version", ""},
		{"patch missing ops", "PATCH", p, `{"version":1}`, "", 400, "validation_failed", "ops", ""},
		{"patch unknown op", "PATCH", p, patchBody(1, `{"op":"move","path":"/name","value":"x"}`), "", 400, "validation_failed", "ops[0].op", ""},
		{"patch path outside §3", "PATCH", p, patchBody(1, `{"op":"replace","path":"/version","value":9}`), "", 400, "validation_failed", "ops[0]", ""},
		{"patch isDefault", "PATCH", p, patchBody(1, `{"op":"replace","path":"/isDefault","value":false}`), "", 400, "validation_failed", "ops[0]", ""},
		{"patch replace of a missing key", "PATCH", p, patchBody(1, `{"op":"replace","path":"/settings/nope","value":1}`), "", 400, "validation_failed", "ops[0]", ""},
		{"patch out of bounds", "PATCH", p, patchBody(1, fmt.Sprintf(`{"op":"replace","path":"/items/%s/w","value":50}`, w.ID)), "", 400, "validation_failed", "items." + w.ID + ".w", ""},
		{"patch value of the wrong type", "PATCH", p, patchBody(1, `{"op":"replace","path":"/columns","value":"12"}`), "", 400, "validation_failed", "ops[0]", ""},
		{"patch ops of the wrong type", "PATCH", p, `{"version":1,"ops":{}}`, "", 400, "validation_failed", "ops", ""},
		{"patch unknown field", "PATCH", p, `{"version":1,"ops":[],"base":1}`, "", 400, "bad_request", "", ""},
		{"bulk entry missing version", "PUT", "/api/dashboard/layouts", fmt.Sprintf(`{"layouts":[{"id":"%s","name":"x"}]}`, l.ID), "", 400, "validation_failed", "layouts[0].version", "layouts[0].version is required"},
		{"bulk entry missing id", "PUT", "/api/dashboard/layouts", `{"layouts":[{"version":1,"name":"x"}]}`, "", 400, "validation_failed", "layouts[0].id", ""},
		{"bulk entry out of bounds", "PUT", "/api/dashboard/layouts", fmt.Sprintf(`{"layouts":[{"id":"%s","version":1,"columns":0}]}`, l.ID), "", 400, "validation_failed", "layouts[0].columns", ""},
		{"bulk entry of the wrong type", "PUT", "/api/dashboard/layouts", fmt.Sprintf(`{"layouts":[{"id":"%s","version":1},{"id":"%s","version":true}]}`, l.ID, l.ID), "", 400, "validation_failed", "layouts[1].version", ""},
		{"bulk empty", "PUT", "/api/dashboard/layouts", `{"layouts":[]}`, "", 400, "validation_failed", "layouts", ""},
		{"history limit 0", "GET", p + "/versions?limit=0", "", "", 400, "validation_failed", "limit", ""},
		{"history before not a number", "GET", p + "/versions?before=x", "", "", 400, "validation_failed", "before", ""},
		{"restore version not a number", "POST", p + "/versions/x/restore", "", "", 400, "validation_failed", "v", ""},
		{"restore version that does not exist", "POST", p + "/versions/9/restore", "", "", 404, "not_found", "", ""},
		{"restore with a body", "POST", p + "/versions/1/restore", `{"version":1}`, "", 400, "bad_request", "", ""},
		{"clone with an empty name", "POST", p, `{"name":""}`, "", 400, "validation_failed", "name", ""},
		{"clone with an unknown field", "POST", p, `{"title":"x"}`, "", 400, "bad_request", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.snapshot(t, paths...)
			tok := c.token
			if tc.token != "" {
				tok = tc.token
			}
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := h.do(t, tc.method, tc.path, body, map[string]string{"Authorization": "Bearer " + tok})
			e := r.wantError(t, tc.status, tc.code)
			if tc.field != "" {
				e.wantDetail(t, tc.field, "")
			}
			if tc.message != "" && !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("got message %q, want it to contain %q", e.Error.Message, tc.message)
			}
			c.wantUnchanged(t, before, paths...)
		})
	}
}

func testLayoutBulk(t *testing.T, h *harness) {
	c := h.newUser(t)
	a, b := c.createLayout(t, "A"), c.createLayout(t, "B")
	c.do(t, "PUT", "/api/dashboard/layouts/"+b.ID, `{"version":1,"name":"B2"}`).want(t, http.StatusOK, nil)
	other := h.newUser(t).createLayout(t, "Other")
	body := fmt.Sprintf(`{"layouts":[
		{"id":"%s","version":1,"name":"A2"},
		{"id":"%s","version":1,"name":"B3"},
		{"id":"%s","version":1,"name":"Mine"}]}`, a.ID, b.ID, other.ID)
	var got struct {
		Results []struct {
			ID     string  `json:"id"`
			Status int     `json:"status"`
			Layout *layout `json:"layout"`
			Error  *struct {
				Code string `json:"code"`
			} `json:"error"`
			Current   *layout          `json:"current"`
			Conflicts []dsync.Conflict `json:"conflicts"`
		} `json:"results"`
	}
	c.do(t, "PUT", "/api/dashboard/layouts", body).want(t, http.StatusMultiStatus, &got)
	if len(got.Results) != 3 {
		t.Fatalf("got %d results, want 3", len(got.Results))
	}
	r0, r1, r2 := got.Results[0], got.Results[1], got.Results[2]
	if r0.ID != a.ID || r0.Status != 200 || r0.Layout == nil || r0.Layout.Name != "A2" || r0.Layout.Rebased == nil {
		t.Errorf("entry 0: got %+v, want 200 with the layout named A2", r0)
	}
	if r1.ID != b.ID || r1.Status != 409 || r1.Error == nil || r1.Error.Code != "version_conflict" ||
		r1.Current == nil || r1.Current.Name != "B2" || len(r1.Conflicts) != 1 {
		t.Errorf("entry 1: got %+v, want 409 version_conflict with current B2 and a conflict", r1)
	}
	if r2.ID != other.ID || r2.Status != 404 || r2.Error == nil || r2.Error.Code != "not_found" || r2.Layout != nil {
		t.Errorf("entry 2: got %+v, want 404 not_found", r2)
	}
	if c.getLayout(t, b.ID).Name != "B2" {
		t.Errorf("the conflicting entry was applied")
	}
}

func testLayoutBulkAllOK(t *testing.T, h *harness) {
	c := h.newUser(t)
	a, b := c.createLayout(t, "A"), c.createLayout(t, "B")
	body := fmt.Sprintf(`{"layouts":[{"id":"%s","version":1,"name":"A2"},{"id":"%s","version":1,"columns":24}]}`, a.ID, b.ID)
	var got struct {
		Results []struct {
			Status int    `json:"status"`
			Layout layout `json:"layout"`
		} `json:"results"`
	}
	c.do(t, "PUT", "/api/dashboard/layouts", body).want(t, http.StatusOK, &got)
	if len(got.Results) != 2 || got.Results[0].Layout.Name != "A2" || got.Results[1].Layout.Columns != 24 {
		t.Errorf("got %+v", got)
	}
}

func testLayoutDeleteLast(t *testing.T, h *harness) {
	c := h.newUser(t)
	a, b := c.createLayout(t, "A"), c.createLayout(t, "B")
	c.do(t, "DELETE", "/api/dashboard/layouts/"+b.ID, nil).want(t, http.StatusNoContent, nil)
	c.do(t, "GET", "/api/dashboard/layouts/"+b.ID, nil).wantError(t, http.StatusNotFound, "not_found")
	before := c.snapshot(t, "/api/dashboard/layouts")
	c.do(t, "DELETE", "/api/dashboard/layouts/"+a.ID, nil).wantError(t, http.StatusConflict, "conflict")
	c.wantUnchanged(t, before, "/api/dashboard/layouts")
	c.do(t, "DELETE", "/api/dashboard/layouts/"+b.ID, nil).wantError(t, http.StatusNotFound, "not_found")
}

func testLayoutDeleteDefault(t *testing.T, h *harness) {
	c := h.newUser(t)
	def := c.createLayout(t, "Default")
	older := c.createLayout(t, "Older")
	newer := c.createLayout(t, "Newer")
	time.Sleep(2 * time.Millisecond) // timestamps have millisecond precision
	c.do(t, "PUT", "/api/dashboard/layouts/"+older.ID, `{"version":1,"name":"Older, but updated last"}`).want(t, http.StatusOK, nil)
	c.do(t, "DELETE", "/api/dashboard/layouts/"+def.ID, nil).want(t, http.StatusNoContent, nil)
	got := c.getLayout(t, older.ID)
	if !got.IsDefault || got.Version != 3 {
		t.Errorf("got %+v, want the most recently updated layout to be the default, at a new version 3", got)
	}
	if c.getLayout(t, newer.ID).IsDefault {
		t.Errorf("two defaults")
	}
}

func testLayoutSetDefault(t *testing.T, h *harness) {
	c := h.newUser(t)
	a, b := c.createLayout(t, "A"), c.createLayout(t, "B")
	var got layout
	c.do(t, "POST", "/api/dashboard/layouts/"+b.ID+"/default", nil).want(t, http.StatusOK, &got)
	if !got.IsDefault || got.Version != 2 || got.ID != b.ID {
		t.Errorf("got %+v, want B the default at version 2", got)
	}
	if old := c.getLayout(t, a.ID); old.IsDefault || old.Version != 2 {
		t.Errorf("got %+v, want A no longer default at version 2", old)
	}
	// Again: nothing changes.
	c.do(t, "POST", "/api/dashboard/layouts/"+b.ID+"/default", `{}`).want(t, http.StatusOK, &got)
	if got.Version != 2 {
		t.Errorf("setting the default twice committed version %d", got.Version)
	}
	var hist struct{ Versions []dsync.Change }
	c.do(t, "GET", "/api/dashboard/layouts/"+b.ID+"/versions", nil).want(t, http.StatusOK, &hist)
	if len(hist.Versions) != 2 || hist.Versions[0].Ops[0].Path != "/isDefault" {
		t.Errorf("got history %+v, want the isDefault op at version 2", hist.Versions)
	}
}

func testLayoutClone(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "static")
	src := c.createLayout(t, "Source", w.ID)
	var named, unnamed layout
	c.do(t, "POST", "/api/dashboard/layouts/"+src.ID, `{"name":"Clone"}`).want(t, http.StatusCreated, &named)
	c.do(t, "POST", "/api/dashboard/layouts/"+src.ID, nil).want(t, http.StatusCreated, &unnamed)
	if named.ID == src.ID || named.Name != "Clone" || named.IsDefault || named.Version != 1 || named.Items[w.ID] != src.Items[w.ID] {
		t.Errorf("got %+v, want a non-default copy named Clone at version 1", named)
	}
	if unnamed.Name != "Source (copy)" {
		t.Errorf("got name %q, want %q", unnamed.Name, "Source (copy)")
	}
}

type history struct {
	Versions []dsync.Change `json:"versions"`
	Next     *int64         `json:"next"`
}

func versionsOf(h history) []int64 {
	var vs []int64
	for _, c := range h.Versions {
		vs = append(vs, c.Version)
	}
	return vs
}

func testLayoutHistory(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "H")
	p := "/api/dashboard/layouts/" + l.ID
	for v := int64(1); v < 8; v++ {
		c.do(t, "PATCH", p, patchBody(v, fmt.Sprintf(`{"op":"add","path":"/settings/v","value":%d}`, v))).want(t, http.StatusOK, nil)
	}
	pages := []struct {
		query string
		want  []int64
		next  *int64
	}{
		{"?limit=3", []int64{8, 7, 6}, ptr[int64](6)},
		{"?limit=3&before=6", []int64{5, 4, 3}, ptr[int64](3)},
		{"?limit=3&before=3", []int64{2, 1}, nil},
		{"", []int64{8, 7, 6, 5, 4, 3, 2, 1}, nil},
		{"?before=2", []int64{1}, nil},
	}
	for _, pg := range pages {
		var got history
		c.do(t, "GET", p+"/versions"+pg.query, nil).want(t, http.StatusOK, &got)
		if !slices.Equal(versionsOf(got), pg.want) || (got.Next == nil) != (pg.next == nil) || (got.Next != nil && *got.Next != *pg.next) {
			t.Errorf("%s: got versions %v next %v, want %v next %v", pg.query, versionsOf(got), got.Next, pg.want, pg.next)
		}
	}
	var got history
	c.do(t, "GET", p+"/versions?limit=1", nil).want(t, http.StatusOK, &got)
	v := got.Versions[0]
	if v.Author != c.user || v.Time.IsZero() || len(v.Ops) != 1 || v.Ops[0].Path != "/settings/v" {
		t.Errorf("got %+v, want author, time and the op", v)
	}
}

func testLayoutHistoryClamp(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "H")
	p := "/api/dashboard/layouts/" + l.ID
	for v := int64(1); v <= 101; v++ {
		c.do(t, "PATCH", p, patchBody(v, fmt.Sprintf(`{"op":"add","path":"/settings/v","value":%d}`, v))).want(t, http.StatusOK, nil)
	}
	var got history
	c.do(t, "GET", p+"/versions?limit=1000", nil).want(t, http.StatusOK, &got)
	if len(got.Versions) != 100 || got.Versions[0].Version != 102 || got.Next == nil || *got.Next != 3 {
		t.Errorf("got %d versions from %d, next %v; want 100 from 102, next 3", len(got.Versions), got.Versions[0].Version, got.Next)
	}
	c.do(t, "GET", p+"/versions", nil).want(t, http.StatusOK, &got)
	if len(got.Versions) != 50 {
		t.Errorf("got %d versions by default, want 50", len(got.Versions))
	}
}

func testLayoutRestore(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "static")
	l := c.createLayout(t, "V1", w.ID)
	other := c.createLayout(t, "Other")
	p := "/api/dashboard/layouts/" + l.ID
	c.do(t, "PUT", p, `{"version":1,"name":"V2","items":{}}`).want(t, http.StatusOK, nil)
	c.do(t, "POST", "/api/dashboard/layouts/"+other.ID+"/default", nil).want(t, http.StatusOK, nil) // l is v3, not default
	var got layout
	c.do(t, "POST", p+"/versions/1/restore", nil).want(t, http.StatusOK, &got)
	if got.Name != "V1" || got.Version != 4 || got.Items[w.ID] != l.Items[w.ID] || got.IsDefault {
		t.Errorf("got %+v, want the document of version 1 as version 4, not the default", got)
	}
	var hist history
	c.do(t, "GET", p+"/versions?limit=1", nil).want(t, http.StatusOK, &hist)
	if rf := hist.Versions[0].RestoredFrom; rf == nil || *rf != 1 {
		t.Errorf("got restoredFrom %v, want 1", rf)
	}
}

func testTemplates(t *testing.T, h *harness) {
	c := h.newUser(t)
	var got struct {
		Templates []map[string]string `json:"templates"`
	}
	c.do(t, "GET", "/api/dashboard/templates", nil).want(t, http.StatusOK, &got)
	names := []string{}
	for _, tpl := range got.Templates {
		if tpl["title"] == "" || tpl["description"] == "" {
			t.Errorf("template %v lacks a title or description", tpl)
		}
		names = append(names, tpl["name"])
	}
	if !slices.Contains(names, "ops-overview") || !slices.Contains(names, "starter") {
		t.Errorf("got templates %v", names)
	}
}
