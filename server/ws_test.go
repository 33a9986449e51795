package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/realtime"
)

// liveLine is a line with one shift, its coordinator and captain.
type liveLine struct {
	coordinator, captain *member
	lineID, shiftID      string
}

func (s *testServer) liveLine(t *testing.T, capacity int) liveLine {
	t.Helper()
	store, _ := s.direct(t)
	ctx := context.Background()
	l := liveLine{coordinator: s.addMember(t, db.RoleCoordinator), captain: s.addMember(t, db.RoleMember)}
	staff := l.coordinator.Actor()
	ja, err := store.CreateJobAction(ctx, staff, db.NewJobAction{Name: "Strike", Kind: db.KindStrike, Employer: "Employer", StartsAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	line, err := store.CreatePicketLine(ctx, staff, db.NewPicketLine{JobActionID: ja.ID, Name: "Gate", Address: "1 Main St", Latitude: 53.5, Longitude: -113.5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AssignCaptain(ctx, staff, line.ID, l.captain.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(48 * time.Hour)
	sh, err := store.CreateShift(ctx, staff, db.NewShift{PicketLineID: line.ID, StartsAt: start, EndsAt: start.Add(4 * time.Hour), Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	l.lineID, l.shiftID = line.ID, sh.ID
	return l
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
	ws.subscribe("1", lineEventsSub, map[string]any{"line": l.lineID, "after": s.lineCursor(t, l.captain.Token, l.lineID)})

	m := s.addMember(t, db.RoleMember)
	s.signUpOverHTTP(t, m.Token, l.shiftID)
	e := ws.nextEvent("1", "picketLineEvents")
	if e.Kind != "SIGNUP_CHANGED" || e.Shift == nil || e.Shift.ID != l.shiftID || e.Shift.SignedUpCount != 1 {
		t.Fatalf("first event %+v", e)
	}
	if e2 := ws.nextEvent("1", "picketLineEvents"); e2.Kind != "SHIFT_FILLED" || e2.Seq != e.Seq+1 {
		t.Fatalf("second event %+v after seq %d", e2, e.Seq)
	}
	s.do(t, l.captain.Token, `mutation($l: ID!) { postAnnouncement(input: {picketLineId: $l, body: "Bring water"}) { id } }`, map[string]any{"l": l.lineID}, nil)
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
	ws.subscribe("1", lineEventsSub, map[string]any{"line": l.lineID})
	m := ws.next()
	if m.Type != "next" && m.Type != "error" || !strings.Contains(string(m.Payload), "FORBIDDEN") {
		t.Fatalf("outsider's subscription: %s %s", m.Type, m.Payload)
	}
	// Once signed up, the same member may follow the line.
	s.signUpOverHTTP(t, outsider.Token, l.shiftID)
	ws.subscribe("2", lineEventsSub, map[string]any{"line": l.lineID, "after": s.lineCursor(t, outsider.Token, l.lineID)})
	other := s.addMember(t, db.RoleMember)
	s.signUpOverHTTP(t, other.Token, l.shiftID)
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
	ws.subscribe("1", lineEventsSub, map[string]any{"line": l.lineID, "after": s.lineCursor(t, l.captain.Token, l.lineID)})
	first := s.addMember(t, db.RoleMember)
	s.signUpOverHTTP(t, first.Token, l.shiftID)
	seen := ws.nextEvent("1", "picketLineEvents")

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	ws.expectClose(realtime.CloseServiceRestart)
	// While no server runs, members keep signing up through another path.
	store, _ := s.direct(t)
	for range 5 {
		m := s.addMember(t, db.RoleMember)
		if _, err := store.SignUpForShift(context.Background(), m.Actor(), l.shiftID, ""); err != nil {
			t.Fatal(err)
		}
	}

	s2 := startServerWith(t, dbURL)
	ws2 := s2.dialWS(t, nil)
	ws2.init(s2.mintToken(t, l.captain.ID))
	ws2.subscribe("1", lineEventsSub, map[string]any{"line": l.lineID, "after": seen.Cursor})
	for i := 1; i <= 5; i++ {
		e := ws2.nextEvent("1", "picketLineEvents")
		if e.Seq != seen.Seq+i || e.Kind != "SIGNUP_CHANGED" {
			t.Fatalf("replayed event %d: %+v, want seq %d", i, e, seen.Seq+i)
		}
	}
	// Then live, with no gap and no repeat at the seam.
	late := s2.addMember(t, db.RoleMember)
	s2.signUpOverHTTP(t, late.Token, l.shiftID)
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
	cursor := a.lineCursor(t, l.captain.Token, l.lineID)
	onA.subscribe("1", lineEventsSub, map[string]any{"line": l.lineID, "after": cursor})
	onB.subscribe("1", lineEventsSub, map[string]any{"line": l.lineID, "after": cursor})
	// The change goes through server B; A learns of it through PostgreSQL.
	m := a.addMember(t, db.RoleMember)
	b.signUpOverHTTP(t, m.Token, l.shiftID)
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
	held := s.signUpOverHTTP(t, holder.Token, l.shiftID)
	waitlisted := s.signUpOverHTTP(t, waiting.Token, l.shiftID)
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
		store, tokens := s.direct(t)
		sess, err := store.StartSession(context.Background(), db.System, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		token, _, err := tokens.IssueTTL(m.ID, sess.ID, 2*time.Second)
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
	dial := func(subprotocols []string, origin string) int {
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
	if got := dial(nil, ""); got != http.StatusBadRequest {
		t.Fatalf("no subprotocol: HTTP %d, want 400", got)
	}
	if got := dial([]string{"graphql-ws"}, ""); got != http.StatusBadRequest {
		t.Fatalf("legacy subprotocol: HTTP %d, want 400", got)
	}
	if got := dial([]string{"graphql-transport-ws"}, "https://evil.example.com"); got != http.StatusForbidden {
		t.Fatalf("foreign origin: HTTP %d, want 403", got)
	}
	if got := dial([]string{"graphql-transport-ws"}, "https://app.example.org"); got != http.StatusSwitchingProtocols {
		t.Fatalf("allowed origin: HTTP %d, want 101", got)
	}
	if got := dial([]string{"graphql-transport-ws"}, ""); got != http.StatusSwitchingProtocols {
		t.Fatalf("native app without origin: HTTP %d, want 101", got)
	}
}

func TestShutdownClosesWebsocketsWith1012AndTurnsNotReadyFirst(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["UNREADY_DELAY_SECONDS"] = "1" })
	m := s.addMember(t, db.RoleMember)
	ws := s.dialWS(t, nil)
	ws.init(m.Token)
	ws.subscribe("me", myEventsSub, nil)
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	// Readiness is withdrawn while the sockets are still open.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := s.http.Get(s.URL + "/readyz")
		if err != nil {
			t.Fatalf("/readyz unreachable before it turned 503: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never turned 503")
		}
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
	var out struct {
		PicketLine struct {
			Captains []struct{ EventCursor *string } `json:"captains"`
		} `json:"picketLine"`
		Me struct{ EventCursor *string } `json:"me"`
	}
	s.do(t, m.Token, `query($l: ID!) { picketLine(id: $l) { captains { eventCursor } } me { eventCursor } }`, map[string]any{"l": l.lineID}, &out)
	if out.Me.EventCursor == nil {
		t.Fatal("a member cannot see their own event cursor")
	}
	if len(out.PicketLine.Captains) != 1 || out.PicketLine.Captains[0].EventCursor != nil {
		t.Fatalf("a member sees another member's event cursor: %+v", out.PicketLine.Captains)
	}
	ws := s.dialWS(t, nil)
	ws.init(m.Token)
	ws.subscribe("bad", myEventsSub, map[string]any{"after": "not-a-cursor"})
	if msg := ws.next(); msg.ID != "bad" || !strings.Contains(string(msg.Payload), "BAD_USER_INPUT") {
		t.Fatalf("a malformed cursor: %s %s", msg.Type, msg.Payload)
	}
}
