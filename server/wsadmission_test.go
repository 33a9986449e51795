package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/realtime"
)

// wantHandshakeRefused dials a websocket that must be refused before the
// upgrade: 429 with Retry-After and RATE_LIMITED in GraphQL JSON.
func (s *testServer) wantHandshakeRefused(t *testing.T, header http.Header) {
	t.Helper()
	c, resp, err := s.tryDialWS(t, header)
	if err == nil {
		c.conn.Close()
		t.Fatalf("a handshake over the cap was upgraded")
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("refused handshake: HTTP %d, Retry-After %q, want 429 and 5", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var got gqlResponse
	if err := json.Unmarshal(body, &got); err != nil || len(got.Errors) != 1 {
		t.Fatalf("refused handshake's body %q: %v", body, err)
	}
	if e := got.Errors[0].Extensions; e.Code != "RATE_LIMITED" || e.RetryAfterSeconds != 5 {
		t.Fatalf("refused handshake's body %s: want code RATE_LIMITED and retryAfterSeconds 5", body)
	}
}

func TestUnauthenticatedHandshakesAreCappedPerAddress(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["TRUSTED_PROXIES"] = "127.0.0.1/32" })
	m := s.addMember(t, db.RoleMember)
	from := func(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }
	const limit = 20
	var pending []*wsClient
	for range limit {
		pending = append(pending, s.dialWS(t, from("203.0.113.1")))
	}
	s.wantHandshakeRefused(t, from("203.0.113.1"))
	// Other addresses have their own count.
	s.dialWS(t, from("203.0.113.2"))

	// A handshake that authenticates no longer counts.
	pending[0].init(m.Token)
	pending = append(pending, s.dialWS(t, from("203.0.113.1")))
	s.wantHandshakeRefused(t, from("203.0.113.1"))
	// Nor does one that closes.
	pending[1].closeCleanly()
	s.dialWS(t, from("203.0.113.1"))
	s.wantHandshakeRefused(t, from("203.0.113.1"))
}

// initRefused sends connection_init and expects the close of a member
// over their cap.
func (c *wsClient) initRefused(token string) {
	c.t.Helper()
	payload, _ := json.Marshal(map[string]string{"authorization": "Bearer " + token})
	c.send(wsMsg{Type: "connection_init", Payload: payload})
	c.expectClose(realtime.CloseTooManyConnections)
	if c.closeText != "Too many connections" {
		c.t.Fatalf("closed 4429 saying %q, want \"Too many connections\"", c.closeText)
	}
}

// connected opens a websocket of the member's on s, acknowledged.
func (s *testServer) connected(t *testing.T, token string) *wsClient {
	t.Helper()
	ws := s.dialWS(t, nil)
	ws.init(token)
	return ws
}

func TestConnectionsPerMemberAreCappedAcrossReplicas(t *testing.T) {
	t.Parallel()
	a, b := twoReplicas(t)
	m := a.addMember(t, db.RoleMember)
	const limit = 10
	var open []*wsClient
	for i := range limit {
		srv := []*testServer{a, b}[i%2]
		open = append(open, srv.connected(t, srv.mintToken(t, m.ID)))
	}
	a.dialWS(t, nil).initRefused(m.Token)
	b.dialWS(t, nil).initRefused(m.Token)
	// The cap is the member's, not the session's or the replica's: another
	// member connects as ever.
	a.connected(t, a.addMember(t, db.RoleMember).Token)

	// Closing one on replica A frees a slot on replica B.
	open[0].closeCleanly()
	b.connected(t, m.Token)
	b.dialWS(t, nil).initRefused(m.Token)
	// So does a socket the server closes.
	open[1].subscribe("1", myEventsSub, nil)
	open[1].subscribe("1", myEventsSub, nil)
	open[1].expectClose(realtime.CloseSubscriberExists)
	retryUntilAdmitted(t, b, m.Token)
	b.dialWS(t, nil).initRefused(m.Token)
}

// retryUntilAdmitted connects until the member is admitted: a slot a
// server frees after closing a socket itself goes when its statement
// commits, which no client sees.
func retryUntilAdmitted(t *testing.T, s *testServer, token string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		acked, code, err := connectOnce(t, s.wsURL(), token)
		if acked {
			return
		}
		if err != nil || code != realtime.CloseTooManyConnections {
			t.Fatalf("connect: closed %d, %v", code, err)
		}
	}
	t.Fatalf("the member was not admitted within %v of a slot being freed", waitTimeout)
}

// connectOnce dials and sends connection_init, and reports whether the
// server acknowledged it or else the code it closed with. The connection
// stays open until the test ends, from any goroutine.
func connectOnce(t *testing.T, url, token string) (acked bool, code int, err error) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		return false, 0, err
	}
	// Held, not left to the garbage collector, which would close it and
	// free its slot.
	t.Cleanup(func() { conn.Close() })
	payload, _ := json.Marshal(map[string]string{"authorization": "Bearer " + token})
	if err := conn.WriteJSON(wsMsg{Type: "connection_init", Payload: payload}); err != nil {
		conn.Close()
		return false, 0, err
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m wsMsg
		err := conn.ReadJSON(&m)
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			conn.Close()
			return false, ce.Code, nil
		case err != nil:
			conn.Close()
			return false, 0, err
		case m.Type == "connection_ack":
			return true, 0, nil
		}
	}
}

func TestConnectionsPerMemberHoldWhenManyConnectAtOnceOnTwoReplicas(t *testing.T) {
	t.Parallel()
	a, b := twoReplicas(t)
	m := a.addMember(t, db.RoleMember)
	// Fifteen at once on each replica: within the handshakes one address
	// may have in progress, three times the member's cap.
	const perReplica, limit = 15, 10
	type outcome struct {
		acked bool
		code  int
	}
	var mu sync.Mutex
	got := map[outcome]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2 * perReplica {
		url := []*testServer{a, b}[i%2].wsURL()
		wg.Go(func() {
			<-start
			acked, code, err := connectOnce(t, url, m.Token)
			if err != nil {
				t.Errorf("connect: %v", err)
				return
			}
			mu.Lock()
			got[outcome{acked, code}]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	want := map[outcome]int{{acked: true}: limit, {code: realtime.CloseTooManyConnections}: 2*perReplica - limit}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(outcome{})); diff != "" {
		t.Fatalf("connections of one member at once on two replicas (-want +got):\n%s", diff)
	}
}

func TestAReplicaStoppingFreesItsMembersSlots(t *testing.T) {
	t.Parallel()
	a, b := twoReplicas(t)
	m := a.addMember(t, db.RoleMember)
	const limit = 10
	var onA []*wsClient
	for range limit {
		onA = append(onA, a.connected(t, m.Token))
	}
	b.dialWS(t, nil).initRefused(m.Token)
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	for _, ws := range onA {
		ws.expectClose(realtime.CloseServiceRestart)
	}
	for range limit {
		b.connected(t, m.Token)
	}
	b.dialWS(t, nil).initRefused(m.Token)
}
