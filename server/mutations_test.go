package main

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
)

// Shapes of the API's objects as the tests read them.

type memberJSON struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Email *string `json:"email"`
	Phone *string `json:"phone"`
	Role  string  `json:"role"`
}

// String shows the contact details themselves rather than pointers.
func (m memberJSON) String() string {
	return fmt.Sprintf("{id %s name %q email %s phone %s role %s}", m.ID, m.Name, opt(m.Email), opt(m.Phone), m.Role)
}

// opt shows an optional string.
func opt(s *string) string {
	if s == nil {
		return "null"
	}
	return fmt.Sprintf("%q", *s)
}

type jobActionJSON struct {
	ID                  string               `json:"id"`
	Name                string               `json:"name"`
	Kind                string               `json:"kind"`
	Employer            string               `json:"employer"`
	Status              string               `json:"status"`
	StartsAt            time.Time            `json:"startsAt"`
	CancelCutoffMinutes int                  `json:"cancelCutoffMinutes"`
	PicketLines         connection[lineJSON] `json:"picketLines"`
	Announcements       []announceJSON       `json:"announcements"`
}

type lineJSON struct {
	ID             string                `json:"id"`
	Name           string                `json:"name"`
	Address        *string               `json:"address"`
	Latitude       float64               `json:"latitude"`
	Longitude      float64               `json:"longitude"`
	GeofenceMeters int                   `json:"geofenceMeters"`
	JobAction      *jobActionJSON        `json:"jobAction"`
	Captains       []memberJSON          `json:"captains"`
	Shifts         connection[shiftJSON] `json:"shifts"`
	Announcements  []announceJSON        `json:"announcements"`
}

type shiftJSON struct {
	ID            string                 `json:"id"`
	PicketLine    *lineJSON              `json:"picketLine"`
	StartsAt      time.Time              `json:"startsAt"`
	EndsAt        time.Time              `json:"endsAt"`
	Capacity      int                    `json:"capacity"`
	SignedUpCount int                    `json:"signedUpCount"`
	SpotsLeft     int                    `json:"spotsLeft"`
	WaitlistCount int                    `json:"waitlistCount"`
	CancelledAt   *time.Time             `json:"cancelledAt"`
	MySignup      *signupJSON            `json:"mySignup"`
	Signups       connection[signupJSON] `json:"signups"`
}

type signupJSON struct {
	ID               string     `json:"id"`
	Status           string     `json:"status"`
	Shift            *shiftJSON `json:"shift"`
	Member           memberJSON `json:"member"`
	WaitlistPosition *int       `json:"waitlistPosition"`
	CreatedAt        time.Time  `json:"createdAt"`
}

type announceJSON struct {
	ID        string     `json:"id"`
	Body      string     `json:"body"`
	Urgent    bool       `json:"urgent"`
	CreatedAt time.Time  `json:"createdAt"`
	Author    memberJSON `json:"author"`
}

const (
	jobActionFields = `id name kind employer status startsAt cancelCutoffMinutes`
	lineFields      = `id name address latitude longitude geofenceMeters`
	shiftFields     = `id startsAt endsAt capacity signedUpCount spotsLeft waitlistCount cancelledAt`
	signupFields    = `id status waitlistPosition createdAt member { id } shift { id }`
)

func ids[T any](list []T, id func(T) string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = id(v)
	}
	return out
}

func shiftIDs(list []shiftJSON) []string { return ids(list, func(s shiftJSON) string { return s.ID }) }

func signupIDs(list []signupJSON) []string {
	return ids(list, func(s signupJSON) string { return s.ID })
}

func TestEveryMutationAndQueryEndToEnd(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	// Each step builds on what the steps before it made, so a failing step
	// stops the test; a check that changes nothing fails alone.
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	day := now.Add(24 * time.Hour)
	addr := "10240 Kingsway NW, Edmonton"

	var (
		coordID, captainID, memberID, otherID string
		coord, captain, mia, omar             string
		ja, lockout                           jobActionJSON
		line, line2                           lineJSON
		sh1, sh2, sh3, sh4                    shiftJSON
		su1, su2, suOmar, suCaptain           signupJSON
		la, jaa                               announceJSON
	)

	step("members added on the command line sign in with a code", func(t *testing.T) {
		addMember := func(email, name, role string) string {
			t.Helper()
			out, err := s.cli(t, "member", "add", "--email", email, "--name", name, "--phone", "+1 780 555 0199", "--role", role)
			if err != nil {
				t.Fatalf("member add: %v", err)
			}
			id := strings.TrimSpace(out)
			if !uuidPattern.MatchString(id) {
				t.Fatalf("member add printed %q, want a UUID", out)
			}
			return id
		}
		coordID = addMember("dana@example.org", "Dana Whitford", "coordinator")
		captainID = addMember("carl@example.org", "Carl Captain", "member")
		memberID = addMember("mia@example.org", "Mia Member", "member")
		otherID = addMember("omar@example.org", "Omar Other", "member")
		coord = s.login(t, "dana@example.org").AccessToken
		captain = s.login(t, "carl@example.org").AccessToken
		mia = s.login(t, "mia@example.org").AccessToken
		omar = s.login(t, "omar@example.org").AccessToken
	})

	step("createJobAction and updateJobAction", func(t *testing.T) {
		var cja struct{ CreateJobAction jobActionJSON }
		s.do(t, coord, `mutation($in: CreateJobActionInput!) { createJobAction(input: $in) { `+jobActionFields+` } }`,
			map[string]any{"in": map[string]any{"name": "Health Care Strike", "kind": "STRIKE", "employer": "Chinook Regional Health", "startsAt": ts(now.Add(-time.Hour))}}, &cja)
		ja = cja.CreateJobAction
		if !uuidPattern.MatchString(ja.ID) {
			t.Fatalf("createJobAction id %q, want a UUID", ja.ID)
		}
		want := jobActionJSON{ID: ja.ID, Name: "Health Care Strike", Kind: "STRIKE", Employer: "Chinook Regional Health", Status: "ACTIVE", StartsAt: now.Add(-time.Hour), CancelCutoffMinutes: 120}
		if diff := cmp.Diff(want, ja); diff != "" {
			t.Fatalf("createJobAction (-want +got):\n%s", diff)
		}
		var uja struct{ UpdateJobAction jobActionJSON }
		s.do(t, coord, `mutation($in: UpdateJobActionInput!) { updateJobAction(input: $in) { `+jobActionFields+` } }`,
			map[string]any{"in": map[string]any{"id": ja.ID, "name": "Health Care Strike 2026", "cancelCutoffMinutes": 90}}, &uja)
		want.Name, want.CancelCutoffMinutes = "Health Care Strike 2026", 90
		if diff := cmp.Diff(want, uja.UpdateJobAction); diff != "" {
			t.Fatalf("updateJobAction (-want +got):\n%s", diff)
		}
		// A second job action, planned, for announcements and endJobAction.
		var cl struct{ CreateJobAction jobActionJSON }
		s.do(t, coord, `mutation($in: CreateJobActionInput!) { createJobAction(input: $in) { `+jobActionFields+` } }`,
			map[string]any{"in": map[string]any{"name": "Care Lockout", "kind": "LOCKOUT", "employer": "Capital Care", "startsAt": ts(now.Add(48 * time.Hour)), "cancelCutoffMinutes": 30}}, &cl)
		lockout = cl.CreateJobAction
		if lockout.Status != "PLANNED" || lockout.Kind != "LOCKOUT" || lockout.CancelCutoffMinutes != 30 {
			t.Fatalf("createJobAction of a planned lockout: %+v", lockout)
		}
	})

	step("createPicketLine and updatePicketLine", func(t *testing.T) {
		var cpl struct{ CreatePicketLine lineJSON }
		s.do(t, coord, `mutation($in: CreatePicketLineInput!) { createPicketLine(input: $in) { `+lineFields+` jobAction { id } } }`,
			map[string]any{"in": map[string]any{"jobActionId": ja.ID, "name": "Main Entrance", "address": addr, "latitude": 53.5587, "longitude": -113.4977}}, &cpl)
		line = cpl.CreatePicketLine
		want := lineJSON{ID: line.ID, Name: "Main Entrance", Address: &addr, Latitude: 53.5587, Longitude: -113.4977, GeofenceMeters: 150, JobAction: &jobActionJSON{ID: ja.ID}}
		if diff := cmp.Diff(want, line); diff != "" {
			t.Fatalf("createPicketLine (-want +got):\n%s", diff)
		}
		var upl struct{ UpdatePicketLine lineJSON }
		s.do(t, coord, `mutation($in: UpdatePicketLineInput!) { updatePicketLine(input: $in) { `+lineFields+` } }`,
			map[string]any{"in": map[string]any{"id": line.ID, "name": "Main Entrance (north)", "geofenceMeters": 200}}, &upl)
		want.Name, want.GeofenceMeters, want.JobAction = "Main Entrance (north)", 200, nil
		if diff := cmp.Diff(want, upl.UpdatePicketLine); diff != "" {
			t.Fatalf("updatePicketLine (-want +got):\n%s", diff)
		}
		var cpl2 struct{ CreatePicketLine lineJSON }
		s.do(t, coord, `mutation($in: CreatePicketLineInput!) { createPicketLine(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"jobActionId": ja.ID, "name": "South Gate", "address": "8440 112 St NW, Edmonton", "latitude": 53.52, "longitude": -113.52, "geofenceMeters": 80}}, &cpl2)
		line2 = cpl2.CreatePicketLine
	})

	step("assignCaptain", func(t *testing.T) {
		var ac struct {
			AssignCaptain struct {
				PicketLine struct{ ID string } `json:"picketLine"`
				Member     memberJSON          `json:"member"`
				AssignedAt time.Time           `json:"assignedAt"`
			}
		}
		s.do(t, coord, `mutation($l: ID!, $m: ID!) { assignCaptain(picketLineId: $l, memberId: $m) { picketLine { id } member { id name } assignedAt } }`,
			map[string]any{"l": line.ID, "m": captainID}, &ac)
		if a := ac.AssignCaptain; a.PicketLine.ID != line.ID || a.Member.ID != captainID || a.Member.Name != "Carl Captain" || time.Since(a.AssignedAt) > time.Minute {
			t.Fatalf("assignCaptain = %+v", a)
		}
	})

	createShift := func(t *testing.T, token, lineID string, start time.Time, hours, capacity int) shiftJSON {
		t.Helper()
		var out struct{ CreateShift shiftJSON }
		s.do(t, token, `mutation($in: CreateShiftInput!) { createShift(input: $in) { `+shiftFields+` picketLine { id } } }`,
			map[string]any{"in": map[string]any{"picketLineId": lineID, "startsAt": ts(start), "endsAt": ts(start.Add(time.Duration(hours) * time.Hour)), "capacity": capacity}}, &out)
		return out.CreateShift
	}
	step("createShift and updateShift by the line's captain", func(t *testing.T) {
		sh1 = createShift(t, captain, line.ID, day, 4, 1)
		want := shiftJSON{ID: sh1.ID, PicketLine: &lineJSON{ID: line.ID}, StartsAt: day, EndsAt: day.Add(4 * time.Hour), Capacity: 1, SpotsLeft: 1}
		if diff := cmp.Diff(want, sh1); diff != "" {
			t.Fatalf("createShift (-want +got):\n%s", diff)
		}
		var us struct{ UpdateShift shiftJSON }
		s.do(t, captain, `mutation($in: UpdateShiftInput!) { updateShift(input: $in) { `+shiftFields+` } }`,
			map[string]any{"in": map[string]any{"id": sh1.ID, "endsAt": ts(day.Add(5 * time.Hour)), "capacity": 2}}, &us)
		want.PicketLine, want.EndsAt, want.Capacity, want.SpotsLeft = nil, day.Add(5*time.Hour), 2, 2
		if diff := cmp.Diff(want, us.UpdateShift); diff != "" {
			t.Fatalf("updateShift (-want +got):\n%s", diff)
		}
		sh2 = createShift(t, captain, line.ID, day.Add(6*time.Hour), 4, 3)
		sh3 = createShift(t, coord, line2.ID, day.Add(24*time.Hour), 4, 2)
		sh4 = createShift(t, coord, line2.ID, day.Add(30*time.Hour), 4, 2)
	})

	signUp := func(t *testing.T, token, shiftID string, key *string) signupJSON {
		t.Helper()
		vars := map[string]any{"s": shiftID}
		if key != nil {
			vars["k"] = *key
		}
		var out struct{ SignUpForShift signupJSON }
		s.do(t, token, `mutation($s: ID!, $k: String) { signUpForShift(shiftId: $s, idempotencyKey: $k) { `+signupFields+` } }`, vars, &out)
		return out.SignUpForShift
	}
	step("signUpForShift holds a spot, answers a key seen before with its sign-up, and waitlists past capacity", func(t *testing.T) {
		su1 = signUp(t, mia, sh1.ID, nil)
		if su1.Status != "SIGNED_UP" || su1.Member.ID != memberID || su1.Shift.ID != sh1.ID || su1.WaitlistPosition != nil || !uuidPattern.MatchString(su1.ID) {
			t.Fatalf("signUpForShift = %+v", su1)
		}
		key := "3b241101-e2bb-4255-8caf-4136c566a962"
		su2 = signUp(t, mia, sh2.ID, &key)
		if again := signUp(t, mia, sh2.ID, &key); again.ID != su2.ID || su2.Status != "SIGNED_UP" {
			t.Fatalf("signUpForShift with the same key: %+v then %+v", su2, again)
		}
		suOmar = signUp(t, omar, sh1.ID, nil)
		suCaptain = signUp(t, captain, sh1.ID, nil)
		if suCaptain.Status != "WAITLISTED" || suCaptain.WaitlistPosition == nil || *suCaptain.WaitlistPosition != 1 {
			t.Fatalf("third sign-up on a shift for two = %+v, want WAITLISTED at 1", suCaptain)
		}
	})

	shiftQuery := `query($id: ID!) { shift(id: $id) { ` + shiftFields + ` picketLine { id name } mySignup { id status } signups { edges { node { id status waitlistPosition member { id name } } } } } }`
	t.Run("shift counts its sign-ups and lists them as the caller may see them", func(t *testing.T) {
		var q struct{ Shift shiftJSON }
		s.do(t, mia, shiftQuery, map[string]any{"id": sh1.ID}, &q)
		if q.Shift.SignedUpCount != 2 || q.Shift.SpotsLeft != 0 || q.Shift.WaitlistCount != 1 || q.Shift.PicketLine.Name != "Main Entrance (north)" {
			t.Errorf("shift counts = %+v", q.Shift)
		}
		if q.Shift.MySignup == nil || q.Shift.MySignup.ID != su1.ID || q.Shift.MySignup.Status != "SIGNED_UP" {
			t.Errorf("mySignup = %+v, want %s", q.Shift.MySignup, su1.ID)
		}
		if diff := cmp.Diff([]string{su1.ID}, signupIDs(q.Shift.Signups.nodes())); diff != "" {
			t.Errorf("a member sees sign-ups other than their own (-want +got):\n%s", diff)
		}
		s.do(t, coord, shiftQuery, map[string]any{"id": sh1.ID}, &q)
		if diff := cmp.Diff([]string{su1.ID, suOmar.ID, suCaptain.ID}, signupIDs(q.Shift.Signups.nodes())); diff != "" {
			t.Errorf("a coordinator sees sign-ups, want signed up first, then the waitlist (-want +got):\n%s", diff)
		}
		if q.Shift.MySignup != nil {
			t.Errorf("coordinator has no sign-up, got mySignup %+v", q.Shift.MySignup)
		}
	})

	t.Run("myShifts lists the member's shifts soonest first", func(t *testing.T) {
		var my struct{ MyShifts connection[signupJSON] }
		s.do(t, mia, `{ myShifts { edges { node { `+signupFields+` } } } }`, nil, &my)
		if diff := cmp.Diff([]string{su1.ID, su2.ID}, signupIDs(my.MyShifts.nodes())); diff != "" {
			t.Fatalf("myShifts (-want +got):\n%s", diff)
		}
	})

	t.Run("openShifts pages through the shifts the member can take", func(t *testing.T) {
		// Omar holds sh1, so sh2 overlaps nothing of his, sh3 and sh4 are
		// free; sh1 is full.
		var pages [][]string
		var after any
		for {
			var out struct {
				OpenShifts struct {
					Edges []struct {
						Cursor string    `json:"cursor"`
						Node   shiftJSON `json:"node"`
					} `json:"edges"`
					PageInfo struct {
						HasNextPage bool    `json:"hasNextPage"`
						EndCursor   *string `json:"endCursor"`
					} `json:"pageInfo"`
				}
			}
			s.do(t, omar, `query($after: String) { openShifts(first: 1, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`,
				map[string]any{"after": after}, &out)
			page := out.OpenShifts
			var got []string
			for _, e := range page.Edges {
				got = append(got, e.Node.ID)
			}
			pages = append(pages, got)
			if len(page.Edges) > 0 && (page.PageInfo.EndCursor == nil || *page.PageInfo.EndCursor != page.Edges[len(page.Edges)-1].Cursor) {
				t.Fatalf("endCursor %v is not the last edge's cursor", page.PageInfo.EndCursor)
			}
			if !page.PageInfo.HasNextPage {
				break
			}
			if len(pages) > 10 {
				t.Fatalf("openShifts pages without end: %v", pages)
			}
			after = *page.PageInfo.EndCursor
		}
		if diff := cmp.Diff([][]string{{sh2.ID}, {sh3.ID}, {sh4.ID}}, pages); diff != "" {
			t.Fatalf("openShifts pages (-want +got):\n%s", diff)
		}
	})

	t.Run("openShifts keeps to the job action and the window asked for", func(t *testing.T) {
		var filtered struct {
			OpenShifts struct {
				Edges []struct{ Node shiftJSON } `json:"edges"`
			}
		}
		s.do(t, omar, `query($ja: ID, $from: Time, $to: Time) { openShifts(jobActionId: $ja, from: $from, to: $to) { edges { node { id } } } }`,
			map[string]any{"ja": ja.ID, "from": ts(day.Add(24 * time.Hour)), "to": ts(day.Add(30 * time.Hour))}, &filtered)
		if len(filtered.OpenShifts.Edges) != 1 || filtered.OpenShifts.Edges[0].Node.ID != sh3.ID {
			t.Fatalf("openShifts in [from, to) = %+v, want only %s", filtered.OpenShifts.Edges, sh3.ID)
		}
	})

	step("postAnnouncement to a line by its captain and to a job action by a coordinator", func(t *testing.T) {
		post := func(token string, input map[string]any) announceJSON {
			t.Helper()
			var out struct{ PostAnnouncement announceJSON }
			s.do(t, token, `mutation($in: PostAnnouncementInput!) { postAnnouncement(input: $in) { id body urgent createdAt author { id name } } }`, map[string]any{"in": input}, &out)
			return out.PostAnnouncement
		}
		la = post(captain, map[string]any{"picketLineId": line.ID, "body": "  Bring water.  ", "urgent": true})
		if la.Body != "Bring water." || !la.Urgent || la.Author.ID != captainID || time.Since(la.CreatedAt) > time.Minute {
			t.Fatalf("line announcement = %+v", la)
		}
		jaa = post(coord, map[string]any{"jobActionId": ja.ID, "body": "HQ opens at 5:30."})
		if jaa.Body != "HQ opens at 5:30." || jaa.Urgent || jaa.Author.ID != coordID {
			t.Fatalf("job action announcement = %+v", jaa)
		}
	})

	t.Run("picketLine shows its job action, captains, shifts and announcements", func(t *testing.T) {
		// As a member signed up there.
		var pl struct{ PicketLine lineJSON }
		s.do(t, mia, `query($id: ID!, $from: Time, $to: Time) { picketLine(id: $id) { `+lineFields+`
			jobAction { id name }
			captains { id name }
			shifts(from: $from, to: $to) { edges { node { id } } }
			announcements { id body author { id } } } }`,
			map[string]any{"id": line.ID, "from": ts(day.Add(time.Hour)), "to": ts(day.Add(7 * time.Hour))}, &pl)
		if pl.PicketLine.Address == nil || *pl.PicketLine.Address != addr || pl.PicketLine.JobAction.Name != "Health Care Strike 2026" {
			t.Errorf("picketLine = %+v", pl.PicketLine)
		}
		if diff := cmp.Diff([]string{captainID}, ids(pl.PicketLine.Captains, func(m memberJSON) string { return m.ID })); diff != "" {
			t.Errorf("captains (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{sh2.ID}, shiftIDs(pl.PicketLine.Shifts.nodes())); diff != "" {
			t.Errorf("shifts(from, to), where sh1 starts before from (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{la.ID}, ids(pl.PicketLine.Announcements, func(a announceJSON) string { return a.ID })); diff != "" {
			t.Errorf("line announcements (-want +got):\n%s", diff)
		}
		var all struct {
			PicketLine struct {
				All connection[shiftJSON] `json:"all"`
			}
		}
		s.do(t, mia, `query($id: ID!) { picketLine(id: $id) { all: shifts { edges { node { id } } } } }`, map[string]any{"id": line.ID}, &all)
		if diff := cmp.Diff([]string{sh1.ID, sh2.ID}, shiftIDs(all.PicketLine.All.nodes())); diff != "" {
			t.Errorf("all shifts, soonest first (-want +got):\n%s", diff)
		}
	})

	t.Run("jobActions lists the newest start first, and jobAction its lines and announcements", func(t *testing.T) {
		var jas struct{ JobActions connection[jobActionJSON] }
		s.do(t, mia, `{ jobActions { edges { node { id status } } } }`, nil, &jas)
		if diff := cmp.Diff([]string{lockout.ID, ja.ID}, ids(jas.JobActions.nodes(), func(j jobActionJSON) string { return j.ID })); diff != "" {
			t.Errorf("jobActions, newest start first (-want +got):\n%s", diff)
		}
		var one struct{ JobAction jobActionJSON }
		s.do(t, mia, `query($id: ID!) { jobAction(id: $id) { `+jobActionFields+` picketLines { edges { node { id name } } } announcements { id body author { id name } } } }`, map[string]any{"id": ja.ID}, &one)
		if diff := cmp.Diff([]string{line.ID, line2.ID}, ids(one.JobAction.PicketLines.nodes(), func(l lineJSON) string { return l.ID })); diff != "" {
			t.Errorf("jobAction.picketLines, by name (-want +got):\n%s", diff)
		}
		if len(one.JobAction.Announcements) != 1 || one.JobAction.Announcements[0].ID != jaa.ID || one.JobAction.Announcements[0].Author.Name != "Dana Whitford" {
			t.Errorf("jobAction.announcements = %+v", one.JobAction.Announcements)
		}
	})

	step("cancelSignup gives the spot to the head of the waitlist", func(t *testing.T) {
		var cs struct{ CancelSignup signupJSON }
		s.do(t, mia, `mutation($id: ID!) { cancelSignup(signupId: $id) { `+signupFields+` } }`, map[string]any{"id": su1.ID}, &cs)
		if cs.CancelSignup.ID != su1.ID || cs.CancelSignup.Status != "CANCELLED" {
			t.Fatalf("cancelSignup = %+v", cs.CancelSignup)
		}
		var q struct{ Shift shiftJSON }
		s.do(t, captain, shiftQuery, map[string]any{"id": sh1.ID}, &q)
		if q.Shift.SignedUpCount != 2 || q.Shift.WaitlistCount != 0 || q.Shift.MySignup == nil || q.Shift.MySignup.Status != "SIGNED_UP" {
			t.Fatalf("after a cancellation the waitlisted captain should hold a spot: %+v", q.Shift)
		}
	})

	step("cancelShift by the line's captain ends every sign-up", func(t *testing.T) {
		var cshift struct{ CancelShift shiftJSON }
		s.do(t, captain, `mutation($id: ID!) { cancelShift(id: $id) { `+shiftFields+` } }`, map[string]any{"id": sh1.ID}, &cshift)
		if c := cshift.CancelShift; c.CancelledAt == nil || c.SignedUpCount != 0 || c.SpotsLeft != 0 || c.WaitlistCount != 0 {
			t.Fatalf("cancelShift = %+v", c)
		}
		var q struct{ Shift shiftJSON }
		s.do(t, omar, shiftQuery, map[string]any{"id": sh1.ID}, &q)
		if q.Shift.MySignup != nil || q.Shift.CancelledAt == nil {
			t.Fatalf("after cancelShift Omar's sign-up = %+v, want none active", q.Shift.MySignup)
		}
		var my struct{ MyShifts connection[signupJSON] }
		s.do(t, omar, `{ myShifts { edges { node { id } } } }`, nil, &my)
		if len(my.MyShifts.Edges) != 0 {
			t.Fatalf("after cancelShift Omar's myShifts = %+v, want none", my.MyShifts)
		}
	})

	step("removeCaptain answers true once, then false, and the captain loses the line", func(t *testing.T) {
		for i, wantRemoved := range []bool{true, false} {
			var rc struct{ RemoveCaptain bool }
			s.do(t, coord, `mutation($l: ID!, $m: ID!) { removeCaptain(picketLineId: $l, memberId: $m) }`, map[string]any{"l": line.ID, "m": captainID}, &rc)
			if rc.RemoveCaptain != wantRemoved {
				t.Fatalf("removeCaptain #%d = %v, want %v", i+1, rc.RemoveCaptain, wantRemoved)
			}
		}
		s.fails(t, captain, `mutation($id: ID!) { cancelShift(id: $id) { id } }`, map[string]any{"id": sh2.ID}, "FORBIDDEN")
	})

	t.Run("endJobAction takes its shifts out of openShifts and closes them to sign-ups", func(t *testing.T) {
		var end struct{ EndJobAction jobActionJSON }
		s.do(t, coord, `mutation($id: ID!) { endJobAction(id: $id) { `+jobActionFields+` } }`, map[string]any{"id": ja.ID}, &end)
		if end.EndJobAction.Status != "ENDED" {
			t.Fatalf("endJobAction status %s, want ENDED", end.EndJobAction.Status)
		}
		var open struct {
			OpenShifts struct{ Edges []struct{ Node shiftJSON } }
		}
		s.do(t, omar, `{ openShifts { edges { node { id } } } }`, nil, &open)
		if len(open.OpenShifts.Edges) != 0 {
			t.Errorf("openShifts after endJobAction = %+v, want none", open.OpenShifts.Edges)
		}
		s.fails(t, omar, `mutation($s: ID!) { signUpForShift(shiftId: $s) { id } }`, map[string]any{"s": sh3.ID}, "SHIFT_CLOSED")
	})

	t.Run("updateMyContact changes what me shows, and the new email signs in", func(t *testing.T) {
		var uc struct{ UpdateMyContact memberJSON }
		s.do(t, omar, `mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id name email phone role } }`,
			map[string]any{"in": map[string]any{"name": "Omar O.", "email": "  Omar.New@Example.org ", "phone": ""}}, &uc)
		newEmail := "omar.new@example.org"
		want := memberJSON{ID: otherID, Name: "Omar O.", Email: &newEmail, Role: "MEMBER"}
		if diff := cmp.Diff(want, uc.UpdateMyContact); diff != "" {
			t.Fatalf("updateMyContact (-want +got):\n%s", diff)
		}
		var me struct{ Me memberJSON }
		s.do(t, omar, `{ me { id name email phone role } }`, nil, &me)
		if diff := cmp.Diff(want, me.Me); diff != "" {
			t.Fatalf("me after updateMyContact (-want +got):\n%s", diff)
		}
		phone := "+1 (780) 555-0123"
		s.do(t, omar, `mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id name email phone role } }`,
			map[string]any{"in": map[string]any{"phone": phone}}, &uc)
		want.Phone = &phone
		if diff := cmp.Diff(want, uc.UpdateMyContact); diff != "" {
			t.Fatalf("updateMyContact of the phone only (-want +got):\n%s", diff)
		}
		if p := s.login(t, newEmail); p.Member.ID != otherID {
			t.Fatalf("signing in with the new email gave member %s", p.Member.ID)
		}
	})

	t.Run("me shows a coordinator's role", func(t *testing.T) {
		var coordMe struct{ Me memberJSON }
		s.do(t, coord, `{ me { id role } }`, nil, &coordMe)
		if coordMe.Me.ID != coordID || coordMe.Me.Role != "COORDINATOR" {
			t.Fatalf("coordinator's me = %+v", coordMe.Me)
		}
	})
}

// Shifts starting at the same moment are paged by id: none is skipped or
// shown twice.
func TestOpenShiftsPagesThroughTies(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	ja := k.JobAction()
	// The kit's clock stands still, so the five start at the same moment.
	var want []string
	for range 5 {
		want = append(want, k.ShiftOn(k.LineOf(ja), 72*time.Hour, 2).ID)
	}
	// One earlier shift, full, is not offered.
	full := k.ShiftOn(k.LineOf(ja), 48*time.Hour, 1)
	k.SignUp(k.NewMember(), full)
	sort.Strings(want)
	m := s.addMember(t, db.RoleMember)
	var got []string
	var after any
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatalf("paging does not end: %v", got)
		}
		var out struct {
			OpenShifts struct {
				Edges    []struct{ Node shiftJSON } `json:"edges"`
				PageInfo struct {
					HasNextPage bool    `json:"hasNextPage"`
					EndCursor   *string `json:"endCursor"`
				} `json:"pageInfo"`
			}
		}
		s.do(t, m.Token, `query($after: String) { openShifts(first: 2, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": after}, &out)
		for _, e := range out.OpenShifts.Edges {
			got = append(got, e.Node.ID)
		}
		if !out.OpenShifts.PageInfo.HasNextPage {
			break
		}
		after = *out.OpenShifts.PageInfo.EndCursor
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("shifts of one start, paged by two (-want +got):\n%s", diff)
	}
}
