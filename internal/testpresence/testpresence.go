// Package testpresence is for tests: the presence lists of SPEC §5 as the WebSocket
// protocol carries them, decoded from wsclient messages.
package testpresence

import (
	"encoding/json"
	"testing"

	"github.com/dashsync/dashsync/internal/wsclient"
)

// Entry is one client in a presence message's joined or left list.
type Entry struct {
	User   string `json:"user"`
	Client string `json:"client"`
}

// User is one user in a subscribed reply's presence list.
type User struct {
	User    string   `json:"user"`
	Clients []string `json:"clients"`
}

// Changes returns the joined and left lists of the presence message m, failing t
// when either is not a list of entries.
func Changes(t testing.TB, m wsclient.Msg) (joined, left []Entry) {
	t.Helper()
	if err := json.Unmarshal(m.Joined, &joined); err != nil {
		t.Fatalf("presence joined: %v in %s", err, m.Raw)
	}
	if err := json.Unmarshal(m.Left, &left); err != nil {
		t.Fatalf("presence left: %v in %s", err, m.Raw)
	}
	return joined, left
}
