package cluster_test

// This file tests what SPEC §3 and §4 promise when a backend goes away under a
// running cluster: Redis cut for a few seconds in the middle of a co-editing run loses
// no acknowledged edit and leaves no subscriber with a missing or repeated version
// once it is back; Postgres cut refuses edits as `unavailable` (never acknowledged),
// and once it is back the resent edits commit exactly once. The backends are cut with
// an in-test TCP proxy between the instances and the real servers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dashsync/dashsync/hub"
	"github.com/dashsync/dashsync/internal/tcpproxy"
	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/testmetrics"
	"github.com/dashsync/dashsync/internal/testpg"
	"github.com/dashsync/dashsync/internal/testredis"
	"github.com/dashsync/dashsync/internal/testtab"
	"github.com/dashsync/dashsync/internal/wsclient"
	dsync "github.com/dashsync/dashsync/sync"
)

// cutFor is how long a backend stays cut.
const cutFor = 5 * time.Second

// sweepEvery makes the hubs re-read their layouts often, so catching up after a cut
// takes a fraction of a second.
func sweepEvery(h *hub.Config) { h.SweepInterval = 100 * time.Millisecond }

// readiness answers GET /readyz of s: the status and each check's result.
func readiness(t testing.TB, s *testenv.Server) (int, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	rq, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.HTTP.Client().Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	return resp.StatusCode, body.Checks
}

// awaitReadiness waits until /readyz of every server answers status with the named
// check ok or failed (and every other check ok).
func awaitReadiness(t testing.TB, status int, check string, ok bool, servers ...*testenv.Server) {
	t.Helper()
	want := "failed"
	if ok {
		want = "ok"
	}
	for i, s := range servers {
		eventually(t, fmt.Sprintf("/readyz of instance %d answering %d with %s %s", i, status, check, want), func() bool {
			got, checks := readiness(t, s)
			for name, res := range checks {
				if (name == check && res != want) || (name != check && res != "ok") {
					return false
				}
			}
			return got == status && checks[check] == want
		})
	}
}

func TestFault_RedisCutMidRunLosesNoAcknowledgedEditAndSubscribersCatchUp(t *testing.T) {
	t.Parallel()
	testredis.Require(t)
	proxy, redisURL := tcpproxy.InFrontOf(t, testredis.URL(), "6379")
	c := newCluster(t, clusterOptions{RedisURL: redisURL, Hub: sweepEvery})
	l, ws := seed(t, c.a, 5)
	editors := editorsOn(t, c, l, ws[1:])
	tabs := withWatchers(t, c, l.ID, editors)

	// Redis is cut once cutAt edits are acknowledged. Edits go on meanwhile (Postgres
	// decides, each instance serves its own sockets), but past holdAt they wait for
	// Redis to be back, so the run goes on on both sides of the cut whatever the pace.
	const edits, cutAt, holdAt = 500, 150, 350
	restored := make(chan struct{})
	r := &coedit{shared: ws[0]}
	r.gate = func(ctx context.Context) error {
		if r.acked.Load() < holdAt {
			return nil
		}
		select {
		case <-restored:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		acks   []acked
		runErr error
		done   = make(chan struct{})
	)
	start := time.Now()
	go func() {
		defer close(done)
		acks, runErr = r.runEditors(ctx, editors, edits/len(editors))
	}()
	// Whatever happens, the editors stop before the test's cleanup closes their sockets.
	defer func() {
		cancel()
		<-done
	}()
	eventually(t, fmt.Sprintf("%d acknowledged edits before the cut", cutAt), func() bool {
		select {
		case <-done:
			t.Fatalf("the editors stopped before the cut: %v", runErr)
		default:
		}
		return r.acked.Load() >= cutAt
	})

	proxy.Cut()
	cutAtTime, ackedAtCut := time.Now(), r.acked.Load()
	awaitReadiness(t, http.StatusServiceUnavailable, "redis", false, c.a, c.b)
	time.Sleep(time.Until(cutAtTime.Add(cutFor))) // the fault's duration, not a wait for a result
	ackedInCut := r.acked.Load() - ackedAtCut
	proxy.Restore()
	close(restored)
	awaitReadiness(t, http.StatusOK, "redis", true, c.a, c.b)

	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("the editors did not finish within %v of Redis coming back: %d of %d edits acknowledged", waitLimit, r.acked.Load(), edits)
	}
	if runErr != nil {
		t.Fatal(runErr)
	}
	checkRun(t, c, l.ID, 1+edits, acks, tabs)

	t.Logf("Redis cut for %v after %d acknowledged edits in %v; %d more acknowledged during the cut",
		cutFor, ackedAtCut, cutAtTime.Sub(start).Round(time.Millisecond), ackedInCut)
	if ackedInCut == 0 {
		t.Errorf("no edit was acknowledged while Redis was cut: with Postgres up, each instance must go on serving its own sockets")
	}
	// The cut broke each broker's subscription connection: each reported the loss
	// once it was back, so its hub re-read the layouts at once.
	for i, s := range []*testenv.Server{c.a, c.b} {
		eventually(t, fmt.Sprintf("instance %d's broker reporting the loss", i), func() bool {
			return testmetrics.Value(t, s, "dashsync_broker_losses_total") >= 1
		})
	}
}

// cutEdit is an edit sent while Postgres was cut.
type cutEdit struct {
	via    *testtab.Tab
	base   int64
	editID string
	ops    []dsync.Op
}

func TestFault_PostgresCutRefusesEditsAndTheirResendsCommitOnce(t *testing.T) {
	t.Parallel()
	proxy, dbURL := tcpproxy.InFrontOf(t, testpg.NewDatabase(t), "5432")
	c := newCluster(t, clusterOptions{DatabaseURL: dbURL, Hub: sweepEvery})
	l, ws := seed(t, c.a, 3)
	editors := editorsOn(t, c, l, ws[1:])
	tabs := withWatchers(t, c, l.ID, editors)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Before the cut: an ordinary co-editing run.
	r := &coedit{shared: ws[0]}
	acks, err := r.runEditors(ctx, editors, 20)
	if err != nil {
		t.Fatal(err)
	}
	head := int64(1 + 20*len(editors))
	for _, tb := range tabs {
		tb.WaitVersion(t, head)
	}

	proxy.Cut()
	cutAtTime := time.Now()
	awaitReadiness(t, http.StatusServiceUnavailable, "store", false, c.a, c.b)

	// Every edit sent during the cut is refused as unavailable, or left unanswered
	// for now; none is acknowledged. Each adds a settings key of its own, so once
	// Postgres is back they commit in any order, rebased, never in conflict.
	var sent []cutEdit
	unanswered := map[int64]string{} // request id → editId, for replies that come later
	for i, e := range editors {
		for j := range 5 {
			ce := cutEdit{via: e.Tab, base: head, editID: uuid.NewString(),
				ops: []dsync.Op{jsonOp("add", fmt.Sprintf("/settings/cut-%d-%d", i, j), j)}}
			sent = append(sent, ce)
			msg := map[string]any{"type": "edit", "channel": ce.via.Channel, "base": ce.base, "editId": ce.editID, "ops": ce.ops}
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			m, err := ce.via.Conn.Request(rctx, msg)
			rcancel()
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				unanswered[msg["id"].(int64)] = ce.editID
			case err != nil:
				t.Fatalf("%s: edit during the cut: %v", ce.via.Name, err)
			case m.Type != "error" || m.Error == nil || m.Error.Code != string(dsync.CodeUnavailable):
				t.Fatalf("%s: edit during the cut: got %s, want an error with code %s", ce.via.Name, m.Raw, dsync.CodeUnavailable)
			}
		}
	}
	// A REST write is refused the same way.
	restID := uuid.NewString()
	restOps := []dsync.Op{jsonOp("add", "/settings/cut-rest", true)}
	patch := map[string]any{"version": head, "ops": restOps, "editId": restID}
	status, body := rest(t, c.b, http.MethodPatch, "/api/dashboard/layouts/"+l.ID, patch)
	var refusal struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if status != http.StatusServiceUnavailable || json.Unmarshal(body, &refusal) != nil || refusal.Error.Code != string(dsync.CodeUnavailable) {
		t.Fatalf("PATCH on B during the cut: got %d %s, want 503 %s", status, body, dsync.CodeUnavailable)
	}
	// So is a subscribe, and the connection stays usable.
	late := c.a.Dial(t, owner, nil)
	if m := req(t, late, map[string]any{"type": "subscribe", "channel": "layout:" + l.ID}); m.Type != "error" || m.Error == nil || m.Error.Code != string(dsync.CodeUnavailable) {
		t.Fatalf("subscribe during the cut: got %s, want an error with code %s", m.Raw, dsync.CodeUnavailable)
	}

	time.Sleep(time.Until(cutAtTime.Add(cutFor))) // the fault's duration, not a wait for a result
	proxy.Restore()
	awaitReadiness(t, http.StatusOK, "store", true, c.a, c.b)

	// Once Postgres is back, each edit is resent with its editId until acknowledged
	// (the pools may still hand out a connection the cut broke), then once more: the
	// second resend gets the same acknowledgement.
	resend := func(t *testing.T, ce cutEdit) wsclient.Msg {
		t.Helper()
		var m wsclient.Msg
		eventually(t, ce.via.Name+" resending edit "+ce.editID+" until acknowledged", func() bool {
			var err error
			m, err = ce.via.Edit(ctx, ce.base, ce.editID, ce.ops)
			if err != nil {
				t.Fatalf("%s: resend: %v", ce.via.Name, err)
			}
			if m.Type == "error" && m.Error != nil && m.Error.Code == string(dsync.CodeUnavailable) {
				return false
			}
			if m.Type != "ack" || m.Version <= ce.base {
				t.Fatalf("%s: resend of %s on base %d: got %s, want an ack of a version after the base", ce.via.Name, ce.editID, ce.base, m.Raw)
			}
			return true
		})
		return m
	}
	last := head
	for _, ce := range sent {
		first := resend(t, ce)
		if again := resend(t, ce); again.Version != first.Version || again.Rebased != first.Rebased {
			t.Errorf("%s: second resend of %s: got %s, want the first ack %s", ce.via.Name, ce.editID, again.Raw, first.Raw)
		}
		acks = append(acks, acked{EditID: ce.editID, Version: first.Version, Ops: ce.ops})
		last = max(last, first.Version)
	}
	var restVersion int64
	for range 2 {
		eventually(t, "the PATCH resent with its editId acknowledged", func() bool {
			status, body := rest(t, c.a, http.MethodPatch, "/api/dashboard/layouts/"+l.ID, patch)
			if status == http.StatusServiceUnavailable {
				return false
			}
			var got struct {
				Version int64 `json:"version"`
			}
			if status != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Version <= head || (restVersion != 0 && got.Version != restVersion) {
				t.Fatalf("PATCH resent on A: got %d %s, want 200 with one version after %d each time", status, body, head)
			}
			restVersion = got.Version
			return true
		})
	}
	acks = append(acks, acked{EditID: restID, Version: restVersion, Ops: restOps})
	last = max(last, restVersion)
	if want := head + int64(len(sent)) + 1; last != want {
		t.Errorf("after the resends: got version %d, want %d (each edit refused during the cut committed once)", last, want)
	}
	checkRun(t, c, l.ID, last, acks, tabs)

	// A reply that came after the request gave up may only acknowledge what the op
	// log has.
	log, err := c.a.Store.LayoutChanges(context.Background(), l.ID, 0, last)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tabs {
		for _, m := range tb.Late() {
			id, ok := unanswered[*m.ID]
			if !ok || (m.Type == "ack" && (m.Version < 1 || m.Version > last || log[m.Version-1].EditID != id)) {
				t.Errorf("%s: late reply %s: it acknowledges what the op log does not have", tb.Name, m.Raw)
			}
		}
	}
	t.Logf("Postgres cut for %v: %d WebSocket edits refused (%d left unanswered) and a PATCH; all committed once after", cutFor, len(sent), len(unanswered))
}
