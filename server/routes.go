package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/graph"
	"github.com/picketline/picketline/server/auth"
	"github.com/picketline/picketline/server/requestid"
)

// Limits on what one GraphQL request may ask.
const (
	maxBodyBytes     = 256 << 10
	maxParserTokens  = 15000
	maxComplexity    = 1000
	maxQueryDepth    = 12
	queryCacheSize   = 1000
	readinessTimeout = 2 * time.Second
)

// newServer returns the whole HTTP API; every route is listed here.
func newServer(cfg config, log *slog.Logger, store *db.Store, tokens *auth.Tokens, ready *atomic.Bool) http.Handler {
	authn := &auth.Authenticator{Tokens: tokens, Sessions: store}
	gql := newGraphQL(cfg, log, store, tokens)

	mux := http.NewServeMux()
	mux.Handle("POST /graphql", requireReady(ready, limitBody(authn.Middleware(graph.LoaderMiddleware(store, gql)))))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", readyz(ready, store))
	if cfg.dev() {
		mux.Handle("GET /{$}", playground.Handler("Picketline", "/graphql"))
	}
	return requestid.Middleware(recoverPanics(log, cors(cfg.AllowedOrigins, mux)))
}

func newGraphQL(cfg config, log *slog.Logger, store *db.Store, tokens *auth.Tokens) *handler.Server {
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{
		Store:  store,
		Tokens: tokens,
		Sender: logSender{log: log},
	}})
	srv := handler.New(schema)
	// Only JSON POST: no GET (no mutations through links or caches), no
	// form or text bodies (no CORS-simple requests), no batching.
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](queryCacheSize))
	srv.SetParserTokenLimit(maxParserTokens)
	if cfg.dev() {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
	}
	srv.Use(extension.FixedComplexityLimit(maxComplexity))
	srv.Use(graph.DepthLimit(maxQueryDepth))
	srv.SetErrorPresenter(graph.ErrorPresenter(func(ctx context.Context, err error) {
		log.ErrorContext(ctx, "internal error", "requestId", requestid.From(ctx), "err", err)
	}))
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		return fmt.Errorf("panic: %v\n%s", p, debug.Stack())
	})
	return srv
}

// logSender delivers login codes by writing them to the server log, for
// development and for deployments that relay the log to members.
type logSender struct{ log *slog.Logger }

func (s logSender) SendLoginCode(ctx context.Context, email, code string) error {
	s.log.InfoContext(ctx, "login code", "email", email, "code", code)
	return nil
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
