package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

// The callers of the authorization matrix.
type callerKind int

const (
	anonymous callerKind = iota
	plainMember
	captainHere  // captain of the line the operation is about
	captainThere // captain of another line of the same job action
	coordinator
	admin
	numCallers
)

func (k callerKind) String() string {
	return [...]string{"anonymous", "member", "captain of this line", "captain of another line", "coordinator", "admin"}[k]
}

// authzFixture is the world the matrix runs in: one job action with two
// lines, a captain for each, and the callers.
type authzFixture struct {
	s       *testServer
	ja      *db.JobAction
	line    *db.PicketLine
	callers [numCallers]*member
	shifts  int
}

// freshShift makes a shift on the fixture's line that overlaps no other
// shift the fixture made.
func (f *authzFixture) freshShift(t *testing.T) *db.Shift {
	f.shifts++
	return f.s.kit(t).ShiftOn(f.line, 48*time.Hour+time.Duration(f.shifts)*5*time.Hour, 10)
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	f := &authzFixture{s: s}
	f.ja = k.JobAction()
	f.line = k.LineOf(f.ja)
	otherLine := k.LineOf(f.ja)
	f.callers[plainMember] = s.addMember(t, db.RoleMember)
	f.callers[captainHere] = s.captain(t, f.line)
	f.callers[captainThere] = s.captain(t, otherLine)
	f.callers[coordinator] = s.addMember(t, db.RoleCoordinator)
	f.callers[admin] = s.addMember(t, db.RoleAdmin)

	const (
		ok     = ""
		unauth = "UNAUTHENTICATED"
		forbid = "FORBIDDEN"
	)
	// Who may do what: anonymous, member, captain here, captain there, coordinator, admin.
	var (
		staffOnly   = [numCallers]string{unauth, forbid, forbid, forbid, ok, ok}
		lineManager = [numCallers]string{unauth, forbid, ok, forbid, ok, ok}
		anyMember   = [numCallers]string{unauth, ok, ok, ok, ok, ok}
		adminOnly   = [numCallers]string{unauth, forbid, forbid, forbid, forbid, ok}
	)
	cases := []struct {
		name string
		want [numCallers]string
		// op returns the operation and its variables; it may set up what
		// the operation needs first.
		op func(t *testing.T) (string, map[string]any)
	}{
		{"createJobAction", staffOnly, func(t *testing.T) (string, map[string]any) {
			return `mutation($in: CreateJobActionInput!) { createJobAction(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"name": "Strike", "kind": "STRIKE", "employer": "Employer", "startsAt": ts(time.Now())}}
		}},
		{"updateJobAction", staffOnly, func(t *testing.T) (string, map[string]any) {
			return `mutation($in: UpdateJobActionInput!) { updateJobAction(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"id": f.ja.ID, "employer": "Chinook Health"}}
		}},
		{"endJobAction", staffOnly, func(t *testing.T) (string, map[string]any) {
			return `mutation($id: ID!) { endJobAction(id: $id) { id status } }`, map[string]any{"id": s.kit(t).JobAction().ID}
		}},
		{"createPicketLine", staffOnly, func(t *testing.T) (string, map[string]any) {
			return `mutation($in: CreatePicketLineInput!) { createPicketLine(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"jobActionId": f.ja.ID, "name": "Gate", "address": "1 Main St", "latitude": 53.5, "longitude": -113.5}}
		}},
		{"updatePicketLine", staffOnly, func(t *testing.T) (string, map[string]any) {
			return `mutation($in: UpdatePicketLineInput!) { updatePicketLine(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"id": f.line.ID, "geofenceMeters": 120}}
		}},
		{"assignCaptain", staffOnly, func(t *testing.T) (string, map[string]any) {
			return `mutation($l: ID!, $m: ID!) { assignCaptain(picketLineId: $l, memberId: $m) { assignedAt } }`,
				map[string]any{"l": f.line.ID, "m": s.kit(t).Member(db.RoleMember).ID}
		}},
		{"setMemberRole", adminOnly, func(t *testing.T) (string, map[string]any) {
			return `mutation($m: ID!) { setMemberRole(memberId: $m, role: COORDINATOR) { role } }`,
				map[string]any{"m": s.kit(t).Member(db.RoleMember).ID}
		}},
		{"removeCaptain", staffOnly, func(t *testing.T) (string, map[string]any) {
			c := s.kit(t).CaptainOf(f.line)
			return `mutation($l: ID!, $m: ID!) { removeCaptain(picketLineId: $l, memberId: $m) }`, map[string]any{"l": f.line.ID, "m": c.MemberID}
		}},
		{"createShift", lineManager, func(t *testing.T) (string, map[string]any) {
			f.shifts++
			start := time.Now().Add(48*time.Hour + time.Duration(f.shifts)*5*time.Hour)
			return `mutation($in: CreateShiftInput!) { createShift(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"picketLineId": f.line.ID, "startsAt": ts(start), "endsAt": ts(start.Add(time.Hour)), "capacity": 3}}
		}},
		{"updateShift", lineManager, func(t *testing.T) (string, map[string]any) {
			return `mutation($in: UpdateShiftInput!) { updateShift(input: $in) { id capacity } }`,
				map[string]any{"in": map[string]any{"id": f.freshShift(t).ID, "capacity": 12}}
		}},
		{"cancelShift", lineManager, func(t *testing.T) (string, map[string]any) {
			return `mutation($id: ID!) { cancelShift(id: $id) { id cancelledAt } }`, map[string]any{"id": f.freshShift(t).ID}
		}},
		{"cancelSignup of another member", lineManager, func(t *testing.T) (string, map[string]any) {
			k := s.kit(t)
			su := k.SignUp(k.NewMember(), f.freshShift(t))
			return `mutation($id: ID!) { cancelSignup(signupId: $id) { id status } }`, map[string]any{"id": su.ID}
		}},
		{"postAnnouncement to a line", lineManager, func(t *testing.T) (string, map[string]any) {
			return `mutation($in: PostAnnouncementInput!) { postAnnouncement(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"picketLineId": f.line.ID, "body": "Stay safe."}}
		}},
		{"postAnnouncement to a job action", staffOnly, func(t *testing.T) (string, map[string]any) {
			return `mutation($in: PostAnnouncementInput!) { postAnnouncement(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"jobActionId": f.ja.ID, "body": "Stay safe."}}
		}},
		{"signUpForShift", anyMember, func(t *testing.T) (string, map[string]any) {
			return `mutation($s: ID!) { signUpForShift(shiftId: $s) { id status } }`, map[string]any{"s": f.freshShift(t).ID}
		}},
		{"cancelSignup of one's own", anyMember, nil}, // below: needs the caller
		{"updateMyContact", anyMember, func(t *testing.T) (string, map[string]any) {
			return `mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id } }`, map[string]any{"in": map[string]any{"phone": "+1 780 555 0000"}}
		}},
		{"logout", anyMember, func(t *testing.T) (string, map[string]any) {
			return `mutation { logout }`, nil
		}},
		{"me", anyMember, func(t *testing.T) (string, map[string]any) { return `{ me { id } }`, nil }},
		{"jobActions", anyMember, func(t *testing.T) (string, map[string]any) { return `{ jobActions { edges { node { id } } } }`, nil }},
		{"jobAction", anyMember, func(t *testing.T) (string, map[string]any) {
			return `query($id: ID!) { jobAction(id: $id) { id } }`, map[string]any{"id": f.ja.ID}
		}},
		{"picketLine", anyMember, func(t *testing.T) (string, map[string]any) {
			return `query($id: ID!) { picketLine(id: $id) { id } }`, map[string]any{"id": f.line.ID}
		}},
		{"shift", anyMember, func(t *testing.T) (string, map[string]any) {
			return `query($id: ID!) { shift(id: $id) { id } }`, map[string]any{"id": f.freshShift(t).ID}
		}},
		{"myShifts", anyMember, func(t *testing.T) (string, map[string]any) { return `{ myShifts { edges { node { id } } } }`, nil }},
		{"openShifts", anyMember, func(t *testing.T) (string, map[string]any) { return `{ openShifts { edges { cursor } } }`, nil }},
	}
	for _, c := range cases {
		for k := range numCallers {
			t.Run(fmt.Sprintf("%s/%s", c.name, k), func(t *testing.T) {
				// Every call has a session of its own, so logout ends
				// nothing else.
				token := ""
				caller := f.callers[k]
				if caller != nil {
					token = s.mintToken(t, caller.ID)
				}
				var query string
				var vars map[string]any
				if c.op != nil {
					query, vars = c.op(t)
				} else {
					// Cancelling one's own sign-up: the anonymous caller
					// tries a member's.
					owner := caller
					if owner == nil {
						owner = f.callers[plainMember]
					}
					su := s.kit(t).SignUp(owner.Actor(), f.freshShift(t))
					query, vars = `mutation($id: ID!) { cancelSignup(signupId: $id) { id status } }`, map[string]any{"id": su.ID}
				}
				r := s.gql(t, token, query, vars)
				want := c.want[k]
				switch {
				case want == ok && (r.Status != 200 || len(r.Errors) > 0 || !r.HasData()):
					t.Fatalf("%s as %s: got %s, want success", c.name, k, r)
				case want != ok && (r.Code() != want || !r.NoData()):
					t.Fatalf("%s as %s: got %s, want %s", c.name, k, r, want)
				case want != ok && r.Status != 200:
					// Refusals are GraphQL errors, not HTTP ones: a request
					// without a token is not a bad token.
					t.Fatalf("%s as %s: HTTP %d, want 200 with an error", c.name, k, r.Status)
				}
			})
		}
	}
}

// Roles are read on every request: a coordinator who is made a member
// loses the coordinator's powers at once, with the same token.
func TestRoleChangesTakeEffectAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.addMember(t, db.RoleCoordinator)
	create := `mutation { createJobAction(input: {name: "Strike", kind: STRIKE, employer: "E", startsAt: "2026-01-01T00:00:00Z"}) { id } }`
	s.do(t, c.Token, create, nil, nil)
	s.sql(t, `UPDATE members SET role = 'MEMBER' WHERE id = $1`, c.ID)
	s.fails(t, c.Token, create, nil, "FORBIDDEN")
	var me struct{ Me memberJSON }
	s.do(t, c.Token, `{ me { id role } }`, nil, &me)
	if me.Me.Role != "MEMBER" {
		t.Fatalf("me.role = %s after the change, want MEMBER", me.Me.Role)
	}
}
