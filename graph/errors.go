package graph

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/picketline/picketline/db"
)

// ErrorPresenter turns resolver errors into what clients see: a *db.Error
// keeps its message and becomes extensions.code (with field and
// retryAfterSeconds where set); GraphQL parse and validation errors pass as
// gqlgen made them; anything else is reported through internal with its
// detail and reaches the client only as INTERNAL with the request id.
func ErrorPresenter(internal func(ctx context.Context, err error)) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var de *db.Error
		if errors.As(err, &de) {
			gerr := graphql.DefaultErrorPresenter(ctx, err)
			presentDBError(gerr, de)
			return gerr
		}
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			return gqlErr
		}
		if errors.Is(err, context.Canceled) {
			// The client went away (a subscription completed, a request was
			// abandoned): nothing failed on our side.
			gerr := graphql.DefaultErrorPresenter(ctx, err)
			gerr.Message = "the request was cancelled"
			gerr.Extensions = map[string]any{"code": "CANCELLED"}
			return gerr
		}
		internal(ctx, err)
		id := db.RequestID(ctx)
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		gerr.Message = "internal error (request " + id + ")"
		gerr.Extensions = map[string]any{"code": string(db.CodeInternal), "requestId": id}
		return gerr
	}
}

// presentDBError gives gerr the message of de and its code (with field and
// retryAfterSeconds where set) as extensions.
func presentDBError(gerr *gqlerror.Error, de *db.Error) {
	gerr.Message = de.Message
	gerr.Extensions = map[string]any{"code": string(de.Code)}
	field := de.Field
	if field == "" && de.Code == db.CodeBadUserInput && len(gerr.Path) > 0 {
		// Scalar decoding fails before any use-case sees the input;
		// the path's last name is the argument at fault.
		if name, ok := gerr.Path[len(gerr.Path)-1].(ast.PathName); ok {
			field = string(name)
		}
	}
	if field != "" {
		gerr.Extensions["field"] = field
	}
	if de.RetryAfterSeconds > 0 {
		gerr.Extensions["retryAfterSeconds"] = de.RetryAfterSeconds
	}
}
