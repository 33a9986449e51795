package main

import (
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
	k := s.kit(t)
	ja := k.JobAction()
	line, otherLine, thirdLine := k.LineOf(ja), k.LineOf(ja), k.LineOf(ja)
	captain := s.captain(t, line)
	otherCaptain := s.captain(t, otherLine)
	sh := k.ShiftOn(line, 48*time.Hour, 2)
	// x holds a spot on the line and captains a third line, so every
	// member can reach x through thirdLine's captains.
	x := s.addMember(t, db.RoleMember)
	k.SignUp(x.Actor(), sh)
	k.MakeCaptain(x.Actor(), thirdLine)
	y := k.NewMember()
	k.SignUp(y, sh)
	if _, err := k.Store.PostAnnouncement(k.Ctx, captain.Actor(), db.NewAnnouncement{PicketLineID: &line.ID, Body: "Meet at the north door."}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Store.PostAnnouncement(k.Ctx, k.Staff, db.NewAnnouncement{JobActionID: &ja.ID, Body: "Strike HQ opens at 5:30."}); err != nil {
		t.Fatal(err)
	}
	coordinator := s.addMember(t, db.RoleCoordinator)
	m := s.addMember(t, db.RoleMember)

	const lineQuery = `query($id: ID!) { picketLine(id: $id) {
		id address
		captains { id name email phone }
		announcements { body author { id name email phone } }
		jobAction { announcements { body author { id name email phone } } picketLines { edges { node { id address } } } } } }`
	lineAs := func(t *testing.T, token, id string) lineJSON {
		t.Helper()
		var out struct{ PicketLine lineJSON }
		s.do(t, token, lineQuery, map[string]any{"id": id}, &out)
		return out.PicketLine
	}
	const signupsQuery = `query($id: ID!) { shift(id: $id) { signups { edges { node { id status member { id name email phone } } } } } }`
	signupsAs := func(t *testing.T, token string) []signupJSON {
		t.Helper()
		var out struct{ Shift shiftJSON }
		s.do(t, token, signupsQuery, map[string]any{"id": sh.ID}, &out)
		return out.Shift.Signups.nodes()
	}

	t.Run("a member without a sign-up sees no address, no line announcements and nobody's contact details", func(t *testing.T) {
		l := lineAs(t, m.Token, line.ID)
		if l.Address != nil {
			t.Errorf("a member without a sign-up sees the address %q", *l.Address)
		}
		if len(l.Announcements) != 0 {
			t.Errorf("a member without a sign-up sees line announcements %+v", l.Announcements)
		}
		for _, pl := range l.JobAction.PicketLines.nodes() {
			if pl.Address != nil {
				t.Errorf("through jobAction.picketLines a member sees the address of line %s", pl.ID)
			}
		}
		if len(l.Captains) != 1 || l.Captains[0].ID != captain.ID || l.Captains[0].Name != captain.Name {
			t.Fatalf("captains = %+v, want %s by name", l.Captains, captain.ID)
		}
		if c := seen(l.Captains[0]); c != (contact{}) {
			t.Errorf("a member sees a captain's contact details: %+v", l.Captains[0])
		}
		if len(l.JobAction.Announcements) != 1 || seen(l.JobAction.Announcements[0].Author) != (contact{}) {
			t.Errorf("job action announcements = %+v, want one with the author's contact details hidden", l.JobAction.Announcements)
		}
		if got := signupsAs(t, m.Token); len(got) != 0 {
			t.Errorf("a member without a sign-up sees sign-ups %+v", got)
		}
		third := lineAs(t, m.Token, thirdLine.ID)
		if len(third.Captains) != 1 || third.Captains[0].ID != x.ID || seen(third.Captains[0]) != (contact{}) {
			t.Errorf("a member sees captain x as %+v, want no contact details", third.Captains)
		}
	})

	t.Run("a captain of another line sees neither the sign-ups nor the phones", func(t *testing.T) {
		if got := signupsAs(t, otherCaptain.Token); len(got) != 0 {
			t.Errorf("a captain of another line sees sign-ups %+v", got)
		}
		if third := lineAs(t, otherCaptain.Token, thirdLine.ID); len(third.Captains) != 1 || seen(third.Captains[0]) != (contact{}) {
			t.Errorf("a captain of another line sees x as %+v, want no contact details", third.Captains)
		}
		if l := lineAs(t, otherCaptain.Token, line.ID); l.Address != nil || len(l.Announcements) != 0 {
			t.Errorf("a captain of another line sees address %s and announcements %+v of this line", opt(l.Address), l.Announcements)
		}
		if l := lineAs(t, otherCaptain.Token, otherLine.ID); l.Address == nil {
			t.Errorf("a captain does not see the address of their own line")
		}
	})

	t.Run("coordinators see everything", func(t *testing.T) {
		for _, su := range signupsAs(t, coordinator.Token) {
			if seen(su.Member) != (contact{true, true}) {
				t.Errorf("a coordinator sees member %+v, want email and phone", su.Member)
			}
		}
		if l := lineAs(t, coordinator.Token, thirdLine.ID); l.Address == nil || len(l.Captains) != 1 || seen(l.Captains[0]) != (contact{true, true}) {
			t.Errorf("a coordinator sees line %+v, want the address and contact details", l)
		}
	})

	var su signupJSON
	if !t.Run("a member who signs up sees the address and the line's announcements, and still nobody else's contact details", func(t *testing.T) {
		var out struct{ SignUpForShift signupJSON }
		s.do(t, m.Token, `mutation($s: ID!) { signUpForShift(shiftId: $s) { id status member { id email phone } } }`, map[string]any{"s": sh.ID}, &out)
		su = out.SignUpForShift
		if su.Status != "WAITLISTED" || seen(su.Member) != (contact{true, true}) {
			t.Fatalf("sign-up = %+v, want WAITLISTED with the member's own contact details", su)
		}
		l := lineAs(t, m.Token, line.ID)
		if l.Address == nil || *l.Address != line.Address {
			t.Errorf("a member with a sign-up sees address %s, want %q", opt(l.Address), line.Address)
		}
		if len(l.Announcements) != 1 || l.Announcements[0].Author.ID != captain.ID || seen(l.Announcements[0].Author) != (contact{}) {
			t.Errorf("line announcements = %+v, want the captain's without contact details", l.Announcements)
		}
		for _, pl := range l.JobAction.PicketLines.nodes() {
			if (pl.Address != nil) != (pl.ID == line.ID) {
				t.Errorf("through jobAction.picketLines line %s shows address %s; only the member's line may", pl.ID, opt(pl.Address))
			}
		}
		mine := signupsAs(t, m.Token)
		if len(mine) != 1 || mine[0].ID != su.ID || seen(mine[0].Member) != (contact{true, true}) {
			t.Errorf("a member sees sign-ups %+v, want only their own, with their contact details", mine)
		}
	}) {
		// The rules below are about the members signed up, that one too.
		t.FailNow()
	}

	t.Run("the line's captain sees every sign-up with name and phone, not email, however reached", func(t *testing.T) {
		all := signupsAs(t, captain.Token)
		got := ids(all, func(s signupJSON) string { return s.Member.ID })
		want := []string{x.ID, y.MemberID, m.ID}
		sort.Strings(got)
		sort.Strings(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the members of the sign-ups the line's captain sees (-want +got):\n%s", diff)
		}
		for _, su := range all {
			if su.Member.Name == "" || seen(su.Member) != (contact{Phone: true}) {
				t.Errorf("the line's captain sees member %+v, want name and phone only", su.Member)
			}
		}
		third := lineAs(t, captain.Token, thirdLine.ID)
		if len(third.Captains) != 1 || seen(third.Captains[0]) != (contact{Phone: true}) || *third.Captains[0].Phone != *x.Phone {
			t.Errorf("the captain of x's line sees x as %+v, want the phone %q only", third.Captains, *x.Phone)
		}
	})

	t.Run("cancelling hides the address from the member and x's phone from the captain", func(t *testing.T) {
		s.do(t, m.Token, cancelMutation, map[string]any{"id": su.ID}, nil)
		if l := lineAs(t, m.Token, line.ID); l.Address != nil || len(l.Announcements) != 0 {
			t.Errorf("after cancelling, a member sees address %s and announcements %+v", opt(l.Address), l.Announcements)
		}
		for _, su := range signupsAs(t, x.Token) {
			s.do(t, x.Token, cancelMutation, map[string]any{"id": su.ID}, nil)
		}
		if third := lineAs(t, captain.Token, thirdLine.ID); len(third.Captains) != 1 || seen(third.Captains[0]) != (contact{}) {
			t.Errorf("after x cancelled, the captain still sees x as %+v", third.Captains)
		}
	})
}
