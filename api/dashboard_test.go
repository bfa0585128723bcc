package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

var dashboardCases = []testCase{
	{"Dashboard_NewUserHasNoLayout", testDashboardEmpty},
	{"Dashboard_GetAnswersLayoutWidgetsAndData", testDashboardGet},
	{"Dashboard_PutMergesPreferences", testDashboardPutMerge},
	{"Dashboard_PutWithAStaleVersionIs409", testDashboardPutVersion},
	{"Dashboard_PutSetsTheCurrentLayout", testDashboardPutCurrent},
	{"Dashboard_PutRefusesBadInput", testDashboardPutBadInput},
	{"Dashboard_PostSavesLayoutAndState", testDashboardPost},
	{"Dashboard_PostWithAConflictingLayoutSavesNothing", testDashboardPostAtomic},
}

type dashboard struct {
	CurrentLayoutID *string         `json:"currentLayoutId"`
	Preferences     json.RawMessage `json:"preferences"`
	Version         int64           `json:"version"`
}

type dashboardView struct {
	Dashboard dashboard              `json:"dashboard"`
	Layout    *layout                `json:"layout"`
	Widgets   []widget               `json:"widgets"`
	Data      map[string]*widgetData `json:"data"`
}

func testDashboardEmpty(t *testing.T, h *harness) {
	c := h.newUser(t)
	r := c.do(t, "GET", "/api/dashboard", nil)
	r.want(t, http.StatusOK, nil)
	want := `{"dashboard":{"currentLayoutId":null,"preferences":{},"version":0},"layout":null,"widgets":[],"data":{}}`
	if string(r.body) != want {
		t.Errorf("got %s, want %s", r.body, want)
	}
}

func testDashboardGet(t *testing.T, h *harness) {
	c := h.newUser(t)
	static, push, unplaced := c.createWidget(t, "static"), c.createWidget(t, "push"), c.createWidget(t, "static")
	l := c.createLayout(t, "Main", static.ID, push.ID)
	var v dashboardView
	c.do(t, "GET", "/api/dashboard", nil).want(t, http.StatusOK, &v)
	if v.Layout == nil || v.Layout.ID != l.ID {
		t.Fatalf("got layout %+v, want the default layout", v.Layout)
	}
	if len(v.Widgets) != 2 {
		t.Errorf("got %d widgets, want the 2 the layout places", len(v.Widgets))
	}
	for _, w := range v.Widgets {
		if w.ID == unplaced.ID {
			t.Errorf("a widget the layout does not place is listed")
		}
	}
	if d := v.Data[static.ID]; d == nil || string(d.Data) != `{"value":42}` {
		t.Errorf("got data %+v, want the static widget's data", v.Data)
	}
	if _, ok := v.Data[push.ID]; ok {
		t.Errorf("a push widget with no data has an entry")
	}
}

func testDashboardPutMerge(t *testing.T, h *harness) {
	c := h.newUser(t)
	var d dashboard
	c.do(t, "PUT", "/api/dashboard", `{"preferences":{"theme":"dark","grid":{"snap":true,"size":8}}}`).want(t, http.StatusOK, &d)
	if d.Version != 1 {
		t.Errorf("got version %d, want 1", d.Version)
	}
	c.do(t, "PUT", "/api/dashboard", `{"preferences":{"grid":{"snap":null},"lang":"fr"}}`).want(t, http.StatusOK, &d)
	want := `{"grid":{"size":8},"lang":"fr","theme":"dark"}`
	if string(d.Preferences) != want || d.Version != 2 {
		t.Errorf("got %s at version %d, want %s at version 2", d.Preferences, d.Version, want)
	}
	var v dashboardView
	c.do(t, "GET", "/api/dashboard", nil).want(t, http.StatusOK, &v)
	if string(v.Dashboard.Preferences) != want {
		t.Errorf("GET gives %s, want %s", v.Dashboard.Preferences, want)
	}
	// An update that changes nothing commits nothing.
	c.do(t, "PUT", "/api/dashboard", `{"preferences":{"lang":"fr"}}`).want(t, http.StatusOK, &d)
	if d.Version != 2 {
		t.Errorf("a no-op update committed version %d", d.Version)
	}
}

func testDashboardPutVersion(t *testing.T, h *harness) {
	c := h.newUser(t)
	c.do(t, "PUT", "/api/dashboard", `{"preferences":{"a":1},"version":0}`).want(t, http.StatusOK, nil)
	before := c.snapshot(t, "/api/dashboard")
	e := c.do(t, "PUT", "/api/dashboard", `{"preferences":{"a":2},"version":0}`).wantError(t, http.StatusConflict, "version_conflict")
	var cur dashboard
	if err := json.Unmarshal(e.Current, &cur); err != nil || cur.Version != 1 {
		t.Errorf("got current %s, want the dashboard at version 1", e.Current)
	}
	if e.Conflicts == nil {
		t.Errorf("a version_conflict without conflicts")
	}
	c.wantUnchanged(t, before, "/api/dashboard")
	c.do(t, "PUT", "/api/dashboard", `{"preferences":{"a":2},"version":1}`).want(t, http.StatusOK, nil)
}

func testDashboardPutCurrent(t *testing.T, h *harness) {
	c := h.newUser(t)
	c.createLayout(t, "Default")
	other := c.createLayout(t, "Other")
	var d dashboard
	c.do(t, "PUT", "/api/dashboard", fmt.Sprintf(`{"currentLayoutId":"%s"}`, other.ID)).want(t, http.StatusOK, &d)
	if d.CurrentLayoutID == nil || *d.CurrentLayoutID != other.ID {
		t.Errorf("got %+v, want the current layout set", d)
	}
	var v dashboardView
	c.do(t, "GET", "/api/dashboard", nil).want(t, http.StatusOK, &v)
	if v.Layout == nil || v.Layout.ID != other.ID {
		t.Errorf("GET gives layout %+v, want the current one", v.Layout)
	}
	c.do(t, "PUT", "/api/dashboard", `{"currentLayoutId":null}`).want(t, http.StatusOK, &d)
	if d.CurrentLayoutID != nil {
		t.Errorf("got %+v, want no current layout", d)
	}
	c.do(t, "GET", "/api/dashboard", nil).want(t, http.StatusOK, &v)
	if v.Layout == nil || v.Layout.Name != "Default" {
		t.Errorf("GET gives layout %+v, want the default", v.Layout)
	}
}

func testDashboardPutBadInput(t *testing.T, h *harness) {
	c := h.newUser(t)
	c.do(t, "PUT", "/api/dashboard", `{"preferences":{"a":1}}`).want(t, http.StatusOK, nil)
	theirs := h.newUser(t).createLayout(t, "Theirs")
	cases := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"unknown layout", `{"currentLayoutId":"nope"}`, 400, "validation_failed", "currentLayoutId"},
		{"another user's layout", fmt.Sprintf(`{"currentLayoutId":"%s"}`, theirs.ID), 400, "validation_failed", "currentLayoutId"},
		{"current layout of the wrong type", `{"currentLayoutId":5}`, 400, "validation_failed", "currentLayoutId"},
		{"preferences not an object", `{"preferences":[1]}`, 400, "validation_failed", "preferences"},
		{"version of the wrong type", `{"version":"1"}`, 400, "validation_failed", "version"},
		{"negative version", `{"version":-1}`, 400, "validation_failed", "version"},
		{"unknown field", `{"prefs":{}}`, 400, "bad_request", ""},
		{"not JSON", `{`, 400, "bad_request", ""},
		{"preferences over 16 KiB", `{"preferences":{"k":"` + strings.Repeat("p", 17<<10) + `"}}`, 413, "too_large", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.snapshot(t, "/api/dashboard")
			e := c.do(t, "PUT", "/api/dashboard", tc.body).wantError(t, tc.status, tc.code)
			if tc.field != "" {
				e.wantDetail(t, tc.field, "")
			}
			c.wantUnchanged(t, before, "/api/dashboard")
		})
	}
}

func testDashboardPost(t *testing.T, h *harness) {
	c := h.newUser(t)
	w := c.createWidget(t, "static")
	c.createLayout(t, "Default")
	l := c.createLayout(t, "Edited")
	body := fmt.Sprintf(`{"layout":{"id":"%s","version":1,"name":"Edited twice","items":{"%s":{"x":1,"y":1,"w":3,"h":3}}},
		"preferences":{"theme":"light"},"currentLayoutId":"%s"}`, l.ID, w.ID, l.ID)
	var v dashboardView
	c.do(t, "POST", "/api/dashboard", body).want(t, http.StatusOK, &v)
	if v.Layout == nil || v.Layout.ID != l.ID || v.Layout.Name != "Edited twice" || v.Layout.Version != 2 {
		t.Fatalf("got layout %+v, want the saved layout at version 2", v.Layout)
	}
	if string(v.Dashboard.Preferences) != `{"theme":"light"}` || v.Dashboard.CurrentLayoutID == nil || v.Dashboard.Version != 1 {
		t.Errorf("got dashboard %+v", v.Dashboard)
	}
	if len(v.Widgets) != 1 || v.Data[w.ID] == nil {
		t.Errorf("got widgets %+v data %v, want the placed widget and its data", v.Widgets, v.Data)
	}
	// POST replaces the preferences (PUT merges them).
	c.do(t, "POST", "/api/dashboard", `{"preferences":{"lang":"de"}}`).want(t, http.StatusOK, &v)
	if string(v.Dashboard.Preferences) != `{"lang":"de"}` {
		t.Errorf("got preferences %s, want them replaced", v.Dashboard.Preferences)
	}
}

func testDashboardPostAtomic(t *testing.T, h *harness) {
	c := h.newUser(t)
	l := c.createLayout(t, "L")
	c.do(t, "PUT", "/api/dashboard", `{"preferences":{"a":1}}`).want(t, http.StatusOK, nil)
	c.do(t, "PUT", "/api/dashboard/layouts/"+l.ID, `{"version":1,"name":"Renamed elsewhere"}`).want(t, http.StatusOK, nil)
	paths := []string{"/api/dashboard", "/api/dashboard/layouts/" + l.ID}
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"conflicting layout", fmt.Sprintf(`{"layout":{"id":"%s","version":1,"name":"Mine"},"preferences":{"a":2}}`, l.ID), 409, "version_conflict"},
		{"layout missing version", fmt.Sprintf(`{"layout":{"id":"%s","name":"Mine"},"preferences":{"a":2}}`, l.ID), 400, "validation_failed"},
		{"layout missing id", `{"layout":{"version":2,"name":"Mine"},"preferences":{"a":2}}`, 400, "validation_failed"},
		{"layout out of bounds", fmt.Sprintf(`{"layout":{"id":"%s","version":2,"columns":99},"preferences":{"a":2}}`, l.ID), 400, "validation_failed"},
		{"bad current layout after a good layout", fmt.Sprintf(`{"layout":{"id":"%s","version":2,"name":"Mine"},"currentLayoutId":"nope"}`, l.ID), 400, "validation_failed"},
		{"stale dashboard version after a good layout", fmt.Sprintf(`{"layout":{"id":"%s","version":2,"name":"Mine"},"version":0}`, l.ID), 409, "version_conflict"},
		{"another user's layout", fmt.Sprintf(`{"layout":{"id":"%s","version":1,"name":"Mine"}}`, h.newUser(t).createLayout(t, "x").ID), 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.snapshot(t, paths...)
			c.do(t, "POST", "/api/dashboard", tc.body).wantError(t, tc.status, tc.code)
			c.wantUnchanged(t, before, paths...)
		})
	}
}
