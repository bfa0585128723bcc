package main

import (
	"io"
	"testing"
	"time"
)

func TestParseServe_BoundsFlags(t *testing.T) {
	t.Parallel()
	type bounds struct {
		readTimeout time.Duration
		maxConns    int
		cacheBytes  int64
		rateFetch   float64
	}
	defaults := bounds{10 * time.Second, 50, 256 << 20, 20}
	cases := []struct {
		name string
		args []string
		env  []string
		want bounds
	}{
		{"defaults (SPEC §12)", nil, nil, defaults},
		{"flags", []string{"--read-timeout", "2s", "--max-conns-per-user", "3", "--cache-bytes", "1GiB", "--rate-fetch", "2.5"}, nil,
			bounds{2 * time.Second, 3, 1 << 30, 2.5}},
		{"environment", nil, []string{"DASHSYNC_READ_TIMEOUT", "1m", "DASHSYNC_MAX_CONNS_PER_USER", "0", "DASHSYNC_CACHE_BYTES", "64MiB", "DASHSYNC_RATE_FETCH", "0"},
			bounds{time.Minute, 0, 64 << 20, 0}},
		{"flags win over the environment", []string{"--cache-bytes", "1048576", "--max-conns-per-user", "7"},
			[]string{"DASHSYNC_CACHE_BYTES", "1GiB", "DASHSYNC_MAX_CONNS_PER_USER", "9"}, bounds{10 * time.Second, 7, 1 << 20, 20}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServe(tc.args, io.Discard, envOf(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			if got := (bounds{c.ReadTimeout, c.MaxConnsPerUser, c.CacheBytes, c.RateFetch}); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseBytes_CountsAndUnits(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"268435456": 268435456, "256MiB": 256 << 20, "256mib": 256 << 20, "1GiB": 1 << 30, "1 GiB": 1 << 30,
		"512KiB": 512 << 10, "2TiB": 2 << 40, "500kB": 500_000, "500KB": 500_000, "3MB": 3_000_000, "1GB": 1e9,
		"42B": 42, "-1MiB": -(1 << 20),
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q): got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "256M", "12XB", "lots", "9000000TiB", "1e9"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q): got %d, want an error", in, got)
		}
	}
}

func TestParseServe_CommitFlags(t *testing.T) {
	t.Parallel()
	type commit struct {
		pool, lanes int
		window      time.Duration
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want commit
	}{
		{"defaults", nil, nil, commit{10, 2, 0}},
		{"flags", []string{"--db-pool-size", "32", "--commit-lanes", "4", "--commit-window", "2ms"}, nil, commit{32, 4, 2 * time.Millisecond}},
		{"environment", nil, []string{"DASHSYNC_DB_POOL_SIZE", "3", "DASHSYNC_COMMIT_LANES", "1", "DASHSYNC_COMMIT_WINDOW", "500us"},
			commit{3, 1, 500 * time.Microsecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServe(tc.args, io.Discard, envOf(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			if got := (commit{c.PoolSize, c.CommitLanes, c.CommitWindow}); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, args := range [][]string{
		{"--db-pool-size", "0"}, {"--commit-lanes", "0"}, {"--commit-lanes", "65"},
		{"--commit-window", "-1ms"}, {"--commit-window", "2s"},
	} {
		if _, err := parseServe(args, io.Discard, envOf()); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
