package migrations

import (
	"io/fs"
	"slices"
	"testing"
)

func TestEmbed_BothDialectsHaveTheSameFileNames(t *testing.T) {
	pg, err := fs.Glob(files, "postgres/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	lite, err := fs.Glob(files, "sqlite/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	base := func(paths []string, dir string) []string {
		out := make([]string, 0, len(paths))
		for _, p := range paths {
			out = append(out, p[len(dir)+1:])
		}
		return out
	}
	if a, b := base(pg, "postgres"), base(lite, "sqlite"); len(a) == 0 || !slices.Equal(a, b) {
		t.Errorf("migration files: got postgres %v, sqlite %v; want the same non-empty list", a, b)
	}
}
