package db

import "context"

// The request's context carries who is calling, from where, and which
// request it is. The process (server/) puts them there as a request arrives;
// the GraphQL adapter (graph/) reads them. Both import this package, so the
// helpers live here, below both, beside Actor.

type (
	actorKey      struct{}
	clientAddrKey struct{}
	requestIDKey  struct{}
)

// WithActor returns ctx carrying the actor.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// WithActorOf returns ctx whose actor is whatever current says each time
// it is asked: a websocket's operations, subscriptions above all, run with
// the rights its member holds as each event goes out, not when it began.
func WithActorOf(ctx context.Context, current func() Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, current)
}

// ActorFrom returns the actor ctx carries; anonymous when none signed in.
func ActorFrom(ctx context.Context) Actor {
	switch a := ctx.Value(actorKey{}).(type) {
	case Actor:
		return a
	case func() Actor:
		return a()
	}
	return Actor{}
}

// WithClientAddr returns ctx carrying the network address the request came
// from, for per-address rate limits.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// ClientAddr returns the address ctx carries, or "" when none is known.
func ClientAddr(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey{}).(string)
	return a
}

// WithRequestID returns ctx carrying the request's id, which the client sees
// in INTERNAL errors and the server log carries next to the details.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
