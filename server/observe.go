package main

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/metrics"
	"github.com/picketline/picketline/server/realtime"
)

// otherOperation names, in logs and metrics, an operation that selects no
// root field of the schema (a document that does not parse or validate,
// or only __typename), so that a client cannot add label values.
const otherOperation = "other"

// observer writes the request log and the metrics of GraphQL operations.
// Over HTTP it hands what it learnt to the request's log line (logRequests);
// each websocket operation gets a line of its own when it ends (a
// subscription when it ends, with its lifetime and its first error's code).
//
// What it records is fixed in advance: the operation's root fields (only
// names the schema has), its kind, the result code and the duration. The
// document, the client's operation name and the variables never reach the
// log: they carry emails, phones and tokens.
type observer struct {
	log     *slog.Logger
	metrics *metrics.Metrics
	// roots holds the root field names of the schema's Query, Mutation and
	// Subscription types.
	roots map[string]bool
}

func newObserver(schema *ast.Schema, log *slog.Logger, m *metrics.Metrics) *observer {
	roots := map[string]bool{}
	for _, def := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		if def == nil {
			continue
		}
		for _, f := range def.Fields {
			roots[f.Name] = true
		}
	}
	return &observer{log: log, metrics: m, roots: roots}
}

func (*observer) ExtensionName() string                   { return "Observer" }
func (*observer) Validate(graphql.ExecutableSchema) error { return nil }

// operationKey marks a context inside an operation the observer follows.
type operationKey struct{}

// opDesc is what the log and the metrics say of an operation.
type opDesc struct {
	// label is the first root field, or otherOperation: the metrics'
	// operation label.
	label string
	// fields are all its root fields, comma-separated, for the log.
	fields string
	kind   string
}

// describe names an operation by its root fields; fragments at the root
// are looked into. Aliases are ignored: the field's own name counts.
func (o *observer) describe(op *ast.OperationDefinition) opDesc {
	if op == nil {
		return opDesc{label: otherOperation, fields: otherOperation}
	}
	var names []string
	seen := map[string]bool{}
	spread := map[string]bool{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if o.roots[s.Name] && !seen[s.Name] {
					seen[s.Name] = true
					names = append(names, s.Name)
				}
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				if s.Definition != nil && !spread[s.Name] {
					spread[s.Name] = true
					walk(s.Definition.SelectionSet)
				}
			}
		}
	}
	walk(op.SelectionSet)
	d := opDesc{label: otherOperation, fields: otherOperation, kind: string(op.Operation)}
	if len(names) > 0 {
		d.label, d.fields = names[0], strings.Join(names, ",")
	}
	return d
}

// InterceptOperation follows an operation that parsed and validated, to
// its end.
func (o *observer) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	desc := o.describe(oc.Operation)
	start := startOf(ctx)
	ws := realtime.ConnFrom(ctx) != nil
	conn := ""
	if ws {
		// Each websocket operation gets an id of its own, for its log line
		// and its INTERNAL errors; the connection's is logged beside it.
		conn = db.RequestID(ctx)
		ctx = db.WithRequestID(ctx, newRequestID())
	}
	subscription := ws && desc.kind == string(ast.Subscription)
	if subscription {
		o.metrics.SubscriptionStarted()
	}
	ctx = context.WithValue(ctx, operationKey{}, true)
	responses := next(ctx)
	code, done := "", false
	// gqlgen calls the handler from one goroutine per operation.
	return func(rctx context.Context) *graphql.Response {
		resp := responses(rctx)
		if done {
			return resp
		}
		if subscription && resp != nil {
			// After the client completed the subscription or closed the
			// socket, what is left (reads cut off: CANCELLED) is no
			// answer of the operation's.
			if rctx.Err() == nil {
				if code == "" {
					code = resultCode(resp)
				}
				if len(resp.Errors) == 0 {
					o.metrics.EventDelivered()
				}
			}
			return resp
		}
		if code == "" {
			code = resultCode(resp)
		}
		// A query or a mutation ends with its answer, and so does anything
		// over HTTP; a subscription on a websocket ends with its stream.
		done = true
		if subscription {
			o.metrics.SubscriptionEnded()
		}
		o.finish(ctx, desc, code, start, conn, ws)
		return resp
	}
}

// InterceptResponse sees every response. Those of followed operations
// pass; the others are requests refused before they became an operation
// (a document that does not parse, validate or keep within the limits),
// which end here.
func (o *observer) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if ctx.Value(operationKey{}) != nil {
		return next(ctx)
	}
	resp := next(ctx)
	desc := o.describe(nil)
	if graphql.HasOperationContext(ctx) {
		desc = o.describe(graphql.GetOperationContext(ctx).Operation)
	}
	ws := realtime.ConnFrom(ctx) != nil
	conn := ""
	if ws {
		conn = db.RequestID(ctx)
		ctx = db.WithRequestID(ctx, newRequestID())
	}
	o.finish(ctx, desc, resultCode(resp), startOf(ctx), conn, ws)
	return resp
}

// finish counts an operation and logs it: a websocket operation on a line
// of its own, an HTTP one on its request's line.
func (o *observer) finish(ctx context.Context, d opDesc, code string, start time.Time, conn string, ws bool) {
	if code == "" {
		code = "OK"
	}
	took := time.Since(start)
	transport := "http"
	if ws {
		transport = "ws"
	}
	o.metrics.Operation(d.label, code, transport, took)
	if rec, ok := ctx.Value(requestRecordKey{}).(*requestRecord); ok && !ws {
		rec.operation = d.attrs(code)
		return
	}
	if !o.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("requestId", db.RequestID(ctx)),
		slog.String("connection", conn),
		slog.String("transport", transport),
	}
	attrs = append(attrs, d.attrs(code)...)
	o.log.LogAttrs(ctx, slog.LevelInfo, "request", append(attrs, durationAttr(took))...)
}

// attrs are the operation's fields of a log line; a document that did not
// parse has no kind.
func (d opDesc) attrs(code string) []slog.Attr {
	attrs := []slog.Attr{slog.String("operation", d.fields)}
	if d.kind != "" {
		attrs = append(attrs, slog.String("kind", d.kind))
	}
	return append(attrs, slog.String("code", code))
}

// startOf is when gqlgen started on the request: before it was read over
// HTTP, when its subscribe message arrived on a websocket.
func startOf(ctx context.Context) time.Time {
	if graphql.HasOperationContext(ctx) {
		if t := graphql.GetOperationContext(ctx).Stats.OperationStart; !t.IsZero() {
			return t
		}
	}
	if t := graphql.GetStartTime(ctx); !t.IsZero() {
		return t
	}
	return time.Now()
}

// codePattern is the shape of the API's error codes; anything else (an
// error gqlgen raised without one) is counted as UNKNOWN.
var codePattern = regexp.MustCompile(`^[A-Z][A-Z_]{0,39}$`)

// resultCode is the code of a response's first error, or "" without one.
func resultCode(resp *graphql.Response) string {
	if resp == nil || len(resp.Errors) == 0 {
		return ""
	}
	if c, _ := resp.Errors[0].Extensions["code"].(string); codePattern.MatchString(c) {
		return c
	}
	return "UNKNOWN"
}

func durationAttr(d time.Duration) slog.Attr {
	return slog.Float64("durationMs", float64(d.Microseconds())/1000)
}
