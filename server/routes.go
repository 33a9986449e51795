package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/graph"
	"github.com/picketline/picketline/server/auth"
	"github.com/picketline/picketline/server/metrics"
	"github.com/picketline/picketline/server/realtime"
)

// Limits on what one GraphQL request may ask.
const (
	// Validation time grows with the square of a document's fields, so the
	// token limit keeps one anonymous request from holding a core for
	// seconds; GraphiQL's introspection query is about 350 tokens.
	maxParserTokens = 2000
	maxQueryDepth   = 12
	// The most nodes an operation may cost (graph.OperationLimits): room for the
	// app's largest screen, the job actions with their lines (about 40,000
	// at their bounds), and a few MB of answer at most.
	maxCost          = 50000
	maxAliases       = 30
	maxRootFields    = 10
	queryCacheSize   = 1000
	readinessTimeout = 2 * time.Second

	wsInitTimeout     = 5 * time.Second
	wsMaxMessageBytes = 64 << 10
	wsPingInterval    = 30 * time.Second
)

// newServer returns the whole HTTP API; every route is listed here.
func newServer(cfg config, log *slog.Logger, m *metrics.Metrics, store *db.Store, mutations *db.MutationLimiter, tokens *auth.Tokens, rt *realtimeParts, ready *atomic.Bool) http.Handler {
	authn := &auth.Authenticator{Tokens: tokens, Sessions: store, OnError: func(ctx context.Context, err error) {
		log.ErrorContext(ctx, "internal error", "requestId", db.RequestID(ctx), "err", err)
	}}
	gql := newGraphQL(cfg, log, m, store, mutations, tokens, authn, rt)

	mux := http.NewServeMux()
	clientAddr := cfg.TrustedProxies.Middleware
	mux.Handle("POST /graphql", requireReady(ready, checkBody(int64(cfg.MaxBodyBytes), clientAddr(authn.Middleware(graph.LoaderMiddleware(store, gql))))))
	// Websockets authenticate in connection_init, not on the upgrade.
	mux.Handle("GET /graphql", requireReady(ready, websocketsOnly(clientAddr(rt.admission.Handler(gql)))))
	mux.HandleFunc("/graphql", methodNotAllowed)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", readyz(ready, store))
	if cfg.dev() {
		mux.Handle("GET /{$}", playground.Handler("Picketline", "/graphql"))
	}
	// Metrics are served here only in dev without METRICS_ADDR: in prod
	// they have a listener of their own, never the public one.
	if cfg.dev() && cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", m.Handler(log))
	}
	return withRequestID(logRequests(log, m, recoverPanics(log, cors(cfg.AllowedOrigins, mux))))
}

// mutations is nil when the per-member mutation limit is off.
func newGraphQL(cfg config, log *slog.Logger, m *metrics.Metrics, store *db.Store, mutations *db.MutationLimiter, tokens *auth.Tokens, authn *auth.Authenticator, rt *realtimeParts) *handler.Server {
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{
		Store:  store,
		Tokens: tokens,
		Events: rt.hub,
	}})
	srv := handler.New(schema)
	// Outermost, so that the durations it records cover the other
	// extensions' work.
	srv.Use(newObserver(schema.Schema(), log, m))
	// Only JSON POST and websockets: no GET queries (no mutations through
	// links or caches), no form or text bodies (no CORS-simple requests),
	// no batching.
	srv.AddTransport(transport.POST{})
	srv.AddTransport(transport.Websocket{
		Implementation: &realtime.Upgrader{
			AllowedOrigins:   cfg.AllowedOrigins,
			InitTimeout:      wsInitTimeout,
			PingInterval:     wsPingInterval,
			MaxSubscriptions: cfg.WSMaxSubscriptions,
			MaxMessageBytes:  wsMaxMessageBytes,
			Conns:            rt.conns,
		},
		InitFunc: wsInit(authn, rt.admission, log),
	})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	srv.SetParserTokenLimit(maxParserTokens)
	if cfg.dev() {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
		srv.SetValidationRulesFn(graph.ProdValidationRules)
	}
	// Each websocket operation gets loaders of its own: one that ends must
	// not cancel the batched reads of another on the same connection.
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if conn := realtime.ConnFrom(ctx); conn != nil {
			// A socket's operations run with the rights its member holds
			// now, not those it held when it connected.
			ctx = realtime.WithEndings(db.WithActorOf(ctx, conn.Actor))
			ctx = graph.WithLoaders(ctx, func() *graph.Loaders { return graph.NewLoaders(store, db.ActorFrom(ctx), false) })
		}
		return next(ctx)
	})
	// A subscription's events are resolved, each in its turn, with the
	// rights its member holds when the event goes out: a coordinator made a
	// member stops seeing what only coordinators see at the next event.
	// The loaders are made as the event is resolved, not as its wait
	// begins, from the socket's actor then.
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		if realtime.ConnFrom(ctx) != nil {
			ctx = graph.WithLoaders(ctx, func() *graph.Loaders { return graph.NewLoaders(store, db.ActorFrom(ctx), false) })
		}
		return next(ctx)
	})
	srv.Use(graph.CostLimit(graph.OperationLimits{MaxCost: maxCost, MaxAliases: maxAliases, MaxRootFields: maxRootFields, Enforced: store.Limits()}))
	srv.Use(graph.DepthLimit(maxQueryDepth))
	srv.Use(graph.InputCheck(schema.Schema()))
	// After the checks above, so that a refused operation is not counted.
	if mutations != nil {
		srv.Use(graph.MutationLimit(mutations))
	}
	srv.SetErrorPresenter(graph.ErrorPresenter(func(ctx context.Context, err error) {
		log.ErrorContext(ctx, "internal error", "requestId", db.RequestID(ctx), "err", err)
	}))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		return fmt.Errorf("panic: %v\n%s", p, debug.Stack())
	})
	return srv
}

// wsInit authenticates a websocket from its connection_init payload, with
// the same rules as HTTP, and admits it under its member's cap on
// connections. A bad token closes with 4403, which clients treat as final
// for that token rather than retrying it forever; a member at the cap is
// closed with 4429, which graphql-ws clients take as final too. A session
// or cap that could not be checked (the database did not answer in time)
// closes with 1013, try again later: the token may be good, and an app
// told 4403 would sign its member out.
func wsInit(authn *auth.Authenticator, admission *realtime.Admission, log *slog.Logger) transport.WebsocketInitFunc {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		conn := realtime.ConnFrom(ctx)
		claims, err := authn.Claims(p.Authorization())
		if err != nil {
			return transport.WithWebsocketCloseCode(ctx, realtime.CloseForbidden), nil, errors.New("Forbidden")
		}
		// The session is checked as the connection is counted, in one
		// round trip; an end of the session heard meanwhile closes it.
		conn.Claims(claims.SessionID)
		actor, err := admission.Admit(ctx, claims.SessionID, claims.Subject)
		if db.ErrorCode(err) == db.CodeUnauthenticated {
			return transport.WithWebsocketCloseCode(ctx, realtime.CloseForbidden), nil, errors.New("Forbidden")
		}
		if db.ErrorCode(err) == db.CodeRateLimited {
			const reason = "Too many connections"
			return transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, realtime.CloseTooManyConnections), reason), nil, errors.New(reason)
		}
		if err != nil {
			if db.ErrorCode(err) != db.CodeUnavailable {
				log.ErrorContext(ctx, "websocket authentication", "err", err)
			}
			return transport.WithWebsocketCloseCode(ctx, realtime.CloseTryAgainLater), nil, errors.New("Try again later")
		}
		conn.Authenticated(actor, claims.ExpiresAt.Time)
		return realtime.WithViewer(db.WithActor(ctx, actor), conn), nil, nil
	}
}

func readyz(ready *atomic.Bool, store *db.Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if err := store.Pool().Ping(ctx); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	}
}
