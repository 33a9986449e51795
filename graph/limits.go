package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// DepthLimit refuses operations nested deeper than max fields. It runs on
// the operation context, so it covers every transport.
func DepthLimit(max int) graphql.HandlerExtension { return depthLimit{max: max} }

type depthLimit struct{ max int }

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, 0, d.max); depth > d.max {
		err := gqlerror.Errorf("the operation is nested %d levels deep; at most %d are allowed", depth, d.max)
		err.Extensions = map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}
		return err
	}
	return nil
}

// selectionDepth measures a selection set, stopping once past max so that
// deep or fragment-heavy documents cost little to refuse.
func selectionDepth(set ast.SelectionSet, depth, max int) int {
	if depth > max {
		return depth
	}
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			// Introspection (dev only) is a fixed, known query: GraphiQL's
			// own goes 13 levels deep.
			if len(s.SelectionSet) == 0 || strings.HasPrefix(s.Name, "__") {
				d = depth + 1
			} else {
				d = selectionDepth(s.SelectionSet, depth+1, max)
			}
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, depth, max)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = selectionDepth(s.Definition.SelectionSet, depth, max)
			}
		default:
			panic(fmt.Sprintf("unexpected selection %T", sel))
		}
		if d > deepest {
			deepest = d
		}
	}
	return deepest
}
