package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

var widgetCases = []testCase{
	{"Widget_CreateAnswers201AtVersion1", testWidgetCreate},
	{"Widget_CreateRefusesBadInput", testWidgetCreateBadInput},
	{"Widget_ListIsWrapped", testWidgetList},
	{"Widget_GetAnswersTheWidgetAndItsData", testWidgetGet},
	{"Widget_AnotherUsersWidgetIsNotFound", testWidgetOtherUser},
	{"Widget_UpdatesOfDifferentFieldsBothCommit", testWidgetUpdateDifferentFields},
	{"Widget_UpdatesOfTheSameFieldConflict", testWidgetUpdateSameField},
	{"Widget_UpdateRefusesBadInputAndChangesNothing", testWidgetUpdateBadInput},
	{"Widget_PushedDataIsRead", testWidgetPush},
	{"Widget_PushToANonPushWidgetIs400", testWidgetPushNonPush},
	{"Widget_DeleteClearsTheCachedData", testWidgetDeleteClears},
	{"Widget_DeleteWithRemoveTakesItOutOfLayouts", testWidgetRemove},
	{"Widget_BatchAnswersEachID", testWidgetBatch},
	{"Widget_BatchAllSucceededIs200", testWidgetBatchAllOK},
	{"Widget_BatchOver50Is400", testWidgetBatchOver50},
	{"Widget_SourceFailureIs502", testWidgetSourceFailed},
	{"Widget_BatchFetchesItsWidgetsAtOnce", testWidgetBatchFetchesAtOnce},
}

type widgetData struct {
	WidgetID  string          `json:"widgetId"`
	Data      json.RawMessage `json:"data"`
	FetchedAt string          `json:"fetchedAt"`
	ExpiresAt string          `json:"expiresAt"`
	Stale     bool            `json:"stale"`
}

type widgetAndData struct {
	Widget widget      `json:"widget"`
	Data   *widgetData `json:"data"`
}

func testWidgetCreate(t *testing.T, h *harness) {
	c := h.newUser(t)
	var w widget
	body := `{"type":"timeseries","title":"CPU","source":{"kind":"static","data":{"b":1, "a":2}},"settings":{"color":"red"}}`
	c.do(t, "POST", "/api/dashboard/widgets", body).want(t, http.StatusCreated, &w)
	if w.ID == "" || w.Version != 1 || w.Type != "timeseries" || w.Title != "CPU" || w.Settings["color"] != "red" {
		t.Errorf("got %+v", w)
	}
	if w.Source.RefreshSeconds != 60 || w.Source.TTLSeconds != 3600 {
		t.Errorf("got refresh %d ttl %d, want the defaults 60 and 3600", w.Source.RefreshSeconds, w.Source.TTLSeconds)
	}
	if w.Rebased != nil {
		t.Errorf("a create answers the bare widget")
	}
	// Read-only fields come along and are ignored.
	r := c.do(t, "GET", "/api/dashboard/widgets/"+w.ID, nil)
	var wd struct{ Widget json.RawMessage }
	r.want(t, http.StatusOK, &wd)
	var copied widget
	c.do(t, "POST", "/api/dashboard/widgets", wd.Widget).want(t, http.StatusCreated, &copied)
	if copied.ID == w.ID || copied.Title != "CPU" || copied.Version != 1 {
		t.Errorf("got %+v, want a new widget like the first", copied)
	}
}

func testWidgetCreateBadInput(t *testing.T, h *harness) {
	c := h.newUser(t)
	cases := []badCreate{
		{"no type", `{"source":{"kind":"push"}}`, 400, "validation_failed", "type"},
		{"bad type", `{"type":"Big Chart","source":{"kind":"push"}}`, 400, "validation_failed", "type"},
		{"no source", `{"type":"stat"}`, 400, "validation_failed", "source"},
		{"no source kind", `{"type":"stat","source":{}}`, 400, "validation_failed", "source.kind"},
		{"unknown source kind", `{"type":"stat","source":{"kind":"ftp"}}`, 400, "validation_failed", "source.kind"},
		{"static without data", `{"type":"stat","source":{"kind":"static"}}`, 400, "validation_failed", "source.data"},
		{"refresh below 1", `{"type":"stat","source":{"kind":"push","refreshSeconds":-1}}`, 400, "validation_failed", "source.refreshSeconds"},
		{"refresh of the wrong type", `{"type":"stat","source":{"kind":"push","refreshSeconds":"5"}}`, 400, "validation_failed", "source.refreshSeconds"},
		{"title too long", `{"type":"stat","title":"` + strings.Repeat("t", 201) + `","source":{"kind":"push"}}`, 400, "validation_failed", "title"},
		{"unknown field", `{"type":"stat","source":{"kind":"push"},"colour":1}`, 400, "bad_request", ""},
		{"unknown source field", `{"type":"stat","source":{"kind":"push","every":1}}`, 400, "bad_request", ""},
		{"not JSON", `{"type":`, 400, "bad_request", ""},
	}
	wantCreatesRefused[widget](t, c, "/api/dashboard/widgets", cases)
}

func testWidgetList(t *testing.T, h *harness) {
	c := h.newUser(t)
	var empty map[string][]widget
	c.do(t, "GET", "/api/dashboard/widgets", nil).want(t, http.StatusOK, &empty)
	if ws, ok := empty["widgets"]; !ok || len(ws) != 0 {
		t.Fatalf(`got %v, want {"widgets":[]}`, empty)
	}
	a, b := c.createWidget(t, "static"), c.createWidget(t, "push")
	h.newUser(t).createWidget(t, "push") // someone else's
	var got map[string][]widget
	c.do(t, "GET", "/api/dashboard/widgets", nil).want(t, http.StatusOK, &got)
	if ws := got["widgets"]; len(ws) != 2 || ws[0].ID != a.ID || ws[1].ID != b.ID {
		t.Errorf("got %+v, want a and b, oldest first", ws)
	}
}

func testWidgetGet(t *testing.T, h *harness) {
	c := h.newUser(t)
	static, push := c.createWidget(t, "static"), c.createWidget(t, "push")
	var got widgetAndData
	c.do(t, "GET", "/api/dashboard/widgets/"+static.ID, nil).want(t, http.StatusOK, &got)
	if got.Widget.ID != static.ID || got.Data == nil || string(got.Data.Data) != `{"value":42}` || got.Data.WidgetID != static.ID {
		t.Errorf("got %+v, want the static widget with its data", got)
	}
	r := c.do(t, "GET", "/api/dashboard/widgets/"+push.ID+"?refresh=true", nil)
	r.want(t, http.StatusOK, nil)
	if !strings.Contains(string(r.body), `"data":null`) {
		t.Errorf(`got %s, want "data":null for a push widget never pushed`, r.body)
	}
	c.do(t, "GET", "/api/dashboard/widgets/"+push.ID+"?refresh=maybe", nil).wantError(t, http.StatusBadRequest, "validation_failed")
	c.do(t, "GET", "/api/dashboard/widgets/nope", nil).wantError(t, http.StatusNotFound, "not_found")
}

func testWidgetOtherUser(t *testing.T, h *harness) {
	alice, bob := h.newUser(t), h.newUser(t)
	w := alice.createWidget(t, "push")
	alice.do(t, "PUT", "/api/dashboard/widgets/"+w.ID+"/data", `{"data":{"n":1}}`).want(t, http.StatusOK, nil)
	p := "/api/dashboard/widgets/" + w.ID
	before := alice.snapshot(t, p)
	cases := []struct{ method, path, body string }{
		{"GET", p, ""},
		{"POST", p, `{"version":1,"title":"mine"}`},
		{"DELETE", p, ""},
		{"DELETE", p + "?remove=true", ""},
		{"PUT", p + "/data", `{"data":{"n":2}}`},
	}
	for _, tc := range cases {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		bob.do(t, tc.method, tc.path, body).wantError(t, http.StatusNotFound, "not_found")
	}
	alice.wantUnchanged(t, before, p)
}

func testWidgetUpdateDifferentFields(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "push")
	p := "/api/dashboard/widgets/" + w.ID
	var a, b widget
	c.do(t, "POST", p, `{"version":1,"title":"New title"}`).want(t, http.StatusOK, &a)
	c.do(t, "POST", p, `{"version":1,"settings":{"color":"blue"}}`).want(t, http.StatusOK, &b)
	if *a.Rebased || !*b.Rebased || b.Version != 3 || b.Title != "New title" || b.Settings["color"] != "blue" {
		t.Errorf("got %+v then %+v, want both committed, the second rebased", a, b)
	}
}

func testWidgetUpdateSameField(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "push")
	p := "/api/dashboard/widgets/" + w.ID
	c.do(t, "POST", p, `{"version":1,"source":{"kind":"push","refreshSeconds":5}}`).want(t, http.StatusOK, nil)
	e := c.do(t, "POST", p, `{"version":1,"source":{"kind":"push","refreshSeconds":9}}`).wantError(t, http.StatusConflict, "version_conflict")
	if len(e.Conflicts) != 1 || e.Conflicts[0].Path != "/source/refreshSeconds" {
		t.Errorf("got conflicts %+v, want one on /source/refreshSeconds", e.Conflicts)
	}
	var cur widget
	if err := json.Unmarshal(e.Current, &cur); err != nil || cur.Source.RefreshSeconds != 5 || cur.Version != 2 {
		t.Errorf("got current %s, want the widget at version 2", e.Current)
	}
	var forced widget
	c.do(t, "POST", p, `{"version":1,"force":true,"source":{"kind":"push","refreshSeconds":9}}`).want(t, http.StatusOK, &forced)
	if forced.Source.RefreshSeconds != 9 || forced.Version != 3 {
		t.Errorf("got %+v, want the forced update at version 3", forced)
	}
}

func testWidgetUpdateBadInput(t *testing.T, h *harness) {
	c, other := h.newUser(t), h.newUser(t)
	w := c.createWidget(t, "static")
	p := "/api/dashboard/widgets/" + w.ID
	cases := []struct {
		name, body string
		token      string
		status     int
		code       string
		field      string
	}{
		{"missing version", `{"title":"x"}`, "", 400, "validation_failed", "version"},
		{"version of the wrong type", `{"version":"1","title":"x"}`, "", 400, "validation_failed", "version"},
		{"bad type", `{"version":1,"type":"UPPER"}`, "", 400, "validation_failed", "type"},
		{"unknown field", `{"version":1,"name":"x"}`, "", 400, "bad_request", ""},
		{"malformed JSON", `{"version":1,`, "", 400, "bad_request", ""},
		{"another user's widget", `{"version":1,"title":"x"}`, other.token, 404, "not_found", ""},
		{"expired token", `{"version":1,"title":"x"}`, h.token(t, c.user, -time.Second), 401, "unauthorized", ""},
		{"data for a static widget", `{"data":1}`, "", 400, "bad_request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.snapshot(t, p)
			tok := c.token
			if tc.token != "" {
				tok = tc.token
			}
			path := p
			if strings.HasPrefix(tc.body, `{"data"`) {
				path += "/data"
			}
			method := "POST"
			if path != p {
				method = "PUT"
			}
			e := h.do(t, method, path, tc.body, map[string]string{"Authorization": "Bearer " + tok}).wantError(t, tc.status, tc.code)
			if tc.field != "" {
				e.wantDetail(t, tc.field, "")
			}
			c.wantUnchanged(t, before, p)
		})
	}
}

func testWidgetPush(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "push")
	p := "/api/dashboard/widgets/" + w.ID
	var d widgetData
	c.do(t, "PUT", p+"/data", `{"data":{"value": 7}}`).want(t, http.StatusOK, &d)
	if d.WidgetID != w.ID || string(d.Data) != `{"value":7}` || d.FetchedAt == "" || d.ExpiresAt == "" || d.Stale {
		t.Errorf("got %+v", d)
	}
	var got widgetAndData
	c.do(t, "GET", p, nil).want(t, http.StatusOK, &got)
	if got.Data == nil || string(got.Data.Data) != `{"value":7}` {
		t.Errorf("got %+v, want the pushed data", got.Data)
	}
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"missing data", `{}`, 400, "validation_failed"},
		{"unknown field", `{"data":1,"ttl":5}`, 400, "bad_request"},
		{"data over 256 KiB", `{"data":"` + strings.Repeat("d", 300<<10) + `"}`, 413, "too_large"},
		{"body over 1 MiB", `{"data":"` + strings.Repeat("d", 1<<20) + `"}`, 413, "too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.do(t, "PUT", p+"/data", tc.body).wantError(t, tc.status, tc.code)
			c.do(t, "GET", p, nil).want(t, http.StatusOK, &got)
			if string(got.Data.Data) != `{"value":7}` {
				t.Errorf("a refused push changed the data to %s", got.Data.Data)
			}
		})
	}
}

func testWidgetPushNonPush(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "static")
	c.do(t, "PUT", "/api/dashboard/widgets/"+w.ID+"/data", `{"data":1}`).wantError(t, http.StatusBadRequest, "bad_request")
}

func testWidgetDeleteClears(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "push")
	p := "/api/dashboard/widgets/" + w.ID
	c.do(t, "PUT", p+"/data", `{"data":1}`).want(t, http.StatusOK, nil)
	c.do(t, "DELETE", p, nil).want(t, http.StatusNoContent, nil)
	var got widgetAndData
	c.do(t, "GET", p, nil).want(t, http.StatusOK, &got)
	if got.Data != nil || got.Widget.ID != w.ID {
		t.Errorf("got %+v, want the widget kept with no data", got)
	}
	c.do(t, "DELETE", p+"?remove=perhaps", nil).wantError(t, http.StatusBadRequest, "validation_failed")
}

func testWidgetRemove(t *testing.T, h *harness) {
	c := h.newUser(t)
	w, keep := c.createWidget(t, "push"), c.createWidget(t, "static")
	a := c.createLayout(t, "A", w.ID, keep.ID)
	b := c.createLayout(t, "B", keep.ID)
	c.do(t, "DELETE", "/api/dashboard/widgets/"+w.ID+"?remove=true", nil).want(t, http.StatusNoContent, nil)
	c.do(t, "GET", "/api/dashboard/widgets/"+w.ID, nil).wantError(t, http.StatusNotFound, "not_found")
	gotA := c.getLayout(t, a.ID)
	if _, ok := gotA.Items[w.ID]; ok || gotA.Version != 2 || len(gotA.Items) != 1 {
		t.Errorf("got %+v, want layout A without the widget at version 2", gotA)
	}
	if gotB := c.getLayout(t, b.ID); gotB.Version != 1 {
		t.Errorf("layout B does not place the widget but got version %d", gotB.Version)
	}
	var hist history
	c.do(t, "GET", "/api/dashboard/layouts/"+a.ID+"/versions?limit=1", nil).want(t, http.StatusOK, &hist)
	if ops := hist.Versions[0].Ops; len(ops) != 1 || ops[0].Op != "remove" || ops[0].Path != "/items/"+w.ID {
		t.Errorf("got ops %+v, want the removal of the item", ops)
	}
}

type batchBody struct {
	Results map[string]struct {
		Status int             `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"results"`
}

func testWidgetBatch(t *testing.T, h *harness) {
	c := h.newUser(t)
	static, push, echo := c.createWidget(t, "static"), c.createWidget(t, "push"), c.createWidget(t, "test.echo")
	theirs := h.newUser(t).createWidget(t, "static")
	ids := []string{static.ID, push.ID, echo.ID, theirs.ID, "no-such-widget"}
	forms := []struct {
		name string
		send func() *resp
	}{
		{"GET", func() *resp {
			return c.do(t, "GET", "/api/dashboard/widgets/batch?ids="+strings.Join(ids, ","), nil)
		}},
		{"POST", func() *resp {
			return c.do(t, "POST", "/api/dashboard/widgets/batch", map[string]any{"ids": ids, "refresh": true})
		}},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			var got batchBody
			f.send().want(t, http.StatusMultiStatus, &got)
			if len(got.Results) != len(ids) {
				t.Fatalf("got %d results, want %d", len(got.Results), len(ids))
			}
			if r := got.Results[static.ID]; r.Status != 200 || !strings.Contains(string(r.Data), `"data":{"value":42}`) {
				t.Errorf("static: got %+v", r)
			}
			if r := got.Results[push.ID]; r.Status != 200 || string(r.Data) != "null" {
				t.Errorf("push with no data: got status %d data %s, want 200 null", r.Status, r.Data)
			}
			if r := got.Results[echo.ID]; r.Status != 200 || !strings.Contains(string(r.Data), echo.ID) {
				t.Errorf("echo: got %+v", r)
			}
			for _, id := range []string{theirs.ID, "no-such-widget"} {
				if r := got.Results[id]; r.Status != 404 || r.Error == nil || r.Error.Code != "not_found" || r.Data != nil {
					t.Errorf("%s: got %+v, want a 404 not_found", id, r)
				}
			}
		})
	}
}

func testWidgetBatchAllOK(t *testing.T, h *harness) {
	c := h.newUser(t)
	a, b := c.createWidget(t, "static"), c.createWidget(t, "static")
	var got batchBody
	c.do(t, "GET", fmt.Sprintf("/api/dashboard/widgets/batch?ids=%s,%s,%s", a.ID, b.ID, a.ID), nil).want(t, http.StatusOK, &got)
	if len(got.Results) != 2 || got.Results[a.ID].Status != 200 || got.Results[b.ID].Status != 200 {
		t.Errorf("got %+v, want 200 for both ids", got)
	}
}

func testWidgetBatchOver50(t *testing.T, h *harness) {
	c := h.newUser(t)
	ids := make([]string, 51)
	for i := range ids {
		ids[i] = fmt.Sprintf("w%d", i)
	}
	e := c.do(t, "GET", "/api/dashboard/widgets/batch?ids="+strings.Join(ids, ","), nil).wantError(t, http.StatusBadRequest, "validation_failed")
	e.wantDetail(t, "ids", "max")
	e = c.do(t, "POST", "/api/dashboard/widgets/batch", map[string]any{"ids": ids}).wantError(t, http.StatusBadRequest, "validation_failed")
	e.wantDetail(t, "ids", "max")
	c.do(t, "GET", "/api/dashboard/widgets/batch", nil).wantError(t, http.StatusBadRequest, "validation_failed")
	c.do(t, "POST", "/api/dashboard/widgets/batch", `{"ids":[]}`).wantError(t, http.StatusBadRequest, "validation_failed")
	c.do(t, "POST", "/api/dashboard/widgets/batch", `{"ids":"a,b"}`).wantError(t, http.StatusBadRequest, "validation_failed")
	c.do(t, "POST", "/api/dashboard/widgets/batch", `{"ids":["a"],"more":1}`).wantError(t, http.StatusBadRequest, "bad_request")
}

func testWidgetSourceFailed(t *testing.T, h *harness) {
	c := h.newUser(t)
	bad, good := c.createWidget(t, "test.fail"), c.createWidget(t, "static")
	c.do(t, "GET", "/api/dashboard/widgets/"+bad.ID, nil).wantError(t, http.StatusBadGateway, "source_failed")
	var got batchBody
	c.do(t, "POST", "/api/dashboard/widgets/batch", map[string]any{"ids": []string{bad.ID, good.ID}}).want(t, http.StatusMultiStatus, &got)
	if r := got.Results[bad.ID]; r.Status != 502 || r.Error == nil || r.Error.Code != "source_failed" {
		t.Errorf("got %+v, want a per-id 502 source_failed", r)
	}
	if r := got.Results[good.ID]; r.Status != 200 {
		t.Errorf("got %+v, want 200 for the good widget", r)
	}
}

// testWidgetBatchFetchesAtOnce: a batch fetches its widgets at the same time, a
// failing one among them. Each of the two test.pair widgets answers only once the
// other's fetch has begun: a batch fetching one widget at a time would hold the first
// until its deadline (fetchDeadline, generous) and answer it 502.
func testWidgetBatchFetchesAtOnce(t *testing.T, h *harness) {
	c := h.newUser(t)
	bad, p1, p2, good, echo := c.createWidget(t, "test.fail"), c.createWidget(t, "test.pair"), c.createWidget(t, "test.pair"),
		c.createWidget(t, "static"), c.createWidget(t, "test.echo")
	var got batchBody
	c.do(t, "POST", "/api/dashboard/widgets/batch", map[string]any{"ids": []string{p1.ID, bad.ID, good.ID, echo.ID, p2.ID}}).want(t, http.StatusMultiStatus, &got)
	if r := got.Results[bad.ID]; r.Status != 502 || r.Error == nil || r.Error.Code != "source_failed" {
		t.Errorf("failing source: got %+v, want a per-id 502 source_failed", r)
	}
	for _, w := range []string{p1.ID, p2.ID, good.ID, echo.ID} {
		if r := got.Results[w]; r.Status != 200 {
			t.Errorf("widget %s: got %+v, want 200 (the batch did not fetch its widgets at once)", w, r)
		}
	}
}

// TestWidgetBatch_SlowSourceIsCutAtItsDeadline: a widget whose source answers late is
// answered 502 source_failed at its fetch deadline, and the batch does not wait for
// the late answer. The slow source answers only once the test has the batch's answer
// (or, noting it, at slowGiveUp): a batch that waited for it would be answered only
// after that. The other widgets of the batch answer without a fetch (static) or at
// once (test.fail), so the short deadline cannot fail them on a slow machine. The
// store plays no part: SQLite only.
func TestWidgetBatch_SlowSourceIsCutAtItsDeadline(t *testing.T) {
	t.Parallel()
	h := newHarnessFetching(t, backends[0].open(t), newTestSources(t, nil, nil), slowSourceDeadline)
	c := h.newUser(t)
	bad, slow, good := c.createWidget(t, "test.fail"), c.createWidget(t, "test.slow"), c.createWidget(t, "static")
	late := slowAnswers.gate(slow.ID)
	t.Cleanup(late.release)
	var got batchBody
	c.do(t, "POST", "/api/dashboard/widgets/batch", map[string]any{"ids": []string{bad.ID, slow.ID, good.ID}}).want(t, http.StatusMultiStatus, &got)
	if late.waitedOut.Load() {
		t.Errorf("the batch was answered only after the slow source answered (at %v): it waited for it past its deadline (%v)", slowGiveUp, slowSourceDeadline)
	}
	late.release()
	if r := got.Results[slow.ID]; r.Status != 502 || r.Error == nil || r.Error.Code != "source_failed" || !strings.Contains(r.Error.Message, "did not answer") {
		t.Errorf("slow source: got %+v, want a per-id 502 source_failed: its source did not answer in time", r)
	}
	if r := got.Results[bad.ID]; r.Status != 502 || r.Error == nil || r.Error.Code != "source_failed" {
		t.Errorf("failing source: got %+v, want a per-id 502 source_failed", r)
	}
	if r := got.Results[good.ID]; r.Status != 200 {
		t.Errorf("static widget: got %+v, want 200", r)
	}
}
