package graph

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/picketline/picketline/db"
)

func schema() *ast.Schema { return NewExecutableSchema(Config{}).Schema() }

// TestEveryListFieldHasABound fails when a list field is added without a
// bound, which would count it as refused-on-sight large.
func TestEveryListFieldHasABound(t *testing.T) {
	for _, typ := range schema().Types {
		if typ.Kind != ast.Object || strings.HasPrefix(typ.Name, "__") {
			continue
		}
		for _, f := range typ.Fields {
			key := typ.Name + "." + f.Name
			if f.Arguments.ForName("first") != nil {
				if _, ok := connections[key]; !ok {
					t.Errorf("%s pages with first but is not in connections", key)
				}
			}
			if f.Type.Elem == nil || strings.HasSuffix(key, "Connection.edges") {
				continue
			}
			if _, ok := listBounds(db.DefaultLimits)[key]; !ok {
				t.Errorf("list field %s has no bound in listBounds", key)
			}
		}
	}
	bounds := listBounds(db.DefaultLimits)
	if kinds := len(schema().Types["NotificationKind"].EnumValues); bounds["NotificationPreferences.enabled"] != kinds {
		t.Errorf("NotificationPreferences.enabled is bound at %d, but there are %d kinds", bounds["NotificationPreferences.enabled"], kinds)
	}
	for key := range bounds {
		typ, field, _ := strings.Cut(key, ".")
		if def := schema().Types[typ]; def == nil || def.Fields.ForName(field) == nil {
			t.Errorf("listBounds names %s, which the schema does not have", key)
		}
	}
	for key := range connections {
		typ, field, _ := strings.Cut(key, ".")
		if def := schema().Types[typ]; def == nil || def.Fields.ForName(field) == nil || def.Fields.ForName(field).Arguments.ForName("first") == nil {
			t.Errorf("connections names %s, which the schema does not page with first", key)
		}
	}
}

// A list bounded by a configured cap counts at the cap the store was
// given, never at a constant that could be smaller.
func TestConfiguredBoundsCountAtTheirConfiguredValue(t *testing.T) {
	doc, err := gqlparser.LoadQuery(schema(), `{ myDevices { token } }`)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 10, 250} {
		l := db.DefaultLimits
		l.DevicesPerMember = n
		if got, want := measure(doc.Operations[0], nil, listBounds(l)).cost, 1+n; got != want {
			t.Errorf("with %d devices per member, myDevices costs %d, want %d", n, got, want)
		}
	}
}

func TestCost(t *testing.T) {
	for _, c := range []struct {
		name  string
		query string
		vars  map[string]any
		want  measured
	}{
		{"scalars", `{ me { id name } }`, nil, measured{cost: 3, rootFields: 1}},
		{"a list times its bound", `{ picketLine(id: "1") { captains { id name } } }`, nil, measured{cost: 1 + 1 + 50*2, rootFields: 1}},
		{"nested lists multiply", `{ jobActions(first: 3) { edges { node { picketLines(first: 4) { edges { node { shifts(first: 5) { edges { node { id } } } } } } } } } }`, nil,
			measured{cost: 1 + (1 + 3*(1+(1+(1+4*(1+(1+(1+5*(1+1)))))))), rootFields: 1}},
		{"a list of scalars", `{ myNotificationPreferences { enabled } }`, nil, measured{cost: 1 + 1 + 6, rootFields: 1}},
		{"the default page", `{ openShifts { edges { node { id } } pageInfo { hasNextPage } } }`, nil,
			measured{cost: 1 + (1 + 20*(1+1)) + (1 + 1), rootFields: 1}},
		{"first", `{ openShifts(first: 7) { edges { cursor } } }`, nil, measured{cost: 1 + 1 + 7, rootFields: 1}},
		{"first from a variable", `query($n: Int) { openShifts(first: $n) { edges { cursor } } }`, map[string]any{"n": int64(50)},
			measured{cost: 1 + 1 + 50, rootFields: 1}},
		{"first past the largest page counts the largest", `{ openShifts(first: 1000000) { edges { cursor } } }`, nil,
			measured{cost: 1 + 1 + 100, rootFields: 1}},
		{"fragments and inline fragments count where spread",
			`{ a: shift(id: "1") { ...S } b: shift(id: "2") { ... on Shift { signups(first: 5) { ...G } } } } fragment S on Shift { signups { ...G } } fragment G on SignupConnection { edges { node { id x: status } } }`, nil,
			measured{cost: (1 + 1 + (1 + 20*3)) + (1 + 1 + (1 + 5*3)), aliases: 2 + 2, rootFields: 2}},
		{"a page's size reaches into fragments spread in its edges", `{ myShifts(first: 3) { ...E } } fragment E on SignupConnection { edges { cursor } }`, nil,
			measured{cost: 1 + 1 + 3, rootFields: 1}},
		{"root fields through fragments", `{ me { id } ...Q } fragment Q on Query { myShifts { edges { cursor } } myDevices { token } }`, nil,
			measured{cost: 2 + (1 + 1 + 20) + (1 + 10), rootFields: 3}},
		{"docs/API.md's job actions", `{ jobActions { edges { node { id name picketLines { edges { node { id name } } } } } } }`, nil, measured{cost: 1302, rootFields: 1}},
		{"docs/API.md's roster", `{ picketLine(id: "1") { shifts { edges { node { signups { edges { node { member { name } } } } } } } } }`, nil, measured{cost: 1263, rootFields: 1}},
		{"introspection is free", `{ __typename me { __typename } }`, nil, measured{cost: 1, rootFields: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc, err := gqlparser.LoadQuery(schema(), c.query)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, measure(doc.Operations[0], c.vars, listBounds(db.DefaultLimits)), cmp.AllowUnexported(measured{})); diff != "" {
				t.Errorf("measure (-want +got):\n%s", diff)
			}
		})
	}
}

// A document that spreads each fragment twice in the next doubles its
// cost at every step; it is measured in one pass all the same, and its
// cost stays capped rather than overflowing.
func TestCostOfAFragmentBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("{ jobAction(id: \"1\") { ...F0 } }\n")
	const n = 80
	for i := range n {
		b.WriteString("fragment F" + strconv.Itoa(i) + " on JobAction { ")
		if i == n-1 {
			b.WriteString("id }\n")
			continue
		}
		b.WriteString("...F" + strconv.Itoa(i+1) + " x" + strconv.Itoa(i) + ": picketLines { edges { node { jobAction { ...F" + strconv.Itoa(i+1) + " } } } } }\n")
	}
	doc, err := gqlparser.LoadQuery(schema(), b.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := measure(doc.Operations[0], nil, listBounds(db.DefaultLimits)).cost; got != costCap {
		t.Errorf("cost = %d, want the cap %d", got, costCap)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10001: "10,001", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
