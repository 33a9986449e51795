package realtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/jonboulle/clockwork"

	"github.com/picketline/picketline/db"
)

// Close codes of the graphql-transport-ws protocol, and the RFC 6455 ones
// this server uses.
const (
	CloseBadRequest       = 4400
	CloseUnauthorized     = 4401
	CloseForbidden        = 4403
	CloseInitTimeout      = 4408
	CloseSubscriberExists = 4409
	CloseTooManyInits     = 4429
	CloseServiceRestart   = 1012
	CloseTryAgainLater    = 1013
)

// writeTimeout bounds a write to the peer. Socket deadlines, this one and
// the read deadline of alive, stay on the wall clock: the kernel enforces
// them, and they are no rule of ours to move in a test.
const writeTimeout = 10 * time.Second

// Conn is one websocket connection.
type Conn struct {
	ws       *websocket.Conn
	upgrader *Upgrader
	writeMu  sync.Mutex

	mu       sync.Mutex
	initSeen bool
	acked    bool
	active   map[string]struct{}
	// actor is the connection's member as of the last check of its rights:
	// its role follows the member's, and its operations run as it.
	actor db.Actor
	timer clockwork.Timer
}

type wsMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// NextReader returns the next message for gqlgen after checking it against
// the protocol; a breach closes the connection with the protocol's code.
func (c *Conn) NextReader() (int, io.Reader, error) {
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			// gqlgen closes the connection on a goroutine of its own once
			// its read loop has returned, after the request has ended: the
			// connection leaves the count of open ones now.
			c.upgrader.Conns.remove(c)
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				return 0, nil, transport.ErrWebsocketClosed
			}
			return 0, nil, err
		}
		c.alive()
		var m wsMessage
		if json.Unmarshal(data, &m) != nil || m.Type == "" {
			c.CloseWith(CloseBadRequest, "Invalid message received")
			return 0, nil, errProtocol
		}
		pass, code, reason := c.check(m)
		if code != 0 {
			c.CloseWith(code, reason)
			return 0, nil, errProtocol
		}
		if pass {
			return mt, bytes.NewReader(data), nil
		}
	}
}

var errProtocol = errors.New("graphql-transport-ws protocol breach")

// check applies the protocol's rules to an incoming message: whether to pass
// it to gqlgen, or the close code it deserves.
func (c *Conn) check(m wsMessage) (pass bool, code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m.Type {
	case "connection_init":
		if c.initSeen {
			return false, CloseTooManyInits, "Too many initialisation requests"
		}
		c.initSeen = true
	case "subscribe":
		switch {
		case !c.acked:
			return false, CloseUnauthorized, "Unauthorized"
		case m.ID == "":
			return false, CloseBadRequest, "Invalid message received"
		case hasKey(c.active, m.ID):
			return false, CloseSubscriberExists, "Subscriber for " + m.ID + " already exists"
		case len(c.active) >= c.upgrader.MaxSubscriptions:
			go c.refuse(m.ID)
			return false, 0, ""
		}
		c.active[m.ID] = struct{}{}
	case "complete":
		delete(c.active, m.ID)
	}
	return true, 0, ""
}

func hasKey(m map[string]struct{}, k string) bool {
	_, ok := m[k]
	return ok
}

// refuse answers a subscription over the cap with an error for its id.
func (c *Conn) refuse(id string) {
	c.WriteJSON(wsMessage{Type: "error", ID: id, Payload: json.RawMessage(
		`[{"message":"too many subscriptions on this connection","extensions":{"code":"RATE_LIMITED"}}]`)})
}

// WriteJSON sends a message, noting the ends of subscriptions and the
// acknowledgement of the connection.
func (c *Conn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	typ, id := messageKind(v)
	c.mu.Lock()
	switch typ {
	case "connection_ack":
		c.acked = true
	case "complete", "error":
		delete(c.active, id)
	}
	c.mu.Unlock()
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// messageKind reads the type and id of an outgoing message without parsing
// back what was just encoded: gqlgen's messages, like wsMessage, are structs
// with Type and ID fields.
func messageKind(v any) (typ, id string) {
	r := reflect.Indirect(reflect.ValueOf(v))
	if r.Kind() != reflect.Struct {
		return "", ""
	}
	if f := r.FieldByName("Type"); f.Kind() == reflect.String {
		typ = f.String()
	}
	if f := r.FieldByName("ID"); f.Kind() == reflect.String {
		id = f.String()
	}
	return typ, id
}

// alive pushes the read deadline out: the peer spoke or answered a ping.
func (c *Conn) alive() {
	c.ws.SetReadDeadline(time.Now().Add(2 * c.upgrader.PingInterval))
}

// ping sends a websocket ping frame, which every client answers by itself.
// gorilla allows it alongside the writes of other goroutines.
func (c *Conn) ping() {
	c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
}

// WriteClose sends a close frame.
func (c *Conn) WriteClose(code int, reason string) error {
	return c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.timer.Stop()
	c.mu.Unlock()
	c.upgrader.Conns.remove(c)
	return c.ws.Close()
}

// Subprotocol is the protocol agreed with the client.
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// SetReadLimit caps incoming messages.
func (c *Conn) SetReadLimit(limit int64) { c.ws.SetReadLimit(min(limit, c.upgrader.MaxMessageBytes)) }

// CloseWith closes the connection with a code and reason, from any goroutine.
func (c *Conn) CloseWith(code int, reason string) {
	c.writeMu.Lock()
	c.WriteClose(code, reason)
	c.writeMu.Unlock()
	c.Close()
}

// Drop cuts off a subscriber that cannot keep up; the client reconnects
// and resumes by cursor.
func (c *Conn) Drop(reason string) { go c.CloseWith(CloseTryAgainLater, reason) }

// Authenticated records whose connection this is and closes it with 4403
// when the access token expires, so the client refreshes and reconnects.
func (c *Conn) Authenticated(actor db.Actor, expires time.Time) {
	clock := c.upgrader.Conns.clock
	c.mu.Lock()
	c.actor = actor
	c.timer.Stop()
	c.timer = clock.AfterFunc(clock.Until(expires), func() { c.CloseWith(CloseForbidden, "Token expired") })
	c.mu.Unlock()
}

// Claims records the session the connection's token names before it is
// checked, so that an end of that session heard meanwhile closes it.
func (c *Conn) Claims(sessionID string) {
	c.mu.Lock()
	c.actor.SessionID = sessionID
	c.mu.Unlock()
}

// Actor is the connection's member with the rights the member holds now,
// as far as this replica has heard: the zero Actor before connection_init.
func (c *Conn) Actor() db.Actor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.actor
}

// setRole records the member's role after it changed.
func (c *Conn) setRole(role db.Role) {
	c.mu.Lock()
	c.actor.Role = role
	c.mu.Unlock()
}
