package main

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

// The rows of the authorization matrix: what each kind of caller gets from
// each field, as the code and docs/API.md say.

var (
	// Every member gets null: the id names nothing, or the value is
	// another member's own.
	nullToAll = [numCallers]outcome{unauth, null, null, null, null, null, null, null}
	// Every member is told the id names nothing.
	notFoundToAll = [numCallers]outcome{unauth, notFound, notFound, notFound, notFound, notFound, notFound, notFound}
	// Only the member signed up on the line holds a sign-up of their own there.
	signedUpOnly = [numCallers]outcome{unauth, null, data, null, null, null, null, null}
)

// op builds a row's operation that needs nothing of the caller.
func op(query string, vars map[string]any, steps ...any) func(*testing.T, *member) operation {
	return func(*testing.T, *member) operation {
		o := operation{query: query, vars: vars}
		if len(steps) > 0 {
			o.probe = probe(steps...)
		}
		return o
	}
}

var authzEmails atomic.Int64

func authzRows(f *authzFixture) []authzRow {
	s := f.s
	const cancelSignup = `mutation($id: ID!) { cancelSignup(signupId: $id) { id status } }`
	const signUp = `mutation($s: ID!) { signUpForShift(shiftId: $s) { id status member { id email phone } } }`
	line := map[string]any{"id": f.line.ID}
	rows := []authzRow{
		{field: "Query.me", want: anyMember, op: op(`{ me { id } }`, nil)},
		{field: "Query.jobActions", want: anyMember, op: op(`{ jobActions { edges { node { id } } } }`, nil)},
		{field: "Query.jobAction", want: anyMember, op: op(`query($id: ID!) { jobAction(id: $id) { id } }`, map[string]any{"id": f.ja.ID})},
		{field: "Query.jobAction", note: "an id that names nothing", want: nullToAll, op: op(`query($id: ID!) { jobAction(id: $id) { id } }`, map[string]any{"id": noSuchID})},
		{field: "Query.picketLine", want: anyMember, op: op(`query($id: ID!) { picketLine(id: $id) { id } }`, line)},
		{field: "Query.picketLine", note: "an id that names nothing", want: nullToAll, op: op(`query($id: ID!) { picketLine(id: $id) { id } }`, map[string]any{"id": noSuchID})},
		{field: "Query.shift", want: anyMember, op: func(t *testing.T, _ *member) operation {
			return operation{query: `query($id: ID!) { shift(id: $id) { id } }`, vars: map[string]any{"id": f.freshShift(t).ID}}
		}},
		{field: "Query.shift", note: "an id that names nothing", want: nullToAll, op: op(`query($id: ID!) { shift(id: $id) { id } }`, map[string]any{"id": noSuchID})},
		{field: "Query.myShifts", want: anyMember, op: op(`{ myShifts { edges { node { id } } } }`, nil)},
		{field: "Query.openShifts", want: anyMember, op: op(`{ openShifts { edges { cursor } } }`, nil)},
		{field: "Query.myDevices", want: anyMember, op: op(`{ myDevices { token } }`, nil)},
		{field: "Query.myNotificationPreferences", want: anyMember, op: op(`{ myNotificationPreferences { timeZone } }`, nil)},

		{field: "Mutation.requestLoginCode", want: everyone, op: func(*testing.T, *member) operation {
			return operation{query: `mutation($e: String!) { requestLoginCode(email: $e) }`,
				vars: map[string]any{"e": fmt.Sprintf("stranger%d@example.org", authzEmails.Add(1))}}
		}},
		{field: "Mutation.verifyLoginCode", want: everyone, op: func(t *testing.T, _ *member) operation {
			m := s.kit(t).Member(db.RoleMember)
			return operation{query: `mutation($e: String!, $c: String!) { verifyLoginCode(email: $e, code: $c) { accessToken } }`,
				vars: map[string]any{"e": m.Email, "c": s.requestCode(t, m.Email)}}
		}},
		{field: "Mutation.refreshSession", want: everyone, op: func(t *testing.T, _ *member) operation {
			return operation{query: `mutation($r: String!) { refreshSession(refreshToken: $r) { accessToken } }`,
				vars: map[string]any{"r": s.kit(t).Session(s.kit(t).Member(db.RoleMember).ID).RefreshToken}}
		}},
		{field: "Mutation.logout", want: anyMember, op: op(`mutation { logout }`, nil)},
		{field: "Mutation.updateMyContact", want: anyMember, op: op(`mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"phone": "+1 780 555 0000"}})},
		{field: "Mutation.createJobAction", want: staffOnly, op: op(`mutation($in: CreateJobActionInput!) { createJobAction(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"name": "Strike", "kind": "STRIKE", "employer": "Employer", "startsAt": ts(time.Now())}})},
		{field: "Mutation.updateJobAction", want: staffOnly, op: op(`mutation($in: UpdateJobActionInput!) { updateJobAction(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"id": f.ja.ID, "employer": "Chinook Health"}})},
		{field: "Mutation.endJobAction", want: staffOnly, op: func(t *testing.T, _ *member) operation {
			return operation{query: `mutation($id: ID!) { endJobAction(id: $id) { id status } }`, vars: map[string]any{"id": s.kit(t).JobAction().ID}}
		}},
		{field: "Mutation.createPicketLine", want: staffOnly, op: op(`mutation($in: CreatePicketLineInput!) { createPicketLine(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"jobActionId": f.ja.ID, "name": "Gate", "address": "1 Main St", "latitude": 53.5, "longitude": -113.5}})},
		{field: "Mutation.updatePicketLine", want: staffOnly, op: op(`mutation($in: UpdatePicketLineInput!) { updatePicketLine(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"id": f.line.ID, "geofenceMeters": 120}})},
		{field: "Mutation.assignCaptain", want: staffOnly, op: func(t *testing.T, _ *member) operation {
			return operation{query: `mutation($l: ID!, $m: ID!) { assignCaptain(picketLineId: $l, memberId: $m) { assignedAt } }`,
				vars: map[string]any{"l": f.scratch.ID, "m": s.kit(t).Member(db.RoleMember).ID}}
		}},
		{field: "Mutation.removeCaptain", want: staffOnly, op: func(t *testing.T, _ *member) operation {
			c := s.kit(t).CaptainOf(f.scratch)
			return operation{query: `mutation($l: ID!, $m: ID!) { removeCaptain(picketLineId: $l, memberId: $m) }`, vars: map[string]any{"l": f.scratch.ID, "m": c.MemberID}}
		}},
		{field: "Mutation.setMemberRole", want: adminOnly, op: func(t *testing.T, _ *member) operation {
			return operation{query: `mutation($m: ID!) { setMemberRole(memberId: $m, role: COORDINATOR) { role } }`,
				vars: map[string]any{"m": s.kit(t).Member(db.RoleMember).ID}}
		}},
		{field: "Mutation.createShift", want: lineManager, op: func(*testing.T, *member) operation {
			start := time.Now().Add(48*time.Hour + time.Duration(f.shifts.Add(1))*5*time.Hour)
			return operation{query: `mutation($in: CreateShiftInput!) { createShift(input: $in) { id } }`,
				vars: map[string]any{"in": map[string]any{"picketLineId": f.line.ID, "startsAt": ts(start), "endsAt": ts(start.Add(time.Hour)), "capacity": 3}}}
		}},
		{field: "Mutation.updateShift", want: lineManager, op: func(t *testing.T, _ *member) operation {
			return operation{query: `mutation($in: UpdateShiftInput!) { updateShift(input: $in) { id capacity } }`,
				vars: map[string]any{"in": map[string]any{"id": f.freshShift(t).ID, "capacity": 12}}}
		}},
		{field: "Mutation.cancelShift", want: lineManager, op: func(t *testing.T, _ *member) operation {
			return operation{query: `mutation($id: ID!) { cancelShift(id: $id) { id cancelledAt } }`, vars: map[string]any{"id": f.freshShift(t).ID}}
		}},
		{field: "Mutation.callForCoverage", want: lineManager, op: func(t *testing.T, _ *member) operation {
			return operation{query: `mutation($s: ID!) { callForCoverage(shiftId: $s) }`, vars: map[string]any{"s": f.freshShift(t).ID}}
		}},
		{field: "Mutation.postAnnouncement", note: "to a line", want: lineManager, op: op(`mutation($in: PostAnnouncementInput!) { postAnnouncement(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"picketLineId": f.line.ID, "body": authzBody}})},
		{field: "Mutation.postAnnouncement", note: "to a job action", want: staffOnly, op: op(`mutation($in: PostAnnouncementInput!) { postAnnouncement(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"jobActionId": f.ja.ID, "body": authzBody}})},
		// Signing up would make the caller take part on the line the
		// other rows are about: these sign up on the scratch line.
		{field: "Mutation.signUpForShift", want: anyMember, op: func(t *testing.T, _ *member) operation {
			return operation{query: signUp, vars: map[string]any{"s": f.freshShiftOn(t, f.scratch).ID}}
		}},
		{field: "Mutation.cancelSignup", note: "one's own", want: anyMember, op: func(t *testing.T, caller *member) operation {
			// The anonymous caller tries a member's.
			owner := s.kit(t).NewMember()
			if caller != nil {
				owner = caller.Actor()
			}
			su := s.kit(t).SignUp(owner, f.freshShiftOn(t, f.scratch))
			return operation{query: cancelSignup, vars: map[string]any{"id": su.ID}}
		}},
		{field: "Mutation.cancelSignup", note: "another member's", want: lineManager, op: func(t *testing.T, _ *member) operation {
			k := s.kit(t)
			su := k.SignUp(k.NewMember(), f.freshShift(t))
			return operation{query: cancelSignup, vars: map[string]any{"id": su.ID}}
		}},
		{field: "Mutation.cancelSignup", note: "an id that names nothing", want: notFoundToAll, op: op(cancelSignup, map[string]any{"id": noSuchID})},
		{field: "Mutation.registerDevice", want: anyMember, op: func(*testing.T, *member) operation {
			return operation{query: `mutation($t: String!) { registerDevice(token: $t, platform: ANDROID) { platform } }`,
				vars: map[string]any{"t": fmt.Sprintf("fcm-token-%d", authzEmails.Add(1))}}
		}},
		{field: "Mutation.unregisterDevice", want: anyMember, op: func(t *testing.T, caller *member) operation {
			// The anonymous caller tries a member's; a device belongs to
			// a session.
			k := s.kit(t)
			owner := f.callers[plainMember]
			if caller != nil {
				owner = caller
			}
			token := fmt.Sprintf("fcm-token-%d", authzEmails.Add(1))
			if _, err := k.Store.RegisterDevice(k.Ctx, owner.Actor(), token, db.PlatformAndroid); err != nil {
				t.Fatal(err)
			}
			return operation{query: `mutation($t: String!) { unregisterDevice(token: $t) }`, vars: map[string]any{"t": token}}
		}},
		{field: "Mutation.updateNotificationPreferences", want: anyMember, op: op(`mutation($in: NotificationPreferencesInput!) { updateNotificationPreferences(input: $in) { timeZone } }`,
			map[string]any{"in": map[string]any{"timeZone": "America/Edmonton"}})},

		{field: "Subscription.picketLineEvents", want: [numCallers]outcome{unauth, forbid, data, forbid, data, forbid, data, data},
			op: op(lineEventsSub, map[string]any{"line": f.line.ID, "after": f.lineCursor})},
		{field: "Subscription.picketLineEvents", note: "a line that does not exist", want: notFoundToAll,
			op: op(lineEventsSub, map[string]any{"line": noSuchID})},
		{field: "Subscription.myEvents", want: anyMember, op: func(t *testing.T, caller *member) operation {
			// A shift of the caller's cancelled gives them an event to
			// replay, on the scratch line, and leaves them holding no
			// sign-up there.
			after := s.myCursor(t, s.mintToken(t, caller.ID))
			k := s.kit(t)
			sh := f.freshShiftOn(t, f.scratch)
			k.SignUp(caller.Actor(), sh)
			if _, err := k.Store.CancelShift(k.Ctx, k.Staff, sh.ID); err != nil {
				t.Fatal(err)
			}
			return operation{query: myEventsSub, vars: map[string]any{"after": after}}
		}},

		// The fields below the root that take arguments or say who takes part.
		{field: "JobAction.picketLines", want: anyMember, op: op(`query($id: ID!) { jobAction(id: $id) { picketLines(first: 5) { edges { node { id } } } } }`,
			map[string]any{"id": f.ja.ID}, "jobAction", "picketLines")},
		{field: "JobAction.announcements", want: anyMember, op: op(`query($id: ID!) { jobAction(id: $id) { announcements { id } } }`,
			map[string]any{"id": f.ja.ID}, "jobAction", "announcements", whereID(f.jobActionAnnouncement.ID))},
		{field: "PicketLine.shifts", want: anyMember, op: op(`query($id: ID!) { picketLine(id: $id) { shifts(first: 5) { edges { node { id } } } } }`,
			line, "picketLine", "shifts", "edges", whereID(f.shift.ID, "node"))},
		{field: "PicketLine.address", want: takingPart, op: op(`query($id: ID!) { picketLine(id: $id) { address } }`, line, "picketLine", "address")},
		{field: "PicketLine.announcements", want: takingPart, op: op(`query($id: ID!) { picketLine(id: $id) { announcements { id } } }`,
			line, "picketLine", "announcements", whereID(f.lineAnnouncement.ID))},
		{field: "Shift.signups", note: "another member's", want: [numCallers]outcome{unauth, null, null, null, data, null, data, data},
			op: op(`query($id: ID!) { shift(id: $id) { signups(first: 50) { edges { node { id } } } } }`,
				map[string]any{"id": f.shift.ID}, "shift", "signups", "edges", whereID(f.otherSignup.ID, "node"))},
		{field: "Shift.signups", note: "one's own", want: signedUpOnly, op: func(t *testing.T, caller *member) operation {
			o := operation{query: `query($id: ID!) { shift(id: $id) { signups(first: 50) { edges { node { member { id } } } } } }`, vars: map[string]any{"id": f.shift.ID}}
			if caller != nil {
				o.probe = probe("shift", "signups", "edges", whereID(caller.ID, "node", "member"))
			}
			return o
		}},
		{field: "Shift.mySignup", want: signedUpOnly, op: op(`query($id: ID!) { shift(id: $id) { mySignup { id } } }`, map[string]any{"id": f.shift.ID}, "shift", "mySignup")},
	}

	// A member's fields, seen by each caller through each way to a member.
	captains := `query($id: ID!) { picketLine(id: $id) { captains { id name role email phone eventCursor } } }`
	viaCaptains := func(field string) func(*testing.T, *member) operation {
		return op(captains, line, "picketLine", "captains", whereID(f.coCaptain.MemberID), field)
	}
	for _, field := range []string{"id", "name", "role"} {
		rows = append(rows, authzRow{field: "Member." + field, via: "PicketLine.captains", want: anyMember, op: viaCaptains(field)})
	}
	rows = append(rows,
		authzRow{field: "Member.eventCursor", via: "Query.me", note: "one's own", want: anyMember, op: op(`{ me { eventCursor } }`, nil, "me", "eventCursor")},
		authzRow{field: "Member.eventCursor", via: "PicketLine.captains", note: "another member's", want: nullToAll, op: viaCaptains("eventCursor")},
	)
	for _, field := range []string{"email", "phone"} {
		// Whom the caller may reach the member through, and whose the
		// contact details are, decide; the captain of another line sees
		// the phone of the co-captain, who holds a spot on that line.
		captainsWant := staffSees
		signupWant := staffSees
		if field == "phone" {
			captainsWant = [numCallers]outcome{unauth, null, null, null, null, data, data, data}
			signupWant = [numCallers]outcome{unauth, null, null, null, data, null, data, data}
		}
		contactField := "Member." + field
		rows = append(rows,
			authzRow{field: contactField, via: "Query.me", want: anyMember, op: op(`{ me { email phone } }`, nil, "me", field)},
			authzRow{field: contactField, via: "Mutation.updateMyContact", want: anyMember, op: op(`mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { email phone } }`,
				map[string]any{"in": map[string]any{"phone": "+1 780 555 0000"}}, "updateMyContact", field)},
			authzRow{field: contactField, via: "Mutation.setMemberRole", want: adminOnly, op: func(t *testing.T, _ *member) operation {
				return operation{query: `mutation($m: ID!) { setMemberRole(memberId: $m, role: COORDINATOR) { email phone } }`,
					vars: map[string]any{"m": s.kit(t).Member(db.RoleMember).ID}, probe: probe("setMemberRole", field)}
			}},
			authzRow{field: contactField, via: "CaptainAssignment.member", want: staffOnly, op: func(t *testing.T, _ *member) operation {
				return operation{query: `mutation($l: ID!, $m: ID!) { assignCaptain(picketLineId: $l, memberId: $m) { member { email phone } } }`,
					vars: map[string]any{"l": f.scratch.ID, "m": s.kit(t).Member(db.RoleMember).ID}, probe: probe("assignCaptain", "member", field)}
			}},
			authzRow{field: contactField, via: "AuthPayload.member", note: "one signing in", want: everyone, op: func(t *testing.T, _ *member) operation {
				return operation{query: `mutation($r: String!) { refreshSession(refreshToken: $r) { member { email phone } } }`,
					vars:  map[string]any{"r": s.kit(t).Session(s.kit(t).Member(db.RoleMember).ID).RefreshToken},
					probe: probe("refreshSession", "member", field)}
			}},
			authzRow{field: contactField, via: "PicketLine.captains", note: "a co-captain signed up on another line", want: captainsWant, op: viaCaptains(field)},
			authzRow{field: contactField, via: "Signup.member", note: "another member's sign-up", want: signupWant,
				op: op(`query($id: ID!) { shift(id: $id) { signups(first: 50) { edges { node { id member { email phone } } } } } }`,
					map[string]any{"id": f.shift.ID}, "shift", "signups", "edges", whereID(f.otherSignup.ID, "node"), "node", "member", field)},
			authzRow{field: contactField, via: "Signup.member", note: "one's own sign-up", want: anyMember, op: func(t *testing.T, _ *member) operation {
				return operation{query: signUp, vars: map[string]any{"s": f.freshShiftOn(t, f.scratch).ID}, probe: probe("signUpForShift", "member", field)}
			}},
			// The line's announcement is the captain's own: the line's
			// captain sees their own details.
			authzRow{field: contactField, via: "Announcement.author", note: "on the line, by its captain", want: [numCallers]outcome{unauth, null, null, null, data, null, data, data},
				op: op(`query($id: ID!) { picketLine(id: $id) { announcements { id author { email phone } } } }`,
					line, "picketLine", "announcements", whereID(f.lineAnnouncement.ID), "author", field)},
			authzRow{field: contactField, via: "Announcement.author", note: "to the job action, by staff", want: staffSees,
				op: op(`query($id: ID!) { jobAction(id: $id) { announcements { id author { email phone } } } }`,
					map[string]any{"id": f.ja.ID}, "jobAction", "announcements", whereID(f.jobActionAnnouncement.ID), "author", field)},
		)
	}
	return rows
}
