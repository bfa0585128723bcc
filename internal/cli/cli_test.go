package cli_test

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/dashsync/dashsync/internal/cli"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{fmt.Errorf("%w: --conns must be at least 1", cli.ErrUsage), 2, "cmd: usage: --conns must be at least 1\n"},
		{errors.New("listen: address in use"), 1, "cmd: listen: address in use\n"},
	} {
		var b strings.Builder
		if got := cli.ExitCode("cmd", tc.err, &b); got != tc.code || b.String() != tc.stderr {
			t.Errorf("ExitCode(%v) = %d, %q; want %d, %q", tc.err, got, b.String(), tc.code, tc.stderr)
		}
	}
}
