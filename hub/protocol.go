package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	dsync "github.com/dashsync/dashsync/sync"
	"github.com/dashsync/dashsync/wire"
)

// inbound is every field a client message may carry (SPEC §5); unknown fields are
// refused.
type inbound struct {
	ID      *int64     `json:"id"`
	Type    string     `json:"type"`
	Channel string     `json:"channel"`
	Since   *int64     `json:"since"`
	Base    *int64     `json:"base"`
	EditID  string     `json:"editId"`
	Ops     []dsync.Op `json:"ops"`
	Force   bool       `json:"force"`
	Token   string     `json:"token"`
}

// decodeInbound parses one client frame.
func decodeInbound(b []byte) (inbound, error) {
	var m inbound
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			if ute.Field == "id" {
				m.ID = nil // not the id the client meant: the reply carries none
			}
			return m, dsync.Invalid(ute.Field, "type", ute.Type.String(), "%s must be of type %s", ute.Field, ute.Type)
		}
		return m, dsync.Errorf(dsync.CodeBadRequest, "the message is not a valid JSON object: %v", err)
	}
	if dec.More() {
		return m, dsync.Errorf(dsync.CodeBadRequest, "one JSON message per frame")
	}
	// The same text rule as REST bodies (SPEC §12): the decoder would quietly turn
	// invalid UTF-8 into U+FFFD and keep NUL.
	if dsync.JSONDepth(b) > dsync.MaxJSONDepth {
		return m, dsync.Invalid("", "depth", "", "a message is nested at most %d deep", dsync.MaxJSONDepth)
	}
	if !dsync.ValidJSONText(b) {
		return m, dsync.Invalid("", "text", "", "a message must be valid UTF-8 without the NUL character (\u0000)")
	}
	return m, nil
}

// Channel kinds.
const (
	kindLayout = "layout"
	kindWidget = "widget"
	kindUser   = "user"
)

// The channel names (SPEC §5): the names clients subscribe to, and the names of the
// broker channels their messages travel on (the user channel per owner).
func layoutChannel(id string) string  { return kindLayout + ":" + id }
func widgetChannel(id string) string  { return kindWidget + ":" + id }
func userChannel(owner string) string { return kindUser + ":" + owner }

// parseChannel splits "layout:<id>", "widget:<id>" or "user".
func parseChannel(ch string) (kind, id string, err error) {
	if ch == kindUser {
		return kindUser, "", nil
	}
	k, id, ok := strings.Cut(ch, ":")
	if !ok || (k != kindLayout && k != kindWidget) || id == "" || len(id) > 64 || strings.ContainsAny(id, ": \t\n") || !dsync.ValidText(id) {
		return "", "", dsync.Invalid("channel", "channel", "", "channel must be layout:<id>, widget:<id> or user")
	}
	return k, id, nil
}

// Outbound messages (SPEC §5, §9). Fields are omitted when empty so each type carries
// only its own.
type outbound struct {
	ID        *int64               `json:"id,omitempty"`
	Type      string               `json:"type"`
	Channel   string               `json:"channel,omitempty"`
	Client    string               `json:"client,omitempty"`
	User      string               `json:"user,omitempty"`
	Version   *int64               `json:"version,omitempty"`
	Rebased   *bool                `json:"rebased,omitempty"`
	Snapshot  *dsync.Layout        `json:"snapshot,omitempty"`
	Reset     bool                 `json:"reset,omitempty"`
	Ops       *[]versionOps        `json:"ops,omitempty"`
	Data      *json.RawMessage     `json:"data,omitempty"`
	Presence  any                  `json:"presence,omitempty"`
	Conflicts []dsync.Conflict     `json:"conflicts,omitempty"`
	Error     *wire.Error          `json:"error,omitempty"`
	Exp       string               `json:"exp,omitempty"`
	Event     string               `json:"event,omitempty"`
	Layout    *dsync.LayoutSummary `json:"layout,omitempty"`
	Widget    *dsync.Widget        `json:"widget,omitempty"`
	Dashboard *dsync.Dashboard     `json:"dashboard,omitempty"`
	Counts    *presenceCounts      `json:"counts,omitempty"`
	// Role is the subscriber's role on a layout (`subscribed`, `access`, user events).
	Role string `json:"role,omitempty"`
	// Reason says why the server ended a subscription (`unsubscribed`).
	Reason string `json:"reason,omitempty"`
}

// helloFrame is the first message of a connection: its client id and user, and for a
// link's connection the layout it may read.
type helloFrame struct {
	Type   string `json:"type"`
	Client string `json:"client"`
	User   string `json:"user"`
	Layout string `json:"layout,omitempty"`
}

// versionOps is one committed version in a resume reply.
type versionOps struct {
	Version int64      `json:"version"`
	Ops     []dsync.Op `json:"ops"`
	Author  string     `json:"author"`
	Client  string     `json:"client,omitempty"`
}

type presenceCounts struct {
	Users   int `json:"users"`
	Clients int `json:"clients"`
}

func encode(m any) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// Every outbound type is plain data; failing here is a programming error.
		panic(fmt.Sprintf("hub: encode %T: %v", m, err))
	}
	return b
}

// opFrame is the frame every subscriber of a layout receives for one committed version.
func opFrame(layoutID string, c *dsync.Change) []byte {
	return encode(struct {
		Type    string     `json:"type"`
		Channel string     `json:"channel"`
		Version int64      `json:"version"`
		Ops     []dsync.Op `json:"ops"`
		Author  string     `json:"author"`
		Client  string     `json:"client,omitempty"`
	}{"op", layoutChannel(layoutID), c.Version, c.Ops, c.Author, c.Client})
}

func i64(v int64) *int64 { return &v }
