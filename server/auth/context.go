package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/picketline/picketline/db"
)

// SessionChecker turns a token's session into an actor, failing when the
// session was revoked or has expired.
type SessionChecker interface {
	SessionActor(ctx context.Context, actor db.Actor, sessionID, memberID string) (db.Actor, error)
}

// Authenticator checks bearer tokens on requests.
type Authenticator struct {
	Tokens   *Tokens
	Sessions SessionChecker
	// OnError hears failures that are not the client's (the database did
	// not answer), to log them with the request id.
	OnError func(ctx context.Context, err error)
}

// Actor checks an Authorization header value ("Bearer <token>") and returns
// its actor and when the token expires. Every kind of bad token gives
// ErrInvalidToken.
func (a *Authenticator) Actor(ctx context.Context, header string) (db.Actor, time.Time, error) {
	c, err := a.Claims(header)
	if err != nil {
		return db.Actor{}, time.Time{}, err
	}
	actor, err := a.Sessions.SessionActor(ctx, db.System, c.SessionID, c.Subject)
	if db.ErrorCode(err) == db.CodeUnauthenticated {
		return db.Actor{}, time.Time{}, ErrInvalidToken
	}
	return actor, c.ExpiresAt.Time, err
}

// Claims checks an Authorization header value ("Bearer <token>") and
// returns what its token says, its session unchecked: for a caller that
// checks the session itself, in a round trip it makes anyway. Every kind
// of bad token gives ErrInvalidToken.
func (a *Authenticator) Claims(header string) (*Claims, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, ErrInvalidToken
	}
	c, err := a.Tokens.Parse(strings.TrimSpace(token))
	if err != nil {
		return nil, ErrInvalidToken
	}
	return c, nil
}

// Middleware puts the caller's actor in the request context. A request
// without an Authorization header is anonymous (login mutations need no
// token); one with a bad token is answered 401 at once, the same way for
// every kind of bad token.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if h := r.Header.Get("Authorization"); h != "" {
			actor, _, err := a.Actor(ctx, h)
			if errors.Is(err, ErrInvalidToken) {
				Unauthorized(w, r)
				return
			}
			if de := (*db.Error)(nil); errors.As(err, &de) && de.Code == db.CodeUnavailable {
				// The database is slow, not broken: the app retries.
				WriteError(w, r, http.StatusServiceUnavailable, de.Message, map[string]any{"code": string(de.Code)})
				return
			}
			if err != nil {
				a.OnError(ctx, err)
				id := db.RequestID(ctx)
				WriteError(w, r, http.StatusServiceUnavailable, "internal error (request "+id+")",
					map[string]any{"code": string(db.CodeInternal), "requestId": id})
				return
			}
			ctx = db.WithActor(ctx, actor)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Unauthorized answers 401 with a GraphQL-shaped UNAUTHENTICATED error.
func Unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	WriteError(w, r, http.StatusUnauthorized, "the access token is invalid or has expired; refresh the session",
		map[string]any{"code": string(db.CodeUnauthenticated)})
}

// GraphQLResponseType is the media type of the GraphQL over HTTP
// specification, answered to clients whose Accept header names it.
const GraphQLResponseType = "application/graphql-response+json"

// WriteError answers with a GraphQL-shaped error outside GraphQL execution,
// as application/graphql-response+json when the client accepts it and
// application/json otherwise.
func WriteError(w http.ResponseWriter, r *http.Request, status int, message string, extensions map[string]any) {
	ct := "application/json"
	if strings.Contains(r.Header.Get("Accept"), GraphQLResponseType) {
		ct = GraphQLResponseType
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": message, "extensions": extensions}},
	})
}
