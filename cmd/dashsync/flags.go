package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
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

// byteSize is a flag's number of bytes: a count (268435456) or a count with a unit,
// binary (KiB, MiB, GiB, TiB) or decimal (kB, MB, GB, TB), case aside: 256MiB, 1GiB.
type byteSize int64

// byteUnits are the units byteSize reads, by lower-case name.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// parseBytes reads a byteSize; a minus sign is read too, for the caller to refuse
// with its own message.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	if i < len(t) && (t[i] == '-' || t[i] == '+') {
		i++
	}
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	mult, ok := byteUnits[unit]
	if err != nil || !ok {
		return 0, fmt.Errorf("%q: want a number of bytes such as 268435456, 256MiB or 1GiB", s)
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return n * mult, nil
}

// String shows the size in the largest binary unit that divides it.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// Set implements flag.Value.
func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func (f *flagSet) bytes(name, env string, def int64, text string) *byteSize {
	v := byteSize(def)
	if e := f.getenv(env); env != "" && e != "" {
		if err := v.Set(e); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%v", env, err))
		}
	}
	f.Var(&v, name, usage(text, env))
	return &v
}
