package wire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	dsync "github.com/dashsync/dashsync/sync"
)

// TestErrorTable_CoversEveryCode guards the table against a code added to the domain
// and forgotten here: the codes are read from the domain's source, every constant of
// type Code, so a new one is seen without touching this test.
func TestErrorTable_CoversEveryCode(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	names, err := filepath.Glob("../sync/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var codes []dsync.Code
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok {
						t.Fatalf("a Code constant that is not a literal: %v", v)
					}
					s, _ := strconv.Unquote(lit.Value)
					codes = append(codes, dsync.Code(s))
				}
			}
		}
	}
	if len(codes) < 14 {
		t.Fatalf("found %d codes in ../sync, want at least the 14 of SPEC §4 and §12: %v", len(codes), codes)
	}
	for _, code := range codes {
		if _, ok := table[code]; !ok {
			t.Errorf("no row for %s", code)
		}
	}
	if Status(dsync.CodeValidation) != http.StatusBadRequest {
		t.Errorf("validation_failed is not 400")
	}
}
