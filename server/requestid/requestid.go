// Package requestid gives every request an id that the client sees in
// INTERNAL errors and the server log carries next to the details.
package requestid

import (
	"context"
	"crypto/rand"
	"net/http"
)

type key struct{}

// From returns the request's id, or "" outside a request.
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// New makes a fresh request id.
func New() string { return rand.Text()[:16] }

// Middleware gives each request a fresh id and echoes it in X-Request-Id.
// Ids sent by clients are ignored: they would let a client forge log lines.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := New()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(With(r.Context(), id)))
	})
}
