// Package graph is the GraphQL adapter: gqlgen resolvers that turn requests
// into calls on the db use-cases, and the presentation of their errors.
package graph

import (
	"context"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
)

// TokenIssuer signs access tokens for sessions.
type TokenIssuer interface {
	Issue(memberID, sessionID string) (token string, expiresAt time.Time, err error)
}

// LoginCodeSender delivers login codes to members.
type LoginCodeSender interface {
	SendLoginCode(ctx context.Context, email, code string) error
}

// Resolver holds what the resolvers depend on.
type Resolver struct {
	Store  *db.Store
	Tokens TokenIssuer
	Sender LoginCodeSender
}

func actor(ctx context.Context) db.Actor { return auth.ActorFrom(ctx) }
