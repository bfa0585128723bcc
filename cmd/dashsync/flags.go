package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// flagSet is a flag.FlagSet whose every flag also reads an environment variable: the
// variable sets the default, so a flag on the command line wins over it.
type flagSet struct {
	*flag.FlagSet
	getenv func(string) string
	errs   []error
}

func newFlagSet(name string, stderr io.Writer, getenv func(string) string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &flagSet{FlagSet: fs, getenv: getenv}
}

func usage(text, env string) string {
	if env == "" {
		return text
	}
	return text + " (env " + env + ")"
}

func (f *flagSet) string(name, env, def, text string) *string {
	if v := f.getenv(env); env != "" && v != "" {
		def = v
	}
	return f.String(name, def, usage(text, env))
}

func (f *flagSet) bool(name, env string, def bool, text string) *bool {
	if v := f.getenv(env); env != "" && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want true or false", env, v))
		}
		def = b
	}
	return f.Bool(name, def, usage(text, env))
}

func (f *flagSet) float(name, env string, def float64, text string) *float64 {
	if v := f.getenv(env); env != "" && v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0 {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want a number ≥ 0", env, v))
		}
		def = n
	}
	return f.Float64(name, def, usage(text, env))
}

func (f *flagSet) int(name, env string, def int, text string) *int {
	if v := f.getenv(env); env != "" && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want an integer ≥ 0", env, v))
		}
		def = n
	}
	return f.Int(name, def, usage(text, env))
}

func (f *flagSet) duration(name, env string, def time.Duration, text string) *time.Duration {
	if v := f.getenv(env); env != "" && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: want a duration such as 24h", env, v))
		}
		def = d
	}
	return f.Duration(name, def, usage(text, env))
}

// parse parses args; errors in the environment come first, so a bad variable is
// reported even when a flag would override it.
func (f *flagSet) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	if len(f.errs) > 0 {
		return errors.Join(f.errs...)
	}
	if f.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments: %s", f.Name(), strings.Join(f.Args(), " "))
	}
	return nil
}
