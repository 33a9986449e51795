package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsClient speaks graphql-transport-ws to the server, as the app does.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	msgs chan wsMsg
	// closed receives the close frame's code once the server closes;
	// closeText is its reason, set before.
	closed    chan int
	closeText string
}

type wsMsg struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (s *testServer) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/graphql" }

// dialWS opens a websocket with the graphql-transport-ws subprotocol.
func (s *testServer) dialWS(t testing.TB, header http.Header) *wsClient {
	t.Helper()
	c, resp, err := s.tryDialWS(t, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial websocket: %v (HTTP %d)", err, status)
	}
	return c
}

// tryDialWS is dialWS for a websocket that may be refused: it returns the
// HTTP answer that refused it, its body read.
func (s *testServer) tryDialWS(t testing.TB, header http.Header) (*wsClient, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(s.wsURL(), header)
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{t: t, conn: conn, msgs: make(chan wsMsg, 1024), closed: make(chan int, 1)}
	go c.read()
	t.Cleanup(func() { conn.Close() })
	return c, resp, nil
}

func (c *wsClient) read() {
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			code := 0
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code, c.closeText = ce.Code, ce.Text
			}
			c.closed <- code
			close(c.msgs)
			return
		}
		var m wsMsg
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.Type == "ping" {
			c.send(wsMsg{Type: "pong"})
			continue
		}
		c.msgs <- m
	}
}

func (c *wsClient) send(m wsMsg) {
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Logf("websocket write: %v", err)
	}
}

func (c *wsClient) sendRaw(s string) {
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Logf("websocket write: %v", err)
	}
}

// init sends connection_init with the token and waits for the ack.
func (c *wsClient) init(token string) {
	c.t.Helper()
	payload, _ := json.Marshal(map[string]string{"authorization": "Bearer " + token})
	c.send(wsMsg{Type: "connection_init", Payload: payload})
	if m := c.next(); m.Type != "connection_ack" {
		c.t.Fatalf("got %s %s, want connection_ack", m.Type, m.Payload)
	}
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	c.send(wsMsg{Type: "subscribe", ID: id, Payload: payload})
}

// next returns the next message other than keep-alives.
func (c *wsClient) next() wsMsg {
	c.t.Helper()
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("the connection closed while waiting for a message")
			}
			if m.Type == "ka" || m.Type == "pong" {
				continue
			}
			return m
		case <-time.After(10 * time.Second):
			c.t.Fatalf("no message within 10s")
		}
	}
}

// event is a PicketLineEvent or MyEvent as the tests select them.
type event struct {
	Cursor string `json:"cursor"`
	Seq    int    `json:"seq"`
	Kind   string `json:"kind"`
	Shift  *struct {
		ID            string `json:"id"`
		SignedUpCount int    `json:"signedUpCount"`
	} `json:"shift"`
	Announcement *struct {
		Body string `json:"body"`
	} `json:"announcement"`
	Signup *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"signup"`
}

// nextEvent returns the data of the next "next" message for subscription id.
func (c *wsClient) nextEvent(id, field string) event {
	c.t.Helper()
	m := c.next()
	if m.Type != "next" || m.ID != id {
		c.t.Fatalf("got %s for %q: %s, want next for %q", m.Type, m.ID, m.Payload, id)
	}
	var body struct {
		Data   map[string]event `json:"data"`
		Errors []gqlError       `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &body); err != nil || len(body.Errors) > 0 {
		c.t.Fatalf("event payload %s: %v", m.Payload, err)
	}
	return body.Data[field]
}

// closeCleanly closes the connection as a client going away does, and
// waits for the server to answer the close.
func (c *wsClient) closeCleanly() {
	c.t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		c.t.Fatalf("send close: %v", err)
	}
	c.expectClose(websocket.CloseNormalClosure)
}

// expectClose waits for the server to close the connection with code.
func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case got := <-c.closed:
			if got != code {
				c.t.Fatalf("closed with %d, want %d", got, code)
			}
			return
		case <-c.msgs:
		case <-deadline:
			c.t.Fatalf("not closed within 15s, want close %d", code)
		}
	}
}

const lineEventsSub = `subscription($line: ID!, $after: String) {
  picketLineEvents(picketLineId: $line, after: $after) {
    cursor seq kind shift { id signedUpCount } announcement { body }
  }
}`

const myEventsSub = `subscription($after: String) { myEvents(after: $after) { cursor kind shift { id } signup { id status } announcement { body } } }`

// lineCursor is the cursor a client loads with the line, to subscribe
// after it without missing a change.
func (s *testServer) lineCursor(t *testing.T, token, lineID string) string {
	t.Helper()
	var out struct {
		PicketLine struct{ EventCursor string } `json:"picketLine"`
	}
	s.do(t, token, `query($l: ID!) { picketLine(id: $l) { eventCursor } }`, map[string]any{"l": lineID}, &out)
	return out.PicketLine.EventCursor
}

// myCursor is the cursor of the member's latest personal event.
func (s *testServer) myCursor(t *testing.T, token string) string {
	t.Helper()
	var out struct {
		Me struct{ EventCursor string } `json:"me"`
	}
	s.do(t, token, `{ me { eventCursor } }`, nil, &out)
	return out.Me.EventCursor
}
