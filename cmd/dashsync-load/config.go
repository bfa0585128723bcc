package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/dashsync/dashsync/internal/cli"
)

// Bounds on the command line: every run is bounded in time and in size.
const (
	maxDuration = 10 * time.Minute // warmup + duration
	maxDrain    = time.Minute
	maxConns    = 100_000
	maxRate     = 100_000 // edits/s in total
	// maxEditorsPerLayout keeps a layout's items (one shared widget and one per
	// editor) under the server's limit of 200.
	maxEditorsPerLayout = 150
)

// Pacing of each editor's edits.
const (
	pacePoisson = "poisson"
	paceUniform = "uniform"
)

// config is everything the tool reads from its command line and environment.
type config struct {
	URLs        []target
	Secret      []byte
	Conns       int
	Layouts     int
	Users       int
	Editors     int
	Rate        float64 // edits/s over all editors
	Overlap     float64 // fraction of edits on the layout's shared path
	Pace        string  // pacePoisson or paceUniform
	Duration    time.Duration
	Warmup      time.Duration
	Drain       time.Duration
	MaxEdits    int64 // 0: bounded by time only
	PID         int   // 0: no server measurements
	JSON        string
	AllowRemote bool
	UserPrefix  string
	Seed        uint64
	Dialers     int // connections dialled at once
	Progress    time.Duration
	// Shared: every layout is shared with a member (an editor), and its connections
	// are the member's, not the owner's (SPEC §10).
	Shared bool
}

// target is one server: its REST base URL and its WebSocket URL.
type target struct {
	Base string // http(s)://host:port
	WS   string // ws(s)://host:port/api/ws
	Host string // host without port, as written
}

// urlList is a repeatable, comma-separated --url.
type urlList []string

func (u *urlList) String() string { return strings.Join(*u, ",") }

func (u *urlList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*u = append(*u, s)
		}
	}
	return nil
}

// errUsage marks a command line that does not make sense (exit status 2).
var errUsage = cli.ErrUsage

type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Unwrap() error        { return e.err }
func (e usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// parseConfig reads the command line; getenv supplies DASHSYNC_JWT_SECRET when
// --secret is not given. It checks every URL before anything is dialled.
func parseConfig(args []string, stderr io.Writer, getenv func(string) string) (config, error) {
	fs := flag.NewFlagSet("dashsync-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	var urls urlList
	fs.Var(&urls, "url", "server base URL, repeatable or comma-separated; connections are spread round-robin (default http://127.0.0.1:8080)")
	secret := fs.String("secret", "", "the server's JWT secret, to mint tokens (default $DASHSYNC_JWT_SECRET)")
	conns := fs.Int("conns", 100, "WebSocket connections in total (editors included), 1–100000")
	layouts := fs.Int("layouts", 10, "layouts the connections are spread over, 1–conns")
	users := fs.Int("users", 5, "users owning the layouts, 1–layouts")
	editors := fs.Int("editors", 5, "connections that also send edits, 0–conns")
	rate := fs.Float64("rate", 50, "edits per second over all editors, up to 100000")
	overlap := fs.Float64("overlap", 0.3, "fraction of edits on a path every editor of the layout edits (0–1); the rest go to each editor's own widget")
	pace := fs.String("pace", pacePoisson, "how each editor spaces its edits: poisson (random, mean 1/rate per editor) or uniform")
	duration := fs.Duration("duration", 10*time.Second, "how long edits are sent, after the warmup (warmup + duration ≤ 10m)")
	warmup := fs.Duration("warmup", 0, "edits are sent but not measured for this long first")
	drain := fs.Duration("drain", 5*time.Second, "after sending stops, how long to wait for every subscriber to reach the final version (≤ 1m)")
	maxEdits := fs.Int64("max-edits", 0, "stop after this many edits in total (0: bounded by time only)")
	pid := fs.Int("pid", 0, "the server's pid (same machine), for its RSS and CPU seconds from /proc")
	jsonOut := fs.String("json", "", "write the results as JSON to this file (- for stdout; the table then goes to stderr)")
	allowRemote := fs.Bool("allow-remote", false, "allow URLs whose host is not loopback (127.0.0.0/8, ::1, localhost)")
	prefix := fs.String("user-prefix", "load-", "user ids are <prefix>u0, <prefix>u1, …")
	seed := fs.Uint64("seed", 1, "seed of the editors' choices of path and value")
	dialers := fs.Int("dialers", 32, "connections dialled at once, 1–1000")
	progress := fs.Duration("progress", time.Second, "interval of the progress line on stderr (0: none)")
	shared := fs.Bool("shared", false, "share every layout with a member as editor (user <prefix>m<n>) and connect as the member, not the owner")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return config{}, usagef("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if len(urls) == 0 {
		urls = urlList{"http://127.0.0.1:8080"}
	}
	c := config{
		Secret: []byte(*secret), Conns: *conns, Layouts: *layouts, Users: *users, Editors: *editors,
		Rate: *rate, Overlap: *overlap, Pace: *pace, Duration: *duration, Warmup: *warmup, Drain: *drain,
		MaxEdits: *maxEdits, PID: *pid, JSON: *jsonOut, AllowRemote: *allowRemote,
		UserPrefix: *prefix, Seed: *seed, Dialers: *dialers, Progress: *progress, Shared: *shared,
	}
	if len(c.Secret) == 0 {
		c.Secret = []byte(getenv("DASHSYNC_JWT_SECRET"))
	}
	for _, raw := range urls {
		t, err := parseTarget(raw, c.AllowRemote)
		if err != nil {
			return config{}, usageError{err}
		}
		c.URLs = append(c.URLs, t)
	}
	if err := c.validate(); err != nil {
		return config{}, usageError{err}
	}
	return c, nil
}

func (c config) validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(len(c.Secret) > 0, "--secret (or DASHSYNC_JWT_SECRET) is required: tokens are minted with the server's secret")
	check(c.Conns >= 1 && c.Conns <= maxConns, "--conns must be 1–%d", maxConns)
	check(c.Layouts >= 1 && c.Layouts <= c.Conns, "--layouts must be 1–conns (every layout needs a subscriber)")
	check(c.Users >= 1 && c.Users <= c.Layouts, "--users must be 1–layouts (every user owns a layout)")
	check(c.Editors >= 0 && c.Editors <= c.Conns, "--editors must be 0–conns (editors are connections too)")
	if c.Layouts >= 1 {
		check((c.Editors+c.Layouts-1)/c.Layouts <= maxEditorsPerLayout, "at most %d editors per layout", maxEditorsPerLayout)
	}
	check(c.Rate > 0 && c.Rate <= maxRate, "--rate must be > 0 and ≤ %d", maxRate)
	check(c.Overlap >= 0 && c.Overlap <= 1, "--overlap must be 0–1")
	check(c.Pace == pacePoisson || c.Pace == paceUniform, "--pace must be %s or %s", pacePoisson, paceUniform)
	check(c.Duration > 0, "--duration must be > 0")
	check(c.Warmup >= 0, "--warmup must be ≥ 0")
	check(c.Warmup+c.Duration <= maxDuration, "--warmup + --duration must be ≤ %s", maxDuration)
	check(c.Drain >= 0 && c.Drain <= maxDrain, "--drain must be 0–%s", maxDrain)
	check(c.MaxEdits >= 0, "--max-edits must be ≥ 0")
	check(c.PID >= 0, "--pid must be a process id")
	check(c.Dialers >= 1 && c.Dialers <= 1000, "--dialers must be 1–1000")
	check(c.Progress >= 0, "--progress must be ≥ 0")
	check(c.UserPrefix != "" && len(c.UserPrefix) <= 64, "--user-prefix must be 1–64 characters")
	return errors.Join(errs...)
}

// parseTarget reads a base URL (http, https, ws or wss; a path is not allowed) and,
// unless allowRemote, refuses a host that is not loopback. The check is on the text
// alone: nothing is resolved or dialled.
func parseTarget(raw string, allowRemote bool) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("--url %q: %v", raw, err)
	}
	var httpScheme, wsScheme string
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		httpScheme, wsScheme = "http", "ws"
	case "https", "wss":
		httpScheme, wsScheme = "https", "wss"
	default:
		return target{}, fmt.Errorf("--url %q: want http://host:port (or https, ws, wss)", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return target{}, fmt.Errorf("--url %q: want a base URL such as http://127.0.0.1:8080, without path or query", raw)
	}
	host := u.Hostname()
	if !allowRemote && !isLoopback(host) {
		return target{}, fmt.Errorf("--url %q: host %q is not loopback; pass --allow-remote to load a remote server", raw, host)
	}
	return target{Base: httpScheme + "://" + u.Host, WS: wsScheme + "://" + u.Host + "/api/ws", Host: host}, nil
}

// isLoopback reports whether host is localhost or a loopback IP literal.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
