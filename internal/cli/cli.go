// Package cli holds what dashsync's commands (dashsync, dashsync-load) share: the
// usage error and how a command's error ends the process. It imports no other
// dashsync package.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ErrUsage marks a command line that does not make sense (exit status 2).
var ErrUsage = errors.New("usage")

// ExitCode is the process's exit status for a command's error, which it writes to
// stderr after the command's name: 0 for none (or -h), 2 for a usage error, 1 for
// any other.
func ExitCode(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}
