package main

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

// contact is what a caller sees of a member's contact details.
type contact struct {
	Email, Phone bool
}

func seen(m memberJSON) contact { return contact{Email: m.Email != nil, Phone: m.Phone != nil} }

func TestPrivacy(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	store, _ := s.direct(t)
	staff := s.addMember(t, db.RoleCoordinator)
	ja := s.jobAction(t, staff)
	line := s.line(t, staff, ja.ID)
	otherLine := s.line(t, staff, ja.ID)
	thirdLine := s.line(t, staff, ja.ID)
	captain := s.captain(t, staff, line.ID)
	otherCaptain := s.captain(t, staff, otherLine.ID)
	sh := s.shift(t, staff, line.ID, 48*time.Hour, 2)
	// x holds a spot on the line and captains a third line, so every
	// member can reach x through thirdLine's captains.
	x := s.addMember(t, db.RoleMember)
	s.signUp(t, x, sh.ID)
	if _, err := store.AssignCaptain(ctx, staff.Actor(), thirdLine.ID, x.ID); err != nil {
		t.Fatal(err)
	}
	y := s.addMember(t, db.RoleMember)
	s.signUp(t, y, sh.ID)
	if _, err := store.PostAnnouncement(ctx, captain.Actor(), db.NewAnnouncement{PicketLineID: &line.ID, Body: "Meet at the north door."}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PostAnnouncement(ctx, staff.Actor(), db.NewAnnouncement{JobActionID: &ja.ID, Body: "Strike HQ opens at 5:30."}); err != nil {
		t.Fatal(err)
	}
	m := s.addMember(t, db.RoleMember)

	const lineQuery = `query($id: ID!) { picketLine(id: $id) {
		id address
		captains { id name email phone }
		announcements { body author { id name email phone } }
		jobAction { announcements { body author { id name email phone } } picketLines { id address } } } }`
	lineAs := func(token, id string) lineJSON {
		t.Helper()
		var out struct{ PicketLine lineJSON }
		s.do(t, token, lineQuery, map[string]any{"id": id}, &out)
		return out.PicketLine
	}
	const signupsQuery = `query($id: ID!) { shift(id: $id) { signups { id status member { id name email phone } } } }`
	signupsAs := func(token string) []signupJSON {
		t.Helper()
		var out struct{ Shift shiftJSON }
		s.do(t, token, signupsQuery, map[string]any{"id": sh.ID}, &out)
		return out.Shift.Signups
	}
	memberIDs := func(list []signupJSON) []string {
		out := ids(list, func(s signupJSON) string { return s.Member.ID })
		sort.Strings(out)
		return out
	}
	sorted := func(ids ...string) []string {
		sort.Strings(ids)
		return ids
	}

	// A member without a sign-up: no address, no line announcements, and
	// nobody's contact details.
	l := lineAs(m.Token, line.ID)
	if l.Address != nil {
		t.Fatalf("a member without a sign-up sees the address %q", *l.Address)
	}
	if len(l.Announcements) != 0 {
		t.Fatalf("a member without a sign-up sees line announcements %+v", l.Announcements)
	}
	for _, pl := range l.JobAction.PicketLines {
		if pl.Address != nil {
			t.Fatalf("through jobAction.picketLines a member sees the address of line %s", pl.ID)
		}
	}
	if len(l.Captains) != 1 || l.Captains[0].ID != captain.ID || l.Captains[0].Name != captain.Name {
		t.Fatalf("captains = %+v, want %s by name", l.Captains, captain.ID)
	}
	if c := seen(l.Captains[0]); c != (contact{}) {
		t.Fatalf("a member sees a captain's contact details: %+v", l.Captains[0])
	}
	if len(l.JobAction.Announcements) != 1 || seen(l.JobAction.Announcements[0].Author) != (contact{}) {
		t.Fatalf("job action announcements = %+v, want one with the author's contact details hidden", l.JobAction.Announcements)
	}
	if got := signupsAs(m.Token); len(got) != 0 {
		t.Fatalf("a member without a sign-up sees sign-ups %+v", got)
	}
	third := lineAs(m.Token, thirdLine.ID)
	if len(third.Captains) != 1 || third.Captains[0].ID != x.ID || seen(third.Captains[0]) != (contact{}) {
		t.Fatalf("a member sees captain x as %+v, want no contact details", third.Captains)
	}

	// Signed up, the member sees the address and the line's announcements,
	// but still nobody else's contact details.
	var su struct{ SignUpForShift signupJSON }
	s.do(t, m.Token, `mutation($s: ID!) { signUpForShift(shiftId: $s) { id status member { id email phone } } }`, map[string]any{"s": sh.ID}, &su)
	if su.SignUpForShift.Status != "WAITLISTED" || seen(su.SignUpForShift.Member) != (contact{true, true}) {
		t.Fatalf("sign-up = %+v, want WAITLISTED with the member's own contact details", su.SignUpForShift)
	}
	l = lineAs(m.Token, line.ID)
	if l.Address == nil || *l.Address != line.Address {
		t.Fatalf("a member with a sign-up sees address %s, want %q", opt(l.Address), line.Address)
	}
	if len(l.Announcements) != 1 || l.Announcements[0].Author.ID != captain.ID || seen(l.Announcements[0].Author) != (contact{}) {
		t.Fatalf("line announcements = %+v, want the captain's without contact details", l.Announcements)
	}
	for _, pl := range l.JobAction.PicketLines {
		if (pl.Address != nil) != (pl.ID == line.ID) {
			t.Fatalf("through jobAction.picketLines line %s shows address %s; only the member's line may", pl.ID, opt(pl.Address))
		}
	}
	mine := signupsAs(m.Token)
	if len(mine) != 1 || mine[0].ID != su.SignUpForShift.ID || seen(mine[0].Member) != (contact{true, true}) {
		t.Fatalf("a member sees sign-ups %+v, want only their own, with their contact details", mine)
	}

	// The line's captain sees every sign-up with name and phone, not email.
	all := signupsAs(captain.Token)
	if got, want := memberIDs(all), sorted(x.ID, y.ID, m.ID); !equalStrings(got, want) {
		t.Fatalf("the line's captain sees sign-ups of %v, want %v", got, want)
	}
	for _, su := range all {
		if su.Member.Name == "" || seen(su.Member) != (contact{Phone: true}) {
			t.Fatalf("the line's captain sees member %+v, want name and phone only", su.Member)
		}
	}
	// ... also when reaching those members another way.
	third = lineAs(captain.Token, thirdLine.ID)
	if seen(third.Captains[0]) != (contact{Phone: true}) || third.Captains[0].Phone == nil || *third.Captains[0].Phone != x.Phone {
		t.Fatalf("the captain of x's line sees x as %+v, want the phone %q only", third.Captains[0], x.Phone)
	}

	// A captain of another line sees neither the sign-ups nor the phones.
	if got := signupsAs(otherCaptain.Token); len(got) != 0 {
		t.Fatalf("a captain of another line sees sign-ups %+v", got)
	}
	third = lineAs(otherCaptain.Token, thirdLine.ID)
	if seen(third.Captains[0]) != (contact{}) {
		t.Fatalf("a captain of another line sees x as %+v, want no contact details", third.Captains[0])
	}
	if l := lineAs(otherCaptain.Token, line.ID); l.Address != nil || len(l.Announcements) != 0 {
		t.Fatalf("a captain of another line sees address %s and announcements %+v of this line", opt(l.Address), l.Announcements)
	}
	if l := lineAs(otherCaptain.Token, otherLine.ID); l.Address == nil {
		t.Fatalf("a captain does not see the address of their own line")
	}

	// Coordinators see everything.
	for _, su := range signupsAs(staff.Token) {
		if seen(su.Member) != (contact{true, true}) {
			t.Fatalf("a coordinator sees member %+v, want email and phone", su.Member)
		}
	}
	if l := lineAs(staff.Token, thirdLine.ID); l.Address == nil || seen(l.Captains[0]) != (contact{true, true}) {
		t.Fatalf("a coordinator sees line %+v, want the address and contact details", l)
	}

	// Once x cancels, the captain no longer sees x's phone; once the member
	// cancels, the address is hidden again.
	var cancel struct{ CancelSignup signupJSON }
	s.do(t, m.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id status } }`, map[string]any{"id": su.SignUpForShift.ID}, &cancel)
	if l := lineAs(m.Token, line.ID); l.Address != nil || len(l.Announcements) != 0 {
		t.Fatalf("after cancelling, a member sees address %s and announcements %+v", opt(l.Address), l.Announcements)
	}
	for _, su := range signupsAs(x.Token) {
		s.do(t, x.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`, map[string]any{"id": su.ID}, nil)
	}
	if third := lineAs(captain.Token, thirdLine.ID); seen(third.Captains[0]) != (contact{}) {
		t.Fatalf("after x cancelled, the captain still sees x as %+v", third.Captains[0])
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
