package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEWalkthrough runs the curl walkthrough of README.md as it is written,
// against a real `serve --dev`, and checks the answers it documents: the first edit
// commits version 2, the concurrent one on another field is rebased as version 3, the
// overlapping one is a 409 version_conflict, history pages, restore commits version 4
// with restoredFrom, alice shares it with bob, whose edit commits version 5 authored
// by him, and a link reads it and may not edit it (403). Only the server's address and
// the tokens are the test's own: the README's first two blocks (make run, and getting
// the tokens) are what the test does.
func TestREADMEWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed: the README walkthrough cannot run")
		}
		t.Skip("CURL NOT FOUND: skipping the README walkthrough")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, walk, ok := strings.Cut(string(readme), "## A walkthrough with curl")
	if !ok {
		t.Fatal("README.md has no walkthrough section")
	}
	walk, _, _ = strings.Cut(walk, "\n## ")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(walk, -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d shell blocks in the walkthrough, want the server, token and the edits", len(blocks))
	}
	if !strings.Contains(blocks[0][1], "make run") || !strings.Contains(blocks[1][1], "TOKEN=") || !strings.Contains(blocks[1][1], "BOB=") {
		t.Fatalf("the walkthrough no longer starts with make run and a token:\n%s\n%s", blocks[0][1], blocks[1][1])
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, b := range blocks[2:] {
		script.WriteString(b[1])
		script.WriteString("echo\necho '--- next block'\n")
	}

	data := t.TempDir()
	s := startServe(t, envOf(), "--dev", "--addr", "127.0.0.1:0", "--data-dir", data, "--rate-rest", "0")
	dir := t.TempDir() // the walkthrough writes layout.json where it runs
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	// The README's `dashsync token --dev --user …`, on this server's data dir.
	token := func(user string) string {
		var tok strings.Builder
		if err := run(ctx, []string{"token", "--dev", "--data-dir", data, "--user", user}, &tok, &strings.Builder{}, envOf()); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(tok.String())
	}
	cmd.Env = append(os.Environ(), "TOKEN="+token("alice"), "BOB="+token("bob"), "B="+s.url+"/api/dashboard")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		`"version":1`,                    // the layout from the template
		`"version":2`, `"rebased":false`, // the first edit
		`"version":3`, `"rebased":true`, // the concurrent edit on another field
		`"code":"version_conflict"`, `"reason":"overlap"`, "\n409", // the overlapping edit
		`"next":2`,                        // history, newest first
		`"version":4`, `"restoredFrom":1`, // restore
		`"users":{"bob":"editor"}`, `"version":1`, // shared with bob
		`"name":"Team board"`, `"version":5`, `"author":"bob"`, // bob's edit
		`"name":"Team board"`, `"code":"forbidden"`, "\n403", // the link reads, may not edit
	} {
		i := strings.Index(got, want)
		if i < 0 {
			t.Fatalf("the walkthrough's output lacks %s:\n%s", want, got)
		}
		got = got[i+len(want):] // in the documented order
	}
}
