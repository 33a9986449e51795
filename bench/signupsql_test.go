package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSignupSQLMatchesDB checks that the statements the bare scenario runs
// are still the ones package db runs, by evaluating db's string constants
// from its source.
func TestSignupSQLMatchesDB(t *testing.T) {
	consts := map[string]ast.Expr{}
	fset := token.NewFileSet()
	files, err := filepath.Glob("../db/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no db sources: %v", err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						consts[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	var eval func(ast.Expr) (string, error)
	eval = func(e ast.Expr) (string, error) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				return strconv.Unquote(e.Value)
			}
		case *ast.Ident:
			if v, ok := consts[e.Name]; ok {
				return eval(v)
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				x, err := eval(e.X)
				if err != nil {
					return "", err
				}
				y, err := eval(e.Y)
				return x + y, err
			}
		}
		return "", fmt.Errorf("cannot evaluate %T", e)
	}
	for name, ours := range map[string]string{
		"activeStatuses":        activeStatuses,
		"signupColumns":         signupColumns,
		"lockShiftForSignupSQL": lockShiftForSignupSQL,
		"priorSignupSQL":        priorSignupSQL,
		"insertSignupSQL":       insertSignupSQL,
		"insertLineEventsSQL":   insertLineEventsSQL,
	} {
		expr, ok := consts[name]
		if !ok {
			t.Errorf("package db has no constant %s any more: update bench/signupsql.go and bareSignUp", name)
			continue
		}
		theirs, err := eval(expr)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if theirs != ours {
			t.Errorf("%s differs from package db's: copy it again into bench/signupsql.go (and check bareSignUp)\ndb:\n%s\nbench:\n%s", name, theirs, ours)
		}
	}
}
