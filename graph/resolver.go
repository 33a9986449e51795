// Package graph is the GraphQL adapter: gqlgen resolvers that turn requests
// into calls on the db use-cases, and the presentation of their errors.
package graph

import (
	"context"
	"time"

	"github.com/picketline/picketline/db"
)

// TokenIssuer signs access tokens for sessions.
type TokenIssuer interface {
	Issue(memberID, sessionID string) (token string, expiresAt time.Time, err error)
}

// EventStreams delivers events live. Each stream starts after the given
// sequence number, replaying what is stored before following live, and
// ends when ctx ends, the subscriber falls too far behind, or its member
// loses the right to it (with a FORBIDDEN error).
type EventStreams interface {
	LineEvents(ctx context.Context, lineID string, after int64) <-chan *db.LineEvent
	MemberEvents(ctx context.Context, memberID string, after int64) <-chan *db.MemberEvent
}

// Resolver holds what the resolvers depend on.
type Resolver struct {
	Store  *db.Store
	Tokens TokenIssuer
	Events EventStreams
}

func actor(ctx context.Context) db.Actor { return db.ActorFrom(ctx) }
