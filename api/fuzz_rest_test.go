package api_test

import "testing"

// FuzzREST drives the real router in-process (ServeHTTP on a recorder) with scripts of
// requests: every route template, methods, ids (the user's own, another user's, random,
// NUL and invalid UTF-8, huge version numbers), query strings, tokens (user A, user B,
// a link made in the run, expired, garbage, none), Content-Type and If-Match/If-None-Match headers, and bodies
// (as written in the script, or structured JSON generated from the entropy: layouts,
// widgets with sources, edits with ops, huge numbers, fractions, exponents, NUL escapes,
// invalid UTF-8, deep nesting, raw bytes). Every answer must pass checkAnswer (no 500,
// the §4 error body, the §12 bounds) and, after each input, the store checkStore. The
// server is built once and shared; each input gets two fresh users with a fixture.
func FuzzREST(f *testing.F) {
	s := newFzServer(f)
	fzQuickMinimize()
	f.Fuzz(func(t *testing.T, script string, entropy []byte) {
		r := s.newRun(t, entropy, t.Fatalf)
		r.runREST(script)
		r.checkStore()
	})
}
