package hub_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testmetrics"
)

// TestMetrics_GroupCommitsAreCounted: every committed layout edit is in one group
// commit, and /metrics counts the groups and their edits.
func TestMetrics_GroupCommitsAreCounted(t *testing.T) {
	t.Parallel()
	s := testenv.New(t, testenv.Options{Backend: "sqlite"})
	status, body := s.REST(t, "alice", http.MethodPost, "/api/dashboard/layouts", map[string]any{"name": "m", "columns": 12, "items": map[string]any{}})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var l struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	const edits = 5
	for i := range edits {
		status, body := s.REST(t, "alice", http.MethodPatch, "/api/dashboard/layouts/"+l.ID,
			map[string]any{"version": i + 1, "ops": []map[string]any{{"op": "add", "path": "/settings/n", "value": i}}})
		if status != http.StatusOK {
			t.Fatalf("edit %d: %d %s", i, status, body)
		}
	}
	if n := testmetrics.Value(t, s, "dashsync_commit_group_edits_sum"); n != edits {
		t.Errorf("dashsync_commit_group_edits_sum %v, want %d", n, edits)
	}
	if n := testmetrics.Value(t, s, "dashsync_commit_group_seconds_count"); n < 1 || n > edits {
		t.Errorf("dashsync_commit_group_seconds_count %v, want 1 to %d", n, edits)
	}
}
