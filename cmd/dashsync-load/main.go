// Command dashsync-load puts a dashsync server under a bounded WebSocket load and
// checks what every subscriber received.
//
// It creates L layouts over U users through the REST API of the first URL, opens N
// connections spread round-robin over the URLs and over the layouts (each with its
// layout's user's token) and subscribes each to its layout; E of them also send edits
// at R edits/s in total, a fraction --overlap on a path every editor of the layout
// edits, the rest on a path only that editor edits. While it runs it prints a
// progress line on stderr; then it reports connect times, edit→delivery latency,
// deliveries/s, acks, rebases, conflicts, errors by code, and missing, duplicate and
// out-of-order versions per subscriber, with the server's RSS and CPU when given its
// pid, as a table and, with --json, as JSON. See docs/load.md.
//
// Only loopback URLs are accepted unless --allow-remote is given.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dashsync/dashsync/internal/cli"
)

const usageText = `dashsync-load: a bounded WebSocket load against dashsync servers.

Usage:
  dashsync-load --secret S [--url http://127.0.0.1:8080] [--conns N] [--layouts L]
                [--users U] [--editors E] [--rate R] [--overlap F] [--duration D]
                [--pid PID] [--json FILE|-]

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode("dashsync-load", err, os.Stderr))
}

// errCheck marks a run whose delivery check failed: some subscriber missed a
// version, got one twice or out of order, or never reached the final version.
var errCheck = errors.New("delivery check failed")

// run is the whole program: it reads args (and DASHSYNC_JWT_SECRET), writes the
// table to stdout (to stderr when the JSON goes to stdout) and progress to stderr.
// It returns an error wrapping errUsage for a bad command line (nothing is dialled
// then), errCheck when the run completed but the delivery check failed, and any
// other error when there was nothing to report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	r := newRunner(cfg, stderr)
	tl, err := r.execute(ctx)
	if err != nil {
		return err
	}
	rep := r.buildReport(tl)

	table := stdout
	if cfg.JSON == "-" {
		table = stderr
	}
	if err := rep.writeTable(table); err != nil {
		return err
	}
	switch cfg.JSON {
	case "":
	case "-":
		if err := rep.writeJSON(stdout); err != nil {
			return err
		}
	default:
		f, err := os.Create(cfg.JSON)
		if err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		if err := rep.writeJSON(f); err != nil {
			f.Close()
			return fmt.Errorf("--json: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if tl.interrupted {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if msg := rep.failed(); msg != "" {
		return fmt.Errorf("%w: %s", errCheck, msg)
	}
	return nil
}
