package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/picketline/picketline/db"
)

// OperationLimits bound what one operation may ask for; CostLimit checks
// them all before anything runs.
type OperationLimits struct {
	// MaxCost is the most nodes an operation may cost. A field costs 1,
	// plus, for an object, the cost of its selections, and for a list, its
	// most items times the cost of one item (1 for a scalar). The most
	// items of a list is its page size when it pages (`first`, or the
	// default page size, at most the largest page) and its bound in
	// listBounds otherwise. Introspection fields (dev only) cost nothing.
	MaxCost int
	// Enforced are the limits the store enforces (db.Store.Limits), so
	// that a list bounded by a configured cap counts at that cap.
	Enforced db.Limits
	// MaxAliases is the most aliased fields, counting a fragment at every
	// place it is spread.
	MaxAliases int
	// MaxRootFields is the most fields at the top of the operation.
	MaxRootFields int
}

// CostLimit refuses an operation over any of the limits with
// GRAPHQL_VALIDATION_FAILED, naming the limit and the operation's measure
// but nothing of the document. It runs on the operation context, so it
// covers every transport.
func CostLimit(l OperationLimits) graphql.HandlerExtension {
	return costLimit{l, listBounds(l.Enforced)}
}

type costLimit struct {
	OperationLimits
	bounds map[string]int
}

func (costLimit) ExtensionName() string                   { return "CostLimit" }
func (costLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (c costLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	m := measure(oc.Operation, oc.Variables, c.bounds)
	switch {
	case m.rootFields > c.MaxRootFields:
		return limitError("the operation asks for %s root fields; at most %s are allowed", m.rootFields, c.MaxRootFields)
	case m.aliases > c.MaxAliases:
		return limitError("the operation has %s aliases; at most %s are allowed", m.aliases, c.MaxAliases)
	case m.cost > c.MaxCost:
		return limitError("the operation costs %s nodes, over the limit of %s", m.cost, c.MaxCost)
	}
	return nil
}

func limitError(format string, got, limit int) *gqlerror.Error {
	err := gqlerror.Errorf(format, thousands(got), thousands(limit))
	err.Extensions = map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}
	return err
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// costCap keeps products of list bounds from overflowing; any operation
// near it is refused all the same.
const costCap = 1 << 50

// listBounds is the most items each list field without paging returns,
// by Type.field, each the bound db/ enforces on it. A list field missing
// here is a mistake that TestEveryListFieldHasABound catches; a list that
// can grow without bound pages instead (see connections).
func listBounds(l db.Limits) map[string]int {
	return map[string]int{
		"PicketLine.announcements": db.AnnouncementListLimit,
		"JobAction.announcements":  db.AnnouncementListLimit,
		"PicketLine.captains":      db.MaxCaptainsPerLine,
		"Query.myDevices":          l.DevicesPerMember,
		// As many as there are kinds.
		"NotificationPreferences.enabled": 6,
	}
}

// connection is a field that pages with `first`.
type connection struct{ defaultSize, maxSize int }

// connections are the paging fields, by Type.field; their `edges` holds
// one page.
var connections = map[string]connection{
	"Query.openShifts":      {db.DefaultPageSize, db.MaxPageSize},
	"Query.jobActions":      {db.DefaultPageSize, db.MaxPageSize},
	"Query.myShifts":        {db.DefaultPageSize, db.MaxPageSize},
	"JobAction.picketLines": {db.DefaultPageSize, db.MaxPageSize},
	"Shift.signups":         {db.DefaultPageSize, db.MaxPageSize},
	"PicketLine.shifts":     {db.DefaultPageSize, db.MaxPageSize},
}

type measured struct{ cost, aliases, rootFields int }

// measurer walks an operation once; each fragment is measured once and
// reused wherever it is spread, so a document that spreads fragments in
// fragments costs little to measure however large it claims to be.
type measurer struct {
	vars      map[string]any
	bounds    map[string]int
	fragments map[spread]measured
}

// spread is a fragment where it is spread: under a connection, its edges
// hold a page.
type spread struct {
	name string
	page int
}

// measure is what op could return at most, in nodes (see
// OperationLimits.MaxCost), with its aliases and root fields.
func measure(op *ast.OperationDefinition, vars map[string]any, bounds map[string]int) measured {
	w := measurer{vars: vars, bounds: bounds, fragments: map[spread]measured{}}
	return w.set(op.SelectionSet, 0)
}

// set measures a selection set; page is the page size of the connection
// it belongs to, for its edges. rootFields counts the set's own fields.
func (w *measurer) set(set ast.SelectionSet, page int) measured {
	var m measured
	add := func(n measured) {
		m.cost = capAdd(m.cost, n.cost)
		m.aliases = capAdd(m.aliases, n.aliases)
		m.rootFields = capAdd(m.rootFields, n.rootFields)
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			add(w.field(s, page))
		case *ast.InlineFragment:
			add(w.set(s.SelectionSet, page))
		case *ast.FragmentSpread:
			if s.Definition == nil {
				continue
			}
			key := spread{s.Name, page}
			f, ok := w.fragments[key]
			if !ok {
				f = w.set(s.Definition.SelectionSet, page)
				w.fragments[key] = f
			}
			add(f)
		default:
			panic(fmt.Sprintf("unexpected selection %T", sel))
		}
	}
	return m
}

func (w *measurer) field(f *ast.Field, page int) measured {
	m := measured{cost: 1, rootFields: 1}
	if f.Alias != "" && f.Alias != f.Name {
		m.aliases = 1
	}
	if strings.HasPrefix(f.Name, "__") {
		return measured{aliases: m.aliases, rootFields: 1}
	}
	key := f.Name
	if f.ObjectDefinition != nil {
		key = f.ObjectDefinition.Name + "." + f.Name
	}
	if c, ok := connections[key]; ok {
		page = w.pageSize(f, c)
	}
	children := w.set(f.SelectionSet, page)
	m.aliases = capAdd(m.aliases, children.aliases)
	item := children.cost
	if len(f.SelectionSet) == 0 {
		item = 1
	}
	if f.Definition == nil || f.Definition.Type.Elem == nil {
		m.cost = capAdd(m.cost, children.cost)
		return m
	}
	n, ok := w.bounds[key]
	if strings.HasSuffix(key, "Connection.edges") {
		n, ok = page, true
	}
	if !ok {
		// An unknown list is counted as large as any so it is refused
		// rather than let through.
		n = costCap
	}
	m.cost = capAdd(m.cost, capMul(n, item))
	return m
}

// pageSize is the page a connection field asks for: `first` when given,
// else the default, never more than the largest page.
func (w *measurer) pageSize(f *ast.Field, c connection) int {
	n := c.defaultSize
	if first, ok := intValue(f.ArgumentMap(w.vars)["first"]); ok && first > 0 {
		n = min(first, c.maxSize)
	}
	return n
}

func intValue(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case int64:
		return int(min(max(v, -costCap), costCap)), true
	case float64:
		return int(min(max(v, -costCap), costCap)), true
	case json.Number:
		n, err := v.Int64()
		return int(min(max(n, -costCap), costCap)), err == nil
	}
	return 0, false
}

func capAdd(a, b int) int { return min(a+b, costCap) }

func capMul(a, b int) int {
	if a != 0 && b > costCap/a {
		return costCap
	}
	return min(a*b, costCap)
}
