package graph

import (
	"context"
	"errors"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/picketline/picketline/db"
)

// anonymousMutations need no access token. They are not counted per
// member: their limits are per address, email and code, where a stranger
// without a member to count against is held.
var anonymousMutations = map[string]bool{
	"requestLoginCode": true,
	"verifyLoginCode":  true,
	"refreshSession":   true,
}

// MutationLimit holds each member to the limiter's mutations per minute,
// counting every mutation field at the top of an operation. It runs on
// the operation context, before anything of the operation does, so it
// covers every transport and a refused operation changes nothing: it
// answers RATE_LIMITED with retryAfterSeconds. Installed after the cost,
// depth and input checks, it counts only operations that would run.
func MutationLimit(l *db.MutationLimiter) graphql.HandlerExtension { return mutationLimit{l} }

type mutationLimit struct{ limiter *db.MutationLimiter }

func (mutationLimit) ExtensionName() string                   { return "MutationLimit" }
func (mutationLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (m mutationLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return nil
	}
	err := m.limiter.Admit(db.ActorFrom(ctx), countedMutations(oc))
	var de *db.Error
	if !errors.As(err, &de) {
		return nil
	}
	// Presented here, not left to the error presenter: the websocket
	// transport sends the errors of this stage as they were returned.
	gerr := &gqlerror.Error{Err: err}
	presentDBError(gerr, de)
	return gerr
}

// countedMutations is how many of the operation's top fields will run
// (fragments spread and @skip or @include applied, as execution does)
// and count against the member.
func countedMutations(oc *graphql.OperationContext) int {
	n := 0
	for _, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Mutation"}) {
		if !anonymousMutations[f.Name] && !strings.HasPrefix(f.Name, "__") {
			n++
		}
	}
	return n
}
