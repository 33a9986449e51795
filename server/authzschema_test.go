package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The part of the schema the authorization matrix must cover, as the
// running server describes itself by introspection.

const authzIntrospection = `{ __schema {
  queryType { name } mutationType { name } subscriptionType { name }
  types { name kind fields { name args { name } type { name ofType { name ofType { name ofType { name } } } } } }
} }`

// typeRef is an introspected field type: a named type inside up to three
// wrappers (non-null, list, non-null).
type typeRef struct {
	Name   string   `json:"name"`
	OfType *typeRef `json:"ofType"`
}

// named is the type a field holds once its wrappers are taken off.
func (r *typeRef) named() string {
	for r.Name == "" && r.OfType != nil {
		r = r.OfType
	}
	return r.Name
}

type introspectedSchema struct {
	QueryType        struct{ Name string } `json:"queryType"`
	MutationType     struct{ Name string } `json:"mutationType"`
	SubscriptionType struct{ Name string } `json:"subscriptionType"`
	Types            []struct {
		Name   string              `json:"name"`
		Kind   string              `json:"kind"`
		Fields []introspectedField `json:"fields"`
	} `json:"types"`
}

type introspectedField struct {
	Name string                  `json:"name"`
	Args []struct{ Name string } `json:"args"`
	Type typeRef                 `json:"type"`
}

// introspect asks the server for its schema.
func (s *testServer) introspect(t *testing.T) introspectedSchema {
	t.Helper()
	var out struct {
		Schema introspectedSchema `json:"__schema"`
	}
	s.do(t, "", authzIntrospection, nil, &out)
	return out.Schema
}

// eachField calls fn with every field of the schema's own object types
// (not introspection's), named "Type.field".
func (sc introspectedSchema) eachField(fn func(typeName, key string, f introspectedField)) {
	for _, ty := range sc.Types {
		if ty.Kind != "OBJECT" || strings.HasPrefix(ty.Name, "__") {
			continue
		}
		for _, f := range ty.Fields {
			fn(ty.Name, ty.Name+"."+f.Name, f)
		}
	}
}

// mustCover lists the fields the matrix must have a row for, each with the
// reason: every root field, every field that takes arguments (they reach
// past the object they sit on), and every field of Member (a person).
func (sc introspectedSchema) mustCover() map[string]string {
	roots := map[string]bool{sc.QueryType.Name: true, sc.MutationType.Name: true, sc.SubscriptionType.Name: true}
	out := map[string]string{}
	sc.eachField(func(typeName, key string, f introspectedField) {
		switch {
		case roots[typeName]:
			out[key] = "a root field"
		case len(f.Args) > 0:
			out[key] = "a field that takes arguments"
		case typeName == "Member":
			out[key] = "a field of Member"
		}
	})
	return out
}

// memberPaths lists the fields through which a member is reached: each
// needs rows for the contact details seen through it.
func (sc introspectedSchema) memberPaths() []string {
	var out []string
	sc.eachField(func(_, key string, f introspectedField) {
		if f.Type.named() == "Member" {
			out = append(out, key)
		}
	})
	return out
}

// contactFields are the member's contact details: each has rows of its own
// for every path to a member.
var contactFields = []string{"Member.email", "Member.phone"}

// matrixGaps compares the rows with the schema: the fields that have no
// row, the member paths missing a contact row, and the rows naming a field
// the schema no longer has.
func matrixGaps(sc introspectedSchema, rows []authzRow) []string {
	have := map[string]bool{}
	sc.eachField(func(_, key string, _ introspectedField) { have[key] = true })
	covered := map[string]bool{}
	contact := map[string]bool{}
	var gaps []string
	for _, r := range rows {
		covered[r.field] = true
		if !have[r.field] {
			gaps = append(gaps, fmt.Sprintf("row %q names %s, which the schema does not have", r.name(), r.field))
		}
		if r.via != "" {
			covered[r.via] = true
			contact[r.field+" via "+r.via] = true
			if !have[r.via] {
				gaps = append(gaps, fmt.Sprintf("row %q reaches its member through %s, which the schema does not have", r.name(), r.via))
			}
		}
	}
	for f, why := range sc.mustCover() {
		if !covered[f] {
			gaps = append(gaps, fmt.Sprintf("%s (%s) has no row in the authorization matrix", f, why))
		}
	}
	for _, p := range sc.memberPaths() {
		for _, c := range contactFields {
			if !contact[c+" via "+p] {
				gaps = append(gaps, fmt.Sprintf("%s, which returns a member, has no row for %s seen through it", p, c))
			}
		}
	}
	slices.Sort(gaps)
	return gaps
}

// The matrix's check of itself against the schema, on a schema of three
// types: a field without a row, a member path without its contact rows,
// and a row whose field is gone are each named.
func TestMatrixGapsNameWhatIsMissing(t *testing.T) {
	t.Parallel()
	var sc introspectedSchema
	if err := json.Unmarshal([]byte(`{
	  "queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}, "subscriptionType": {"name": "Subscription"},
	  "types": [
	    {"name": "Query", "kind": "OBJECT", "fields": [
	      {"name": "me", "args": [], "type": {"name": null, "ofType": {"name": "Member"}}},
	      {"name": "line", "args": [{"name": "id"}], "type": {"name": "Line"}}]},
	    {"name": "Line", "kind": "OBJECT", "fields": [
	      {"name": "shifts", "args": [{"name": "first"}], "type": {"name": "String"}},
	      {"name": "captains", "args": [], "type": {"name": null, "ofType": {"name": null, "ofType": {"name": "Member"}}}}]},
	    {"name": "Member", "kind": "OBJECT", "fields": [
	      {"name": "email", "args": [], "type": {"name": "String"}},
	      {"name": "phone", "args": [], "type": {"name": "String"}}]},
	    {"name": "__Type", "kind": "OBJECT", "fields": [{"name": "fields", "args": [{"name": "includeDeprecated"}], "type": {"name": "String"}}]}]}`), &sc); err != nil {
		t.Fatal(err)
	}
	rows := []authzRow{
		{field: "Query.me"},
		{field: "Query.gone"},
		{field: "Member.email", via: "Query.me"},
		{field: "Member.phone", via: "Query.me"},
		{field: "Member.email", via: "Line.captains"},
	}
	want := []string{
		"Line.captains, which returns a member, has no row for Member.phone seen through it",
		"Line.shifts (a field that takes arguments) has no row in the authorization matrix",
		"Query.line (a root field) has no row in the authorization matrix",
		`row "Query.gone" names Query.gone, which the schema does not have`,
	}
	if diff := cmp.Diff(want, matrixGaps(sc, rows)); diff != "" {
		t.Errorf("gaps (-want +got):\n%s", diff)
	}
}
