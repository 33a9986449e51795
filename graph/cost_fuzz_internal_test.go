package graph

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/picketline/picketline/db"
)

// FuzzCost measures any valid operation: its cost stays within the cap
// and is at least its own fields, since every list counts one item at the
// least, and measuring ends however the fragments nest.
func FuzzCost(f *testing.F) {
	for _, seed := range []string{
		`{ me { id name } }`,
		`{ jobActions(first: 3) { edges { node { picketLines(first: 4) { edges { node { shifts(first: 0) { edges { node { id } } } } } } } } } }`,
		`{ a: shift(id: "1") { ...S } } fragment S on Shift { signups { edges { node { id } } } }`,
		`{ myShifts(first: -5) { ...E } } fragment E on SignupConnection { edges { cursor node { shift { picketLine { captains { name } } } } } }`,
		`{ __typename me { __typename } }`,
	} {
		f.Add(seed)
	}
	s := schema()
	bounds := listBounds(db.DefaultLimits)
	f.Fuzz(func(t *testing.T, query string) {
		doc, err := gqlparser.LoadQuery(s, query)
		if err != nil || len(doc.Operations) == 0 {
			return
		}
		for _, op := range doc.Operations {
			m := measure(op, nil, bounds)
			if m.cost < 0 || m.cost > costCap || m.aliases < 0 || m.rootFields < 0 {
				t.Fatalf("%q measures %+v", query, m)
			}
			if own := min(ownFields(op.SelectionSet), costCap); m.cost < own {
				t.Fatalf("%q costs %d, less than its own %d fields", query, m.cost, own)
			}
		}
	})
}

// ownFields counts the fields written in set, inline fragments included
// and named ones not, leaving out introspection, which costs nothing.
func ownFields(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !strings.HasPrefix(s.Name, "__") {
				n += 1 + ownFields(s.SelectionSet)
			}
		case *ast.InlineFragment:
			n += ownFields(s.SelectionSet)
		}
	}
	return n
}
