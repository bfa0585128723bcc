package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dashsync/dashsync/internal/testenv"
	dsync "github.com/dashsync/dashsync/sync"
)

// TestBounds_WebSocketText: a NUL or invalid UTF-8 in any string of a WebSocket
// message (a channel id, a layout name, an op path) is refused as over REST, with
// validation_failed, and changes nothing (SPEC §12).
func TestBounds_WebSocketText(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := testenv.New(t, testenv.Options{Backend: backend})
		l, _ := seed(t, s, "alice")
		c := s.Dial(t, "alice", nil)
		ch := "layout:" + l.ID
		for i, frame := range []string{
			`"type":"subscribe","channel":"layout:a\u0000b"}`,
			`"type":"edit","channel":"layout:a\u0000b","base":1,"ops":[{"op":"replace","path":"/name","value":"x"}]}`,
			`"type":"edit","channel":"` + ch + `","base":1,"ops":[{"op":"replace","path":"/name","value":"a\u0000b"}]}`,
			`"type":"edit","channel":"` + ch + `","base":1,"ops":[{"op":"add","path":"/settings/\u0000","value":1}]}`,
			"\"type\":\"edit\",\"channel\":\"" + ch + "\",\"base\":1,\"ops\":[{\"op\":\"replace\",\"path\":\"/name\",\"value\":\"a\xffb\"}]}",
			"\"type\":\"subscribe\",\"channel\":\"widget:\xff\"}",
		} {
			id := int64(1<<40 + i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := c.RequestRaw(ctx, id, []byte(fmt.Sprintf(`{"id":%d,`, id)+frame))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if r.Type != "error" || r.Error.Code != "validation_failed" {
				t.Errorf("%q: got %s, want a validation_failed error", frame, r.Raw)
			}
		}
		got, err := s.Service.Layout(context.Background(), "alice", l.ID)
		if err != nil || got.Version != 1 || got.Name != l.Name {
			t.Fatalf("the layout after refused edits: version %d name %q, %v; want version 1 unchanged", got.Version, got.Name, err)
		}
		if r := req(t, c, map[string]any{"type": "ping"}); r.Type != "pong" {
			t.Fatalf("ping after: got %s", r.Raw)
		}
	})
}

// TestBounds_ResumePastOneMiBIsAReset: a resume whose versions hold more than 1 MiB of
// ops answers a snapshot marked reset instead (SPEC §12); a small one still answers
// the ops.
func TestBounds_ResumePastOneMiBIsAReset(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend string) {
		s := testenv.New(t, testenv.Options{Backend: backend})
		l, _ := seed(t, s, "alice")
		pad, _ := json.Marshal(strings.Repeat("x", 6000))
		for i := range 24 {
			var ops []dsync.Op
			for range 10 {
				ops = append(ops, dsync.Op{Op: "add", Path: "/settings/pad", Value: pad}, dsync.Op{Op: "remove", Path: "/settings/pad"})
			}
			ops = append(ops, dsync.Op{Op: "replace", Path: "/name", Value: json.RawMessage(fmt.Sprintf(`"n%d"`, i))})
			if _, _, err := s.Service.EditLayout(context.Background(), "alice", l.ID, dsync.Edit{Base: int64(i + 1), Ops: ops, Author: "alice"}); err != nil {
				t.Fatal(err)
			}
		}
		c := s.Dial(t, "alice", nil)
		r := req(t, c, map[string]any{"type": "subscribe", "channel": "layout:" + l.ID, "since": 0})
		if r.Type != "subscribed" || !r.Reset || len(r.Snapshot) == 0 || len(r.Ops) != 0 || r.Version != 25 {
			t.Fatalf("resume from 0 over %d bytes of ops: got %.300s; want a reset snapshot at version 25", 24*61000, r.Raw)
		}
		if len(r.Raw) > 1<<20 {
			t.Fatalf("the reply is %d bytes", len(r.Raw))
		}
		c2 := s.Dial(t, "alice", nil)
		r = req(t, c2, map[string]any{"type": "subscribe", "channel": "layout:" + l.ID, "since": 22})
		if r.Type != "subscribed" || r.Reset || !strings.Contains(string(r.Ops), `"version":25`) {
			t.Fatalf("resume from 22: got %.300s; want the ops of 23…25", r.Raw)
		}
	})
}
