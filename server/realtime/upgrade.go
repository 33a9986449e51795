package realtime

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// Subprotocol is the one websocket subprotocol spoken.
const Subprotocol = "graphql-transport-ws"

// Upgrader is gqlgen's websocket implementation on gorilla/websocket. It
// also enforces the graphql-transport-ws rules gqlgen leaves open: the
// close codes for a missing, repeated or late connection_init, malformed
// messages and duplicate subscription ids, and a cap on subscriptions.
type Upgrader struct {
	// AllowedOrigins lists browser origins that may connect. Native apps
	// send no Origin and are always allowed.
	AllowedOrigins []string
	InitTimeout    time.Duration
	// PingInterval is how often Conns.KeepAlive pings each connection; one
	// that answers nothing for two intervals is closed.
	PingInterval     time.Duration
	MaxSubscriptions int
	MaxMessageBytes  int64
	Conns            *Conns

	once     sync.Once
	upgrader websocket.Upgrader
}

func (u *Upgrader) init() {
	u.upgrader = websocket.Upgrader{
		// No read buffer of its own: gorilla reads through the 4 KB one
		// net/http already holds for the connection.
		ReadBufferSize:  0,
		WriteBufferSize: 1024,
		// Idle connections hold no write buffer of their own.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin: func(r *http.Request) bool {
			origin := r.Header.Get("Origin")
			return origin == "" || slices.Contains(u.AllowedOrigins, origin)
		},
	}
}

// Accept upgrades a request that asked for a protocol gqlgen speaks.
func (u *Upgrader) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	u.once.Do(u.init)
	// Only graphql-transport-ws: the legacy graphql-ws protocol has none of
	// the close codes clients rely on here.
	if !slices.Contains(websocket.Subprotocols(r), Subprotocol) || !slices.Contains(opts.Subprotocols, Subprotocol) {
		http.Error(w, "request the "+Subprotocol+" websocket subprotocol", http.StatusBadRequest)
		return nil, errors.New("no supported websocket subprotocol requested")
	}
	up := u.upgrader
	up.Subprotocols = []string{Subprotocol}
	ws, err := up.Upgrade(w, r, opts.ResponseHeader)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(u.MaxMessageBytes)
	watchClose(ws, r.Context())
	c := &Conn{ws: ws, upgrader: u, active: map[string]struct{}{}}
	c.alive()
	ws.SetPongHandler(func(string) error { c.alive(); return nil })
	c.timer = u.Conns.clock.AfterFunc(u.InitTimeout, func() {
		c.mu.Lock()
		late := !c.initSeen
		c.mu.Unlock()
		if late {
			c.CloseWith(CloseInitTimeout, "Connection initialisation timeout")
		}
	})
	if slot, ok := r.Context().Value(connSlotKey{}).(*connSlot); ok {
		slot.conn = c
	}
	u.Conns.add(c)
	return c, nil
}

type connSlotKey struct{}

// connSlot carries the connection from Accept to the init function, which
// gqlgen gives only the request's context.
type connSlot struct{ conn *Conn }

// WithConnSlot prepares a request's context to learn its websocket
// connection; ConnFrom reads it.
func WithConnSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, connSlotKey{}, &connSlot{})
}

// ConnFrom returns the websocket connection of a request prepared with
// WithConnSlot, once accepted.
func ConnFrom(ctx context.Context) *Conn {
	if slot, ok := ctx.Value(connSlotKey{}).(*connSlot); ok {
		return slot.conn
	}
	return nil
}
