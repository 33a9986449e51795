package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/realtime"
)

// twoReplicas starts two servers on one database: a change made through
// the first must reach the sockets of the second.
func twoReplicas(t *testing.T) (a, b *testServer) {
	t.Helper()
	dbURL := dbtest.NewDatabase(t)
	return startServerWith(t, dbURL), startServerWith(t, dbURL)
}

// endsForbidden reads the socket's messages until subscription id ends,
// and fails unless it ends with a FORBIDDEN error having delivered none of
// the event kinds refused.
func (c *wsClient) endsForbidden(id string, refused ...string) {
	c.t.Helper()
	for {
		m := c.next()
		if m.ID != id {
			continue
		}
		switch m.Type {
		case "next":
			var body struct {
				Data map[string]event `json:"data"`
			}
			json.Unmarshal(m.Payload, &body)
			for _, e := range body.Data {
				for _, kind := range refused {
					if e.Kind == kind {
						c.t.Fatalf("delivered a %s event after the right to it ended: %s", kind, m.Payload)
					}
				}
			}
		case "error":
			var errs []gqlError
			if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) != 1 || errs[0].Extensions.Code != "FORBIDDEN" {
				c.t.Fatalf("subscription %s ended with %s, want one FORBIDDEN error", id, m.Payload)
			}
			return
		default:
			c.t.Fatalf("subscription %s ended with %s %s, want a FORBIDDEN error", id, m.Type, m.Payload)
		}
	}
}

// stillServes runs a query on the socket and fails unless it is answered:
// the socket outlived the subscription that ended.
func (c *wsClient) stillServes(id string) {
	c.t.Helper()
	c.subscribe(id, `{ me { id } }`, nil)
	answered := false
	for {
		m := c.next()
		switch {
		case m.ID != id:
		case m.Type == "next" && !answered:
			answered = true
		case m.Type == "complete" && answered:
			return
		default:
			c.t.Fatalf("query on the socket: %s %s", m.Type, m.Payload)
		}
	}
}

// announce posts an announcement on a line through s.
func (s *testServer) announce(t *testing.T, captain *member, lineID, body string) {
	t.Helper()
	s.do(t, captain.Token, `mutation($l: ID!, $b: String!) { postAnnouncement(input: {picketLineId: $l, body: $b}) { id } }`,
		map[string]any{"l": lineID, "b": body}, nil)
}

// follow opens a socket on s following the line as m, and m's own events
// beside it, and returns once the line's events arrive.
func (s *testServer) follow(t *testing.T, m, captain *member, lineID string) *wsClient {
	t.Helper()
	ws := s.dialWS(t, nil)
	ws.init(m.Token)
	ws.subscribe("line", lineEventsSub, map[string]any{"line": lineID, "after": s.lineCursor(t, m.Token, lineID)})
	ws.subscribe("mine", myEventsSub, nil)
	s.announce(t, captain, lineID, "Welcome to the line")
	if e := ws.nextEvent("line", "picketLineEvents"); e.Kind != "ANNOUNCEMENT" {
		t.Fatalf("first event %+v, want the announcement", e)
	}
	return ws
}

func TestRevokedSessionsCloseTheirSocketsOnEveryReplica(t *testing.T) {
	t.Parallel()
	a, b := twoReplicas(t)
	t.Run("logout", func(t *testing.T) {
		m := a.addMember(t, db.RoleMember)
		ws := b.dialWS(t, nil)
		ws.init(m.Token)
		ws.subscribe("1", myEventsSub, nil)
		a.do(t, m.Token, `mutation { logout }`, nil, nil)
		ws.expectClose(realtime.CloseForbidden)
	})
	t.Run("refresh token reused", func(t *testing.T) {
		m := a.kit(t).Member(db.RoleMember)
		sess := a.kit(t).Session(m.ID)
		ws := b.dialWS(t, nil)
		ws.init(a.token(t, m.ID, sess.ID))
		ws.subscribe("1", myEventsSub, nil)
		const refresh = `mutation($r: String!) { refreshSession(refreshToken: $r) { accessToken } }`
		a.do(t, "", refresh, map[string]any{"r": sess.RefreshToken}, nil)
		a.fails(t, "", refresh, map[string]any{"r": sess.RefreshToken}, "UNAUTHENTICATED")
		ws.expectClose(realtime.CloseForbidden)
	})
	t.Run("other sessions of the member stay", func(t *testing.T) {
		m := a.addMember(t, db.RoleMember)
		other := b.dialWS(t, nil)
		other.init(b.mintToken(t, m.ID))
		ws := b.dialWS(t, nil)
		ws.init(m.Token)
		a.do(t, m.Token, `mutation { logout }`, nil, nil)
		ws.expectClose(realtime.CloseForbidden)
		other.stillServes("q")
	})
}

func TestLosingTheRightToALineEndsItsSubscriptionOnEveryReplica(t *testing.T) {
	t.Parallel()
	a, b := twoReplicas(t)
	t.Run("sign-up cancelled", func(t *testing.T) {
		l := a.liveLine(t, 5)
		m := a.addMember(t, db.RoleMember)
		signup := a.signUpOverHTTP(t, m.Token, l.shift.ID)
		ws := b.follow(t, m, l.captain, l.line.ID)
		a.do(t, m.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`, map[string]any{"id": signup}, nil)
		a.announce(t, l.captain, l.line.ID, "Meet at the north gate")
		ws.endsForbidden("line", "ANNOUNCEMENT")
		ws.stillServes("after")
	})
	t.Run("shift cancelled", func(t *testing.T) {
		l := a.liveLine(t, 5)
		m := a.addMember(t, db.RoleMember)
		a.signUpOverHTTP(t, m.Token, l.shift.ID)
		ws := b.follow(t, m, l.captain, l.line.ID)
		a.do(t, l.captain.Token, `mutation($id: ID!) { cancelShift(id: $id) { id } }`, map[string]any{"id": l.shift.ID}, nil)
		a.announce(t, l.captain, l.line.ID, "Shift moved indoors")
		ws.endsForbidden("line", "ANNOUNCEMENT")
		ws.stillServes("after")
	})
	t.Run("captaincy removed", func(t *testing.T) {
		l := a.liveLine(t, 5)
		other := a.captain(t, l.line)
		ws := b.follow(t, other, l.captain, l.line.ID)
		staff := a.addMember(t, db.RoleCoordinator)
		a.do(t, staff.Token, `mutation($l: ID!, $m: ID!) { removeCaptain(picketLineId: $l, memberId: $m) }`,
			map[string]any{"l": l.line.ID, "m": other.ID}, nil)
		a.announce(t, l.captain, l.line.ID, "New captain on the line")
		ws.endsForbidden("line", "ANNOUNCEMENT")
		ws.stillServes("after")
	})
	t.Run("a cursor ahead of the line is refused", func(t *testing.T) {
		l := a.liveLine(t, 5)
		ws := b.dialWS(t, nil)
		ws.init(l.captain.Token)
		var latest int64
		if err := a.kit(t).Pool.QueryRow(a.kit(t).Ctx, `SELECT event_seq FROM picket_lines WHERE id = $1`, l.line.ID).Scan(&latest); err != nil {
			t.Fatal(err)
		}
		// Past the latest event, it would skip what comes next, among it
		// a change that may end the right to follow the line.
		ws.subscribe("ahead", lineEventsSub, map[string]any{"line": l.line.ID, "after": db.LineCursor(latest + 3)})
		msg := ws.next()
		var body struct {
			Errors []gqlError `json:"errors"`
		}
		json.Unmarshal(msg.Payload, &body)
		if len(body.Errors) != 1 || body.Errors[0].Extensions.Code != "BAD_USER_INPUT" || body.Errors[0].Extensions.Field != "after" {
			t.Fatalf("a cursor ahead of the line: %s %s, want BAD_USER_INPUT on after", msg.Type, msg.Payload)
		}
	})
	t.Run("a member keeps a line while one sign-up on it remains", func(t *testing.T) {
		l := a.liveLine(t, 5)
		second := a.kit(t).ShiftOn(l.line, 72*time.Hour, 5)
		m := a.addMember(t, db.RoleMember)
		first := a.signUpOverHTTP(t, m.Token, l.shift.ID)
		a.signUpOverHTTP(t, m.Token, second.ID)
		ws := b.follow(t, m, l.captain, l.line.ID)
		a.do(t, m.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`, map[string]any{"id": first}, nil)
		a.announce(t, l.captain, l.line.ID, "Still on")
		for {
			if e := ws.nextEvent("line", "picketLineEvents"); e.Kind == "ANNOUNCEMENT" {
				break
			}
		}
	})
}

func TestRoleChangesReachOpenSocketsOnEveryReplica(t *testing.T) {
	t.Parallel()
	a, b := twoReplicas(t)
	admin := a.addMember(t, db.RoleAdmin)
	const createJobAction = `mutation { createJobAction(input: {name: "Walkout", kind: STRIKE, employer: "Acme", startsAt: "2030-01-01T00:00:00Z"}) { id } }`
	t.Run("demoted by an admin", func(t *testing.T) {
		l := a.liveLine(t, 5)
		c := a.addMember(t, db.RoleCoordinator)
		ws := b.follow(t, c, l.captain, l.line.ID)
		a.do(t, admin.Token, `mutation($m: ID!) { setMemberRole(memberId: $m, role: MEMBER) { role } }`, map[string]any{"m": c.ID}, nil)
		a.announce(t, l.captain, l.line.ID, "Staff only")
		ws.endsForbidden("line", "ANNOUNCEMENT")
		// The socket's next operation runs as a member.
		ws.subscribe("create", createJobAction, nil)
		for {
			m := ws.next()
			if m.ID != "create" {
				continue
			}
			var body struct {
				Errors []gqlError `json:"errors"`
			}
			json.Unmarshal(m.Payload, &body)
			if m.Type != "next" || len(body.Errors) != 1 || body.Errors[0].Extensions.Code != "FORBIDDEN" {
				t.Fatalf("createJobAction after demotion: %s %s", m.Type, m.Payload)
			}
			break
		}
	})
	t.Run("an open subscription's next events show what the new role may see", func(t *testing.T) {
		l := a.liveLine(t, 5)
		c := a.addMember(t, db.RoleCoordinator)
		// Signed up on the line, the member may still follow it once made
		// a member; only what the events show changes.
		a.signUpOverHTTP(t, c.Token, l.shift.ID)
		ws := b.dialWS(t, nil)
		ws.init(c.Token)
		const withContacts = `subscription($line: ID!, $after: String) {
  picketLineEvents(picketLineId: $line, after: $after) { seq kind shift { signups { edges { node { member { id email } } } } } }
}`
		ws.subscribe("line", withContacts, map[string]any{"line": l.line.ID, "after": b.lineCursor(t, c.Token, l.line.ID)})
		// othersEmail signs a member up and returns the email the next
		// sign-up event shows of them, nil when it shows none or does not
		// show their sign-up at all (a member sees only their own).
		othersEmail := func(t *testing.T) *string {
			t.Helper()
			m := a.addMember(t, db.RoleMember)
			a.signUpOverHTTP(t, m.Token, l.shift.ID)
			for {
				msg := ws.next()
				var body struct {
					Data struct {
						PicketLineEvents struct {
							Kind  string
							Shift *struct {
								Signups struct {
									Edges []struct {
										Node struct {
											Member struct {
												ID    string
												Email *string
											}
										}
									}
								}
							}
						}
					}
				}
				if msg.ID != "line" || msg.Type != "next" || json.Unmarshal(msg.Payload, &body) != nil {
					t.Fatalf("got %s %s", msg.Type, msg.Payload)
				}
				e := body.Data.PicketLineEvents
				if e.Kind != "SIGNUP_CHANGED" || e.Shift == nil {
					continue
				}
				for _, edge := range e.Shift.Signups.Edges {
					if edge.Node.Member.ID == m.ID {
						return edge.Node.Member.Email
					}
				}
				return nil
			}
		}
		if othersEmail(t) == nil {
			t.Fatal("a coordinator is shown no other member's email")
		}
		a.do(t, admin.Token, `mutation($m: ID!) { setMemberRole(memberId: $m, role: MEMBER) { role } }`, map[string]any{"m": c.ID}, nil)
		if email := othersEmail(t); email != nil {
			t.Errorf("an event after the demotion still shows another member's email, %s", *email)
		}
	})
	t.Run("demoted from the command line", func(t *testing.T) {
		l := a.liveLine(t, 5)
		c := a.addMember(t, db.RoleCoordinator)
		ws := b.follow(t, c, l.captain, l.line.ID)
		if out, err := a.cli(t, "member", "role", "--email", c.Email, "--role", "member"); err != nil {
			t.Fatalf("member role: %v\n%s", err, out)
		}
		ws.endsForbidden("line")
		ws.stillServes("after")
	})
	t.Run("refusals", func(t *testing.T) {
		m := a.addMember(t, db.RoleMember)
		staff := a.addMember(t, db.RoleCoordinator)
		const set = `mutation($m: ID!, $r: Role!) { setMemberRole(memberId: $m, role: $r) { id } }`
		a.fails(t, staff.Token, set, map[string]any{"m": m.ID, "r": "ADMIN"}, "FORBIDDEN")
		a.fails(t, m.Token, set, map[string]any{"m": m.ID, "r": "ADMIN"}, "FORBIDDEN")
		a.fails(t, admin.Token, set, map[string]any{"m": admin.ID, "r": "MEMBER"}, "FORBIDDEN")
		a.fails(t, admin.Token, set, map[string]any{"m": "5d0c7c44-5a6e-4bd5-9d56-000000000000", "r": "MEMBER"}, "NOT_FOUND")
		if out, err := a.cli(t, "member", "role", "--email", "nobody@example.org", "--role", "admin"); err == nil {
			t.Errorf("member role for nobody succeeded: %s", out)
		}
	})
}
