package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dashsync/dashsync/internal/testenv"
	"github.com/dashsync/dashsync/internal/wsclient"
	"github.com/dashsync/dashsync/store/memory"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// runJSON runs the tool with args plus --json - and returns its report.
func runJSON(t *testing.T, args ...string) (report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, append(args, "--json", "-"), &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("the JSON output does not decode: %v\n%s", err, stdout.String())
	}
	return rep, stderr.String()
}

func TestRun_EverySubscriberGetsEveryCommittedVersionOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                                  string
		servers                               int // instances sharing one store and one broker bus
		conns, layouts, users, editors, rate  int
		overlap                               string
		wantConflictsPossible, wantServerInfo bool
		shared                                bool
	}{
		{name: "one editor per layout", servers: 1, conns: 20, layouts: 2, users: 2, editors: 2, rate: 20, overlap: "0.5", wantServerInfo: true},
		{name: "two editors per layout on overlapping paths", servers: 1, conns: 20, layouts: 2, users: 2, editors: 4, rate: 40, overlap: "0.8", wantConflictsPossible: true},
		{name: "two instances", servers: 2, conns: 20, layouts: 2, users: 2, editors: 4, rate: 40, overlap: "0.5", wantConflictsPossible: true},
		{name: "shared layouts, members connect and edit", servers: 1, conns: 20, layouts: 2, users: 2, editors: 4, rate: 40, overlap: "0.5", wantConflictsPossible: true, shared: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bus := memory.NewBus()
			first := testenv.New(t, testenv.Options{Broker: bus.Broker()})
			urls := []string{first.URL}
			for range tc.servers - 1 {
				urls = append(urls, testenv.New(t, testenv.Options{Store: first.Store, Broker: bus.Broker()}).URL)
			}
			args := []string{"--url", strings.Join(urls, ","), "--secret", string(testenv.Secret),
				"--conns", strconv.Itoa(tc.conns), "--layouts", strconv.Itoa(tc.layouts), "--users", strconv.Itoa(tc.users),
				"--editors", strconv.Itoa(tc.editors), "--rate", strconv.Itoa(tc.rate), "--overlap", tc.overlap,
				"--duration", "2s", "--drain", "10s"}
			if tc.shared {
				args = append(args, "--shared")
			}
			if tc.wantServerInfo {
				// The server runs in this process.
				args = append(args, "--pid", strconv.Itoa(os.Getpid()))
			}
			rep, stderr := runJSON(t, args...)

			if rep.Connect.OK != int64(tc.conns) || rep.Connect.Failed != 0 {
				t.Errorf("connected %d, failed %d; want %d, 0", rep.Connect.OK, rep.Connect.Failed, tc.conns)
			}
			for _, u := range rep.Connect.ByURL {
				if want := int64(tc.conns / tc.servers); u.OK != want {
					t.Errorf("%d connections to %s; want %d (round-robin)", u.OK, u.URL, want)
				}
			}
			o := rep.Ordering
			if o.Subscribers != tc.conns || o.Missing != 0 || o.Duplicates != 0 || o.OutOfOrder != 0 || o.Resets != 0 || o.Behind != 0 {
				t.Errorf("ordering = %+v; want %d subscribers and nothing missing, duplicated, out of order, reset or behind", o, tc.conns)
			}
			e := rep.Edits
			if e.Acked == 0 {
				t.Fatalf("no edit was acknowledged: %+v\nstderr:\n%s", e, stderr)
			}
			// Every edit changes a value, so every ack is a new version and every
			// version was acked.
			if e.Committed != e.Acked || e.UnackedCommits != 0 || e.AckDuplicates != 0 || e.AckMismatches != 0 {
				t.Errorf("committed %d, acked %d, unacked %d, acked twice %d, author mismatches %d; want committed = acked and no anomalies",
					e.Committed, e.Acked, e.UnackedCommits, e.AckDuplicates, e.AckMismatches)
			}
			if got := e.Acked + e.Conflicts + rep.ErrorsTotal; got != e.Sent {
				t.Errorf("acked + conflicts + errors = %d, sent %d; want every edit answered", got, e.Sent)
			}
			if rep.ErrorsTotal != 0 {
				t.Errorf("errors = %v; want none", rep.Errors)
			}
			// A lone editor sends on the head it has seen, unless its view stalled.
			if !tc.wantConflictsPossible && e.Stalls == 0 && (e.Conflicts != 0 || e.Rebased != 0) {
				t.Errorf("conflicts %d, rebased %d with one editor per layout; want 0, 0", e.Conflicts, e.Rebased)
			}
			// Everyone subscribed before the first edit: each of a layout's
			// subscribers gets each of its committed versions exactly once.
			perLayout := int64(tc.conns / tc.layouts)
			d := rep.Deliveries
			if d.Total != e.Committed*perLayout || d.Expected != d.Total {
				t.Errorf("deliveries %d, expected %d; want committed %d × %d subscribers per layout = %d",
					d.Total, d.Expected, e.Committed, perLayout, e.Committed*perLayout)
			}
			if !d.Drained || d.Unresolved != 0 {
				t.Errorf("drained %v, unresolved %d; want true, 0", d.Drained, d.Unresolved)
			}
			if rep.Latency.Samples != d.Total || rep.Latency.P50 <= 0 || rep.Latency.P99 < rep.Latency.P50 || rep.Latency.Max < rep.Latency.P99 {
				t.Errorf("latency = %+v; want one sample per delivery and p50 ≤ p99 ≤ max", rep.Latency)
			}
			if rep.AckLatency.Samples != e.Acked {
				t.Errorf("ack latency samples %d; want one per ack (%d)", rep.AckLatency.Samples, e.Acked)
			}
			if d.PerS <= 0 {
				t.Errorf("deliveries/s = %v; want > 0", d.PerS)
			}
			if tc.wantServerInfo {
				if rep.Server == nil || rep.Server.RSSMaxBytes <= 0 || rep.Server.CPUEditS < 0 {
					t.Errorf("server = %+v; want RSS and CPU of pid %d", rep.Server, os.Getpid())
				}
			} else if rep.Server != nil {
				t.Errorf("server = %+v without --pid; want null", rep.Server)
			}
			if tc.shared {
				// The members made the edits: the owners' histories name them.
				ls, err := first.Service.Layouts(context.Background(), "load-u0", false)
				if err != nil || len(ls) == 0 {
					t.Fatalf("layouts of load-u0 = %v, %v", ls, err)
				}
				cs, _, err := first.Service.History(context.Background(), "load-u0", ls[0].ID, 0, 1)
				if err != nil || len(cs) != 1 || cs[0].Author != "load-m0" {
					t.Errorf("newest change of load-u0's layout = %+v, %v; want one authored by the member load-m0", cs, err)
				}
			}
			if !strings.Contains(stderr, "deliveries") || !strings.Contains(stderr, "ordering") {
				t.Errorf("stderr lacks the progress line or the table:\n%s", stderr)
			}
		})
	}
}

func TestRun_MaxEditsBoundsTheRun(t *testing.T) {
	t.Parallel()
	s := testenv.New(t, testenv.Options{})
	rep, _ := runJSON(t, "--url", s.URL, "--secret", string(testenv.Secret), "--conns", "4", "--layouts", "2",
		"--users", "1", "--editors", "2", "--rate", "200", "--duration", "5s", "--max-edits", "7", "--progress", "0")
	if rep.Edits.Sent != 7 {
		t.Errorf("sent %d edits; want --max-edits 7", rep.Edits.Sent)
	}
	if rep.Ordering.Missing != 0 || rep.Ordering.Duplicates != 0 || rep.Deliveries.Total != rep.Edits.Committed*2 {
		t.Errorf("ordering %+v, deliveries %d, committed %d; want exact delivery", rep.Ordering, rep.Deliveries.Total, rep.Edits.Committed)
	}
}

func TestRun_WritesTableToStdoutAndJSONToFile(t *testing.T) {
	t.Parallel()
	s := testenv.New(t, testenv.Options{})
	path := t.TempDir() + "/out.json"
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--url", s.URL, "--secret", string(testenv.Secret), "--conns", "3",
		"--layouts", "1", "--users", "1", "--editors", "1", "--rate", "10", "--duration", "500ms", "--json", path,
		"--progress", "0"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"connect", "latency", "deliveries", "ordering", "errors"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, stdout.String())
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatalf("the JSON file does not decode: %v", err)
	}
	for _, k := range []string{"config", "connect", "edits", "latency_ms", "ack_latency_ms", "deliveries", "ordering", "errors", "errors_total", "server", "client", "interrupted"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("the JSON lacks %q", k)
		}
	}
}

func TestRun_RefusesNonLoopbackURLWithoutDialling(t *testing.T) {
	t.Parallel()
	s := testenv.New(t, testenv.Options{})
	cases := map[string][]string{
		"a public IP":                        {"--url", "http://192.0.2.1:8080"},
		"a host name":                        {"--url", "https://dashsync.example.com"},
		"a remote URL after a loopback one":  {"--url", s.URL + ",http://10.1.2.3:8080"},
		"a repeated --url with a remote one": {"--url", s.URL, "--url", "ws://[2001:db8::1]:8080"},
		"the unspecified address":            {"--url", "http://0.0.0.0:8080"},
		"a name that starts with localhost":  {"--url", "http://localhost.example.com:8080"},
	}
	for name, urlArgs := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--secret", string(testenv.Secret), "--conns", "2", "--layouts", "1", "--users", "1", "--editors", "1", "--duration", "1s"}, urlArgs...)
			// The command line is refused before anything is built, so nothing can be
			// dialled: and should it not be, the test stops here, before run would send
			// anything to an address outside loopback.
			env := func(string) string { return "" }
			if _, err := parseConfig(args, io.Discard, env); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--allow-remote") {
				t.Fatalf("parseConfig = %v; want a usage error naming --allow-remote", err)
			}
			err := run(context.Background(), args, io.Discard, io.Discard)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--allow-remote") {
				t.Fatalf("run = %v; want a usage error naming --allow-remote", err)
			}
		})
	}
	// Nothing reached the loopback server either: no connection, no layout.
	if n := s.Hub.Connections(""); n != 0 {
		t.Errorf("the server saw %d connections; want 0", n)
	}
	ls, err := s.Service.Layouts(context.Background(), "load-u0", false)
	if err != nil || len(ls) != 0 {
		t.Errorf("layouts of load-u0 = %v, %v; want none", ls, err)
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	base := []string{"--secret", "s3cret"}
	noEnv := func(string) string { return "" }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "defaults", args: base},
		{name: "secret from the environment", args: nil, env: map[string]string{"DASHSYNC_JWT_SECRET": "x"}},
		{name: "no secret", args: nil, wantErr: "--secret"},
		{name: "loopback forms", args: append([]string{"--url", "http://127.0.0.1:1,ws://localhost:2,http://[::1]:3,http://127.9.9.9:4,HTTP://LOCALHOST:5"}, base...)},
		{name: "remote allowed", args: append([]string{"--allow-remote", "--url", "https://dashsync.example.com"}, base...)},
		{name: "a path", args: append([]string{"--url", "http://127.0.0.1:8080/api"}, base...), wantErr: "without path"},
		{name: "another scheme", args: append([]string{"--url", "ftp://127.0.0.1"}, base...), wantErr: "want http"},
		{name: "zero conns", args: append([]string{"--conns", "0"}, base...), wantErr: "--conns"},
		{name: "more layouts than conns", args: append([]string{"--conns", "2", "--layouts", "3", "--users", "1", "--editors", "1"}, base...), wantErr: "--layouts"},
		{name: "more users than layouts", args: append([]string{"--layouts", "2", "--users", "3"}, base...), wantErr: "--users"},
		{name: "more editors than conns", args: append([]string{"--conns", "10", "--layouts", "2", "--users", "1", "--editors", "11"}, base...), wantErr: "--editors"},
		{name: "overlap above 1", args: append([]string{"--overlap", "1.5"}, base...), wantErr: "--overlap"},
		{name: "zero rate", args: append([]string{"--rate", "0"}, base...), wantErr: "--rate"},
		{name: "too long", args: append([]string{"--duration", "9m", "--warmup", "2m"}, base...), wantErr: "10m"},
		{name: "negative max edits", args: append([]string{"--max-edits", "-1"}, base...), wantErr: "--max-edits"},
		{name: "too many editors per layout", args: append([]string{"--conns", "400", "--layouts", "1", "--users", "1", "--editors", "151"}, base...), wantErr: "editors per layout"},
		{name: "stray argument", args: append([]string{"now"}, base...), wantErr: "unexpected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := noEnv
			if tc.env != nil {
				getenv = func(k string) string { return tc.env[k] }
			}
			_, err := parseConfig(tc.args, io.Discard, getenv)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("parseConfig = %v; want no error", err)
			case tc.wantErr != "" && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("parseConfig = %v; want a usage error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestSubscriber_CountsGapsDuplicatesAndResets(t *testing.T) {
	t.Parallel()
	op := func(v int64) wsclient.Msg {
		return wsclient.Msg{Type: "op", Channel: "layout:L", Version: v, At: time.Now(), Ops: json.RawMessage(`[]`)}
	}
	type want struct{ missing, dups, outOfOrder, resets int64 }
	tests := []struct {
		name  string
		msgs  []wsclient.Msg
		final int64
		want  want
	}{
		{name: "in order", msgs: []wsclient.Msg{op(2), op(3), op(4)}, final: 4},
		{name: "a duplicate", msgs: []wsclient.Msg{op(2), op(3), op(3), op(4)}, final: 4, want: want{dups: 1}},
		{name: "a gap", msgs: []wsclient.Msg{op(2), op(5)}, final: 5, want: want{missing: 2}},
		{name: "a gap filled late", msgs: []wsclient.Msg{op(2), op(5), op(4), op(3)}, final: 5, want: want{outOfOrder: 2}},
		{name: "a gap filled in its middle", msgs: []wsclient.Msg{op(2), op(6), op(4)}, final: 6, want: want{missing: 2, outOfOrder: 1}},
		{name: "short of the final version", msgs: []wsclient.Msg{op(2)}, final: 4, want: want{missing: 2}},
		{name: "a reset snapshot restarts the count", msgs: []wsclient.Msg{op(2), op(5),
			{Type: "snapshot", Channel: "layout:L", Version: 7, Reset: true, Snapshot: json.RawMessage(`{}`)}, op(8)}, final: 8, want: want{resets: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRunner(config{URLs: []target{{Base: "http://127.0.0.1:1"}}}, io.Discard)
			r.measureStart.Store(0)
			s := &subscriber{layout: &layoutPlan{ID: "L"}, run: r}
			s.onSubscribed(wsclient.Msg{Type: "subscribed", Version: 1})
			for _, m := range tc.msgs {
				s.onMessage(m)
			}
			got := want{s.missing(tc.final), s.dups, s.outOfOrder, s.resets}
			if got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}
