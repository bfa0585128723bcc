package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/dashsync/dashsync/internal/cli"
)

const usageText = `dashsync: a real-time sync server for dashboards.

Usage:
  dashsync serve [flags]              run the server
  dashsync migrate [up|status] [flags] apply or list the database migrations
  dashsync token --user U [--ttl 24h]  print a signed token for user U

Every flag is also an environment variable (DASHSYNC_ADDR for --addr, …); a flag
given on the command line wins. "dashsync <command> -h" lists a command's flags.
`

func main() {
	gin.SetMode(gin.ReleaseMode) // process-wide: gin's debug output is for development of gin apps
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(cli.ExitCode("dashsync", err, os.Stderr))
}

// errUsage marks a command line that does not make sense.
var errUsage = cli.ErrUsage

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
func (e usageError) Is(target error) bool {
	return target == errUsage
}

// run is the whole program: it reads the command line and environment (only through
// args and getenv), writes its output to stdout and its logs to stderr, and returns
// when the command is done or, for serve, when ctx is cancelled and the server has
// shut down.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		cfg, err := parseServe(rest, stderr, getenv)
		if err != nil {
			return flagError(err)
		}
		return serve(ctx, cfg, stdout, stderr)
	case "migrate":
		cfg, err := parseMigrate(rest, stderr, getenv)
		if err != nil {
			return flagError(err)
		}
		return migrate(ctx, cfg, stdout)
	case "token":
		cfg, err := parseToken(rest, stderr, getenv)
		if err != nil {
			return flagError(err)
		}
		return token(cfg, stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		fmt.Fprint(stderr, usageText)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err.Error()}
}
