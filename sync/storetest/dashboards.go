package storetest

import (
	"encoding/json"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

func putDashboard(t testing.TB, s dsync.Store, d dsync.Dashboard) error {
	t.Helper()
	return s.InTx(t.Context(), func(tx dsync.Tx) error { return tx.PutDashboard(t.Context(), d) })
}

func checkDashboard(t testing.TB, got, want dsync.Dashboard) {
	t.Helper()
	if got.Owner != want.Owner || got.Version != want.Version {
		t.Errorf("dashboard: got {owner %s version %d}, want {owner %s version %d}", got.Owner, got.Version, want.Owner, want.Version)
	}
	if (got.CurrentLayoutID == nil) != (want.CurrentLayoutID == nil) ||
		(got.CurrentLayoutID != nil && *got.CurrentLayoutID != *want.CurrentLayoutID) {
		t.Errorf("dashboard currentLayoutId: got %v, want %v", str(got.CurrentLayoutID), str(want.CurrentLayoutID))
	}
	checkRaw(t, "dashboard preferences", got.Preferences, want.Preferences)
}

func str(p *string) string {
	if p == nil {
		return "nil"
	}
	return *p
}

func testDashboardNeverSaved(t *testing.T, s dsync.Store) {
	owner := newID("user")
	d, err := s.Dashboard(t.Context(), owner)
	if err != nil {
		t.Fatalf("Dashboard: %v", err)
	}
	checkDashboard(t, d, dsync.Dashboard{Owner: owner, Preferences: json.RawMessage(`{}`)})
}

func testDashboardRoundTrip(t *testing.T, s dsync.Store) {
	current := newID("layout")
	tests := []struct {
		name      string
		put, want dsync.Dashboard
	}{
		{
			name: "preferences bytes and current layout are kept",
			put:  dsync.Dashboard{CurrentLayoutID: &current, Preferences: json.RawMessage(`{"theme": "dark", "html":"<&>", "n":1.50}`), Version: 1},
			want: dsync.Dashboard{CurrentLayoutID: &current, Preferences: json.RawMessage(`{"theme": "dark", "html":"<&>", "n":1.50}`), Version: 1},
		},
		{
			name: "nil preferences come back as an empty object",
			put:  dsync.Dashboard{Version: 1},
			want: dsync.Dashboard{Preferences: json.RawMessage(`{}`), Version: 1},
		},
		{
			name: "empty preferences come back as an empty object",
			put:  dsync.Dashboard{Preferences: json.RawMessage{}, Version: 1},
			want: dsync.Dashboard{Preferences: json.RawMessage(`{}`), Version: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			owner := newID("user")
			tc.put.Owner, tc.want.Owner = owner, owner
			if err := putDashboard(t, s, tc.put); err != nil {
				t.Fatalf("PutDashboard: %v", err)
			}
			got, err := s.Dashboard(t.Context(), owner)
			if err != nil {
				t.Fatalf("Dashboard: %v", err)
			}
			checkDashboard(t, got, tc.want)
		})
	}
}

func testDashboardCAS(t *testing.T, s dsync.Store) {
	owner := newID("user")
	current := newID("layout")
	v1 := dsync.Dashboard{Owner: owner, CurrentLayoutID: &current, Preferences: json.RawMessage(`{"a":1}`), Version: 1}
	if err := putDashboard(t, s, v1); err != nil {
		t.Fatalf("PutDashboard v1: %v", err)
	}

	tests := []struct {
		name    string
		version int64
	}{
		{"a second first version is stale", 1},
		{"skipping a version is stale", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := dsync.Dashboard{Owner: owner, Preferences: json.RawMessage(`{"lost":true}`), Version: tc.version}
			wantIs(t, "PutDashboard", putDashboard(t, s, d), dsync.ErrStale)
		})
	}
	got, err := s.Dashboard(t.Context(), owner)
	if err != nil {
		t.Fatalf("Dashboard: %v", err)
	}
	checkDashboard(t, got, v1)

	v2 := dsync.Dashboard{Owner: owner, Preferences: json.RawMessage(`{"a":2}`), Version: 2} // clears the current layout
	if err := putDashboard(t, s, v2); err != nil {
		t.Fatalf("PutDashboard v2: %v", err)
	}
	if got, err = s.Dashboard(t.Context(), owner); err != nil {
		t.Fatalf("Dashboard: %v", err)
	}
	checkDashboard(t, got, v2)
	wantIs(t, "PutDashboard v2 again", putDashboard(t, s, v2), dsync.ErrStale)
}
