package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/realtime"
)

// liveLine is a line with one shift two days ahead, and its captain.
type liveLine struct {
	captain *member
	line    *db.PicketLine
	shift   *db.Shift
}

func (s *testServer) liveLine(t *testing.T, capacity int) liveLine {
	t.Helper()
	k := s.kit(t)
	line := k.Line()
	return liveLine{captain: s.captain(t, line), line: line, shift: k.ShiftOn(line, 48*time.Hour, capacity)}
}

const httpSignUp = `mutation($s: ID!) { signUpForShift(shiftId: $s) { id status } }`

func (s *testServer) signUpOverHTTP(t *testing.T, token, shiftID string) string {
	t.Helper()
	var out struct {
		SignUpForShift struct{ ID string } `json:"signUpForShift"`
	}
	s.do(t, token, httpSignUp, map[string]any{"s": shiftID}, &out)
	return out.SignUpForShift.ID
}

func TestLineEventsArriveLive(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	l := s.liveLine(t, 1)
	ws := s.dialWS(t, nil)
	ws.init(l.captain.Token)
	ws.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID, "after": s.lineCursor(t, l.captain.Token, l.line.ID)})

	m := s.addMember(t, db.RoleMember)
	s.signUpOverHTTP(t, m.Token, l.shift.ID)
	e := ws.nextEvent("1", "picketLineEvents")
	if e.Kind != "SIGNUP_CHANGED" || e.Shift == nil || e.Shift.ID != l.shift.ID || e.Shift.SignedUpCount != 1 {
		t.Fatalf("first event %+v", e)
	}
	if e2 := ws.nextEvent("1", "picketLineEvents"); e2.Kind != "SHIFT_FILLED" || e2.Seq != e.Seq+1 {
		t.Fatalf("second event %+v after seq %d", e2, e.Seq)
	}
	s.do(t, l.captain.Token, `mutation($l: ID!) { postAnnouncement(input: {picketLineId: $l, body: "Bring water"}) { id } }`, map[string]any{"l": l.line.ID}, nil)
	if e3 := ws.nextEvent("1", "picketLineEvents"); e3.Kind != "ANNOUNCEMENT" || e3.Announcement == nil || e3.Announcement.Body != "Bring water" {
		t.Fatalf("announcement event %+v", e3)
	}
}

func TestOnlyThoseTakingPartMayFollowALine(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	l := s.liveLine(t, 5)
	outsider := s.addMember(t, db.RoleMember)
	ws := s.dialWS(t, nil)
	ws.init(outsider.Token)
	ws.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID})
	m := ws.next()
	if m.Type != "next" && m.Type != "error" || !strings.Contains(string(m.Payload), "FORBIDDEN") {
		t.Fatalf("outsider's subscription: %s %s", m.Type, m.Payload)
	}
	// Once signed up, the same member may follow the line.
	s.signUpOverHTTP(t, outsider.Token, l.shift.ID)
	ws.subscribe("2", lineEventsSub, map[string]any{"line": l.line.ID, "after": s.lineCursor(t, outsider.Token, l.line.ID)})
	other := s.addMember(t, db.RoleMember)
	s.signUpOverHTTP(t, other.Token, l.shift.ID)
	for {
		m := ws.next()
		if m.ID == "2" {
			if m.Type != "next" || !strings.Contains(string(m.Payload), "SIGNUP_CHANGED") {
				t.Fatalf("member's subscription: %s %s", m.Type, m.Payload)
			}
			break
		}
	}
}

func TestResumeAfterRestartDeliversMissedEventsOnceInOrder(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	s := startServerWith(t, dbURL)
	l := s.liveLine(t, 50)
	ws := s.dialWS(t, nil)
	ws.init(l.captain.Token)
	ws.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID, "after": s.lineCursor(t, l.captain.Token, l.line.ID)})
	first := s.addMember(t, db.RoleMember)
	s.signUpOverHTTP(t, first.Token, l.shift.ID)
	seen := ws.nextEvent("1", "picketLineEvents")

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	ws.expectClose(realtime.CloseServiceRestart)
	// While no server runs, members keep signing up through another path.
	k := s.kit(t)
	for range 5 {
		k.SignUp(k.NewMember(), l.shift)
	}

	s2 := startServerWith(t, dbURL)
	ws2 := s2.dialWS(t, nil)
	ws2.init(s2.mintToken(t, l.captain.ID))
	ws2.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID, "after": seen.Cursor})
	for i := 1; i <= 5; i++ {
		e := ws2.nextEvent("1", "picketLineEvents")
		if e.Seq != seen.Seq+i || e.Kind != "SIGNUP_CHANGED" {
			t.Fatalf("replayed event %d: %+v, want seq %d", i, e, seen.Seq+i)
		}
	}
	// Then live, with no gap and no repeat at the seam.
	late := s2.addMember(t, db.RoleMember)
	s2.signUpOverHTTP(t, late.Token, l.shift.ID)
	if e := ws2.nextEvent("1", "picketLineEvents"); e.Seq != seen.Seq+6 {
		t.Fatalf("live event after replay: %+v, want seq %d", e, seen.Seq+6)
	}
}

func TestTwoServersOnOneDatabaseDeliverTheSameEvents(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	a := startServerWith(t, dbURL)
	b := startServerWith(t, dbURL)
	l := a.liveLine(t, 10)
	onA, onB := a.dialWS(t, nil), b.dialWS(t, nil)
	onA.init(l.captain.Token)
	onB.init(l.captain.Token)
	cursor := a.lineCursor(t, l.captain.Token, l.line.ID)
	onA.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID, "after": cursor})
	onB.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID, "after": cursor})
	// The change goes through server B; A learns of it through PostgreSQL.
	m := a.addMember(t, db.RoleMember)
	b.signUpOverHTTP(t, m.Token, l.shift.ID)
	ea, eb := onA.nextEvent("1", "picketLineEvents"), onB.nextEvent("1", "picketLineEvents")
	if ea.Seq != eb.Seq || ea.Kind != "SIGNUP_CHANGED" || ea.Cursor != eb.Cursor {
		t.Fatalf("server A delivered %+v, server B %+v", ea, eb)
	}
}

func TestMyEventsTellOfWaitlistPromotion(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	l := s.liveLine(t, 1)
	holder, waiting := s.addMember(t, db.RoleMember), s.addMember(t, db.RoleMember)
	held := s.signUpOverHTTP(t, holder.Token, l.shift.ID)
	waitlisted := s.signUpOverHTTP(t, waiting.Token, l.shift.ID)
	ws := s.dialWS(t, nil)
	ws.init(waiting.Token)
	ws.subscribe("me", myEventsSub, map[string]any{"after": s.myCursor(t, waiting.Token)})
	s.do(t, holder.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`, map[string]any{"id": held}, nil)
	e := ws.nextEvent("me", "myEvents")
	if e.Kind != "WAITLIST_PROMOTED" || e.Signup == nil || e.Signup.ID != waitlisted || e.Signup.Status != "SIGNED_UP" {
		t.Fatalf("my event %+v", e)
	}
}

func TestWebsocketCloseCodes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)

	t.Run("bad token closes 4403", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.send(wsMsg{Type: "connection_init", Payload: []byte(`{"authorization":"Bearer nonsense"}`)})
		ws.expectClose(realtime.CloseForbidden)
	})
	t.Run("subscribe before init closes 4401", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.subscribe("1", myEventsSub, nil)
		ws.expectClose(realtime.CloseUnauthorized)
	})
	t.Run("second init closes 4429", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.init(m.Token)
		ws.send(wsMsg{Type: "connection_init"})
		ws.expectClose(realtime.CloseTooManyInits)
	})
	t.Run("duplicate id closes 4409", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.init(m.Token)
		ws.subscribe("same", myEventsSub, nil)
		ws.subscribe("same", myEventsSub, nil)
		ws.expectClose(realtime.CloseSubscriberExists)
	})
	t.Run("malformed message closes 4400", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.sendRaw(`{"type":`)
		ws.expectClose(realtime.CloseBadRequest)
	})
	t.Run("a message over 64 KiB closes 1009", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.init(m.Token)
		ws.sendRaw(`{"type":"subscribe","id":"big","payload":{"query":"` + strings.Repeat(" ", 65<<10) + `"}}`)
		ws.expectClose(websocket.CloseMessageTooBig)
	})
	t.Run("no init within 5s closes 4408", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.expectClose(realtime.CloseInitTimeout)
	})
	t.Run("logout closes 4403", func(t *testing.T) {
		token := s.mintToken(t, m.ID)
		ws := s.dialWS(t, nil)
		ws.init(token)
		ws.subscribe("1", myEventsSub, nil)
		s.do(t, token, `mutation { logout }`, nil, nil)
		ws.expectClose(realtime.CloseForbidden)
	})
	t.Run("token expiry closes 4403", func(t *testing.T) {
		token, _, err := s.tokens.IssueTTL(m.ID, s.kit(t).Session(m.ID).ID, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ws := s.dialWS(t, nil)
		ws.init(token)
		ws.expectClose(realtime.CloseForbidden)
	})
	t.Run("too many subscriptions are refused", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.init(m.Token)
		for i := range 50 {
			ws.subscribe(string(rune('A'+i/26))+string(rune('a'+i%26)), myEventsSub, nil)
		}
		ws.subscribe("one-too-many", myEventsSub, nil)
		msg := ws.next()
		if msg.Type != "error" || msg.ID != "one-too-many" {
			t.Fatalf("51st subscription: %s %s %s", msg.Type, msg.ID, msg.Payload)
		}
	})
}

func TestWebsocketUpgradeChecks(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["ALLOWED_ORIGINS"] = "https://app.example.org" })
	dial := func(t *testing.T, subprotocols []string, origin string) int {
		t.Helper()
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: 5 * time.Second}
		conn, resp, err := d.Dial(s.wsURL(), h)
		if err == nil {
			conn.Close()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}
	for _, c := range []struct {
		name         string
		subprotocols []string
		origin       string
		want         int
	}{
		{"no subprotocol is refused", nil, "", http.StatusBadRequest},
		{"the legacy subprotocol is refused", []string{"graphql-ws"}, "", http.StatusBadRequest},
		{"a foreign origin is forbidden", []string{"graphql-transport-ws"}, "https://evil.example.com", http.StatusForbidden},
		{"an allowed origin is taken", []string{"graphql-transport-ws"}, "https://app.example.org", http.StatusSwitchingProtocols},
		{"a native app without origin is taken", []string{"graphql-transport-ws"}, "", http.StatusSwitchingProtocols},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := dial(t, c.subprotocols, c.origin); got != c.want {
				t.Fatalf("HTTP %d, want %d", got, c.want)
			}
		})
	}
}

func TestShutdownClosesWebsocketsWith1012AndTurnsNotReadyFirst(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["UNREADY_DELAY_SECONDS"] = "1" })
	m := s.addMember(t, db.RoleMember)
	ws := s.dialWS(t, nil)
	ws.init(m.Token)
	ws.subscribe("me", myEventsSub, nil)
	mark := s.log.mark()
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	// Readiness is withdrawn, and the server says so, before it waits out
	// UNREADY_DELAY_SECONDS and closes the sockets.
	s.log.waitAfter(t, mark, waitTimeout, func(l string) bool { return strings.Contains(l, `msg="shutting down"`) })
	resp, err := s.http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatalf("/readyz unreachable once shutting down: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz answers %d once shutting down, want 503", resp.StatusCode)
	}
	select {
	case code := <-ws.closed:
		t.Fatalf("the socket closed (%d) before readiness was withdrawn", code)
	default:
	}
	ws.expectClose(realtime.CloseServiceRestart)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop within the drain timeout")
	}
}

func TestEventCursorsAreOnlyTheMembersOwn(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	l := s.liveLine(t, 5)
	m := s.addMember(t, db.RoleMember)
	t.Run("a member sees their own event cursor and nobody else's", func(t *testing.T) {
		var out struct {
			PicketLine struct {
				Captains []struct{ EventCursor *string } `json:"captains"`
			} `json:"picketLine"`
			Me struct{ EventCursor *string } `json:"me"`
		}
		s.do(t, m.Token, `query($l: ID!) { picketLine(id: $l) { captains { eventCursor } } me { eventCursor } }`, map[string]any{"l": l.line.ID}, &out)
		if out.Me.EventCursor == nil {
			t.Error("a member cannot see their own event cursor")
		}
		if len(out.PicketLine.Captains) != 1 || out.PicketLine.Captains[0].EventCursor != nil {
			t.Errorf("a member sees another member's event cursor: %+v", out.PicketLine.Captains)
		}
	})
	t.Run("a malformed cursor is bad input", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.init(m.Token)
		ws.subscribe("bad", myEventsSub, map[string]any{"after": "not-a-cursor"})
		if msg := ws.next(); msg.ID != "bad" || !strings.Contains(string(msg.Payload), "BAD_USER_INPUT") {
			t.Fatalf("a malformed cursor: %s %s", msg.Type, msg.Payload)
		}
	})
}
