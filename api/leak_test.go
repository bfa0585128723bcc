package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Bounds of TestBadInput_NoLeaks. The goroutine slack allows for the few the runtime
// and the HTTP stack start and stop on their own (a timer's goroutine, an idle
// connection closing); the heap bound allows for what the server keeps on purpose
// after the inputs: the widget data cache (a few KiB per widget), the in-memory widget
// definitions of the embedded store's sole writer and the verified-token cache, for
// the few hundred widgets and users the corpora create; the inputs themselves send
// tens of MiB (1 MiB bodies, long op logs) that must all be released.
const (
	leakGoroutineSlack = 5
	leakHeapBound      = 16 << 20
	leakWait           = 20 * time.Second
)

// TestBadInput_NoLeaks runs every input of the FuzzREST and FuzzWebSocket seed corpora
// (the hostile inputs among them) through one server, closes everything the test
// opened, and then waits, polling, for the goroutine count to come back to its
// baseline (taken once the server is warm) within leakGoroutineSlack, and the heap
// (after a GC) to within leakHeapBound of its baseline. It fails with a goroutine dump
// when they do not. Whether the answers are right is the fuzz targets' to judge: here
// a broken invariant is only logged.
func TestBadInput_NoLeaks(t *testing.T) {
	s := newFzServer(t)
	broken := 0
	record := func(format string, args ...any) {
		broken++
		if broken <= 10 {
			msg := fmt.Sprintf(format, args...)
			if len(msg) > 400 {
				msg = msg[:400] + "…"
			}
			t.Logf("an answer breaks an invariant (FuzzREST and FuzzWebSocket judge it): %s", msg)
		}
	}
	rest := leakCorpus(t, "FuzzREST")
	ws := leakCorpus(t, "FuzzWebSocket")
	run := func(target string, in leakInput) {
		r := s.newRun(t, in.entropy, record)
		if target == "FuzzWebSocket" {
			r.runWS(in.script)
			return
		}
		r.runREST(in.script)
		r.checkStore()
	}

	// Warm up: the paths every input takes (a fixture, REST reads and writes, an http
	// fetch, a WebSocket with subscriptions) have made their pools and caches.
	run("FuzzREST", leakInput{name: "warm", script: "GET /api/dashboard\n---\nGET /api/dashboard/widgets/{WH}?refresh=true\n---\n" +
		"PATCH /api/dashboard/layouts/{L}\n{\"version\":{V},\"ops\":[{\"op\":\"replace\",\"path\":\"/name\",\"value\":\"warm\"}]}"})
	run("FuzzWebSocket", leakInput{name: "warm", script: "WS text\n{\"id\":1,\"type\":\"subscribe\",\"channel\":\"layout:{L}\"}\n---\n" +
		"WS text\n{\"id\":2,\"type\":\"subscribe\",\"channel\":\"widget:{WC}\"}\n---\nWS text\n{\"id\":3,\"type\":\"refresh\",\"channel\":\"widget:{WC}\"}"})
	s.stub.CloseClientConnections()
	baseG, baseHeap := leakSteady()
	t.Logf("baseline: %d goroutines, %d KiB of heap", baseG, baseHeap>>10)

	for _, in := range rest {
		run("FuzzREST", in)
	}
	for _, in := range ws {
		run("FuzzWebSocket", in)
	}
	s.stub.CloseClientConnections() // the http sources' idle keep-alive connections
	t.Logf("ran %d REST and %d WebSocket inputs; %d broke an invariant", len(rest), len(ws), broken)

	g, heap := leakAwait(baseG, baseHeap)
	t.Logf("after: %d goroutines, %d KiB of heap", g, heap>>10)
	if g > baseG+leakGoroutineSlack || heap > baseHeap+leakHeapBound {
		var dump strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("after the inputs and %s: %d goroutines (baseline %d, slack %d), heap %d KiB (baseline %d KiB, bound +%d KiB)\n%s",
			leakWait, g, baseG, leakGoroutineSlack, heap>>10, baseHeap>>10, leakHeapBound>>10, dump.String())
	}
}

// leakMeasure returns the goroutine count and the live heap after a full GC.
func leakMeasure() (int, uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

// leakSteady waits (at most leakWait) for the goroutine count to hold still for half
// a second, and returns the measure then: the baseline.
func leakSteady() (int, uint64) {
	deadline := time.Now().Add(leakWait)
	g, h := leakMeasure()
	for still := 0; still < 5 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		ng, nh := leakMeasure()
		if ng == g {
			still++
		} else {
			still = 0
		}
		g, h = ng, nh
	}
	return g, h
}

// leakAwait polls (at most leakWait) until the goroutines and the heap are back within
// their bounds of the baseline, and returns the last measure.
func leakAwait(baseG int, baseHeap uint64) (int, uint64) {
	deadline := time.Now().Add(leakWait)
	for {
		g, h := leakMeasure()
		if g <= baseG+leakGoroutineSlack && h <= baseHeap+leakHeapBound || time.Now().After(deadline) {
			return g, h
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leakInput is one input of a seed corpus.
type leakInput struct {
	name    string
	script  string
	entropy []byte
}

// leakCorpus reads a target's seed corpus (the "go test fuzz v1" files).
func leakCorpus(t *testing.T, target string) []leakInput {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []leakInput
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 3 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s/%s: not a go test fuzz v1 file of (string, []byte)", target, e.Name())
		}
		in := leakInput{name: e.Name()}
		for i, prefix := range []string{"string(", "[]byte("} {
			lit, ok := strings.CutPrefix(lines[i+1], prefix)
			if !ok || !strings.HasSuffix(lit, ")") {
				t.Fatalf("%s/%s: line %d is not %s…)", target, e.Name(), i+2, prefix)
			}
			v, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			if err != nil {
				t.Fatalf("%s/%s: line %d: %v", target, e.Name(), i+2, err)
			}
			if i == 0 {
				in.script = v
			} else {
				in.entropy = []byte(v)
			}
		}
		out = append(out, in)
	}
	return out
}
