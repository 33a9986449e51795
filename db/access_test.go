package db_test

import (
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestOnlyCoordinatorsSetUpJobActionsLinesAndCaptains(t *testing.T) {
	b := setup(t)
	line := b.Line()
	member := b.NewMember()
	captain := b.CaptainOf(line)
	admin := b.Actor(b.Member(db.RoleAdmin))
	for _, who := range []struct {
		name  string
		actor db.Actor
		code  db.Code
	}{
		{"anonymous", db.Actor{}, db.CodeUnauthenticated},
		{"member", member, db.CodeForbidden},
		{"captain", captain, db.CodeForbidden},
	} {
		t.Run(who.name, func(t *testing.T) {
			_, err := b.Store.CreateJobAction(b.Ctx, who.actor, db.NewJobAction{Name: "x", Kind: db.KindStrike, Employer: "y", StartsAt: b.Clock.Now()})
			dbtest.WantCode(t, err, who.code)
			name := "Renamed"
			_, err = b.Store.UpdateJobAction(b.Ctx, who.actor, db.JobActionUpdate{ID: line.JobActionID, Name: &name})
			dbtest.WantCode(t, err, who.code)
			_, err = b.Store.EndJobAction(b.Ctx, who.actor, line.JobActionID)
			dbtest.WantCode(t, err, who.code)
			_, err = b.Store.CreatePicketLine(b.Ctx, who.actor, db.NewPicketLine{JobActionID: line.JobActionID, Name: "x", Address: "y", Latitude: 1, Longitude: 1})
			dbtest.WantCode(t, err, who.code)
			_, err = b.Store.UpdatePicketLine(b.Ctx, who.actor, db.PicketLineUpdate{ID: line.ID, Name: &name})
			dbtest.WantCode(t, err, who.code)
			_, err = b.Store.AssignCaptain(b.Ctx, who.actor, line.ID, member.MemberID)
			dbtest.WantCode(t, err, who.code)
			_, err = b.Store.RemoveCaptain(b.Ctx, who.actor, line.ID, captain.MemberID)
			dbtest.WantCode(t, err, who.code)
		})
	}
	if _, err := b.Store.CreateJobAction(b.Ctx, admin, db.NewJobAction{Name: "Admin's", Kind: db.KindLockout, Employer: "y", StartsAt: b.Clock.Now()}); err != nil {
		t.Fatalf("admin creates a job action: %v", err)
	}
}

func TestCaptainsManageShiftsOnlyOnTheirLines(t *testing.T) {
	b := setup(t)
	mine, other := b.Line(), b.Line()
	captain := b.CaptainOf(mine)
	start := b.Clock.Now().Add(24 * time.Hour)
	sh, err := b.Store.CreateShift(b.Ctx, captain, db.NewShift{PicketLineID: mine.ID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	five := 5
	_, err = b.Store.UpdateShift(b.Ctx, captain, db.ShiftUpdate{ID: sh.ID, Capacity: &five})
	if err != nil {
		t.Fatal(err)
	}

	_, err = b.Store.CreateShift(b.Ctx, captain, db.NewShift{PicketLineID: other.ID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 4})
	dbtest.WantCode(t, err, db.CodeForbidden)
	otherShift := b.ShiftOn(other, 24*time.Hour, 3)
	_, err = b.Store.UpdateShift(b.Ctx, captain, db.ShiftUpdate{ID: otherShift.ID, Capacity: &five})
	dbtest.WantCode(t, err, db.CodeForbidden)
	_, err = b.Store.CancelShift(b.Ctx, captain, otherShift.ID)
	dbtest.WantCode(t, err, db.CodeForbidden)
	_, err = b.Store.CreateShift(b.Ctx, b.NewMember(), db.NewShift{PicketLineID: mine.ID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 4})
	dbtest.WantCode(t, err, db.CodeForbidden)

	// Removing the captain takes the right away at once.
	_, err = b.Store.RemoveCaptain(b.Ctx, b.Staff, mine.ID, captain.MemberID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Store.CancelShift(b.Ctx, captain, sh.ID)
	dbtest.WantCode(t, err, db.CodeForbidden)
}

func TestAnnouncementsGoOnlyWhereTheAuthorLeads(t *testing.T) {
	b := setup(t)
	mine, other := b.Line(), b.Line()
	captain := b.CaptainOf(mine)
	a, err := b.Store.PostAnnouncement(b.Ctx, captain, db.NewAnnouncement{PicketLineID: &mine.ID, Body: "  Bring water today  ", Urgent: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Body != "Bring water today" || !a.Urgent || a.AuthorID != captain.MemberID {
		t.Fatalf("announcement %+v", a)
	}
	_, err = b.Store.PostAnnouncement(b.Ctx, captain, db.NewAnnouncement{PicketLineID: &other.ID, Body: "hi"})
	dbtest.WantCode(t, err, db.CodeForbidden)
	_, err = b.Store.PostAnnouncement(b.Ctx, captain, db.NewAnnouncement{JobActionID: &mine.JobActionID, Body: "hi"})
	dbtest.WantCode(t, err, db.CodeForbidden)
	_, err = b.Store.PostAnnouncement(b.Ctx, b.NewMember(), db.NewAnnouncement{PicketLineID: &mine.ID, Body: "hi"})
	dbtest.WantCode(t, err, db.CodeForbidden)
	_, err = b.Store.PostAnnouncement(b.Ctx, b.Staff, db.NewAnnouncement{JobActionID: &mine.JobActionID, Body: "Rally at noon"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Store.PostAnnouncement(b.Ctx, b.Staff, db.NewAnnouncement{PicketLineID: &mine.ID, JobActionID: &mine.JobActionID, Body: "both"})
	dbtest.WantCode(t, err, db.CodeBadUserInput)
	_, err = b.Store.PostAnnouncement(b.Ctx, b.Staff, db.NewAnnouncement{Body: "neither"})
	dbtest.WantCode(t, err, db.CodeBadUserInput)
	_, err = b.Store.PostAnnouncement(b.Ctx, b.Staff, db.NewAnnouncement{PicketLineID: &mine.ID, Body: "   "})
	dbtest.WantCode(t, err, db.CodeBadUserInput)

	// Line announcements reach those who may see the line's address.
	outsider := b.NewMember()
	list, err := b.Store.LineAnnouncements(b.Ctx, outsider, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("a member without a sign-up sees %d line announcements", len(list))
	}
	b.SignUp(outsider, b.ShiftOn(mine, 24*time.Hour, 3))
	list, err = b.Store.LineAnnouncements(b.Ctx, outsider, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("a signed-up member sees %d line announcements, want 1", len(list))
	}
}

func TestAddressIsVisibleOnlyToThoseTakingPart(t *testing.T) {
	b := setup(t)
	line := b.Line()
	captain := b.CaptainOf(line)
	member := b.NewMember()
	vis := func(a db.Actor) bool {
		t.Helper()
		m, err := b.Store.AddressVisibility(b.Ctx, a, []string{line.ID})
		if err != nil {
			t.Fatal(err)
		}
		return m[line.ID]
	}
	if vis(member) {
		t.Fatal("a member without a sign-up sees the address")
	}
	if !vis(captain) || !vis(b.Staff) {
		t.Fatal("captain or coordinator cannot see the address")
	}
	su := b.SignUp(member, b.ShiftOn(line, 24*time.Hour, 3))
	if !vis(member) {
		t.Fatal("a signed-up member cannot see the address")
	}
	_, err := b.Store.CancelSignup(b.Ctx, member, su.ID)
	if err != nil {
		t.Fatal(err)
	}
	if vis(member) {
		t.Fatal("a member whose only sign-up was cancelled still sees the address")
	}
}

func TestContactDetailsVisibility(t *testing.T) {
	b := setup(t)
	line, other := b.Line(), b.Line()
	captain := b.CaptainOf(line)
	otherCaptain := b.CaptainOf(other)
	member, stranger := b.NewMember(), b.NewMember()
	b.SignUp(member, b.ShiftOn(line, 24*time.Hour, 3))
	check := func(viewer db.Actor, target string, want db.ContactVisibility) {
		t.Helper()
		m, err := b.Store.ContactVisibilities(b.Ctx, viewer, []string{target})
		if err != nil {
			t.Fatal(err)
		}
		if m[target] != want {
			t.Fatalf("visibility %+v, want %+v", m[target], want)
		}
	}
	check(member, member.MemberID, db.ContactVisibility{Email: true, Phone: true})
	check(b.Staff, member.MemberID, db.ContactVisibility{Email: true, Phone: true})
	check(captain, member.MemberID, db.ContactVisibility{Phone: true})
	check(otherCaptain, member.MemberID, db.ContactVisibility{})
	check(stranger, member.MemberID, db.ContactVisibility{})
	check(member, captain.MemberID, db.ContactVisibility{})
}

func TestShiftSignupsListForCaptainsAndOwners(t *testing.T) {
	b := setup(t)
	line := b.Line()
	captain := b.CaptainOf(line)
	sh := b.ShiftOn(line, 24*time.Hour, 1)
	first, second := b.NewMember(), b.NewMember()
	b.SignUp(first, sh)
	b.SignUp(second, sh)
	all, err := b.Store.ShiftSignups(b.Ctx, captain, sh.ID, db.PageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 2 || all.Items[0].MemberID != first.MemberID || all.Items[1].Status != db.SignupWaitlisted {
		t.Fatalf("captain's list: %+v", all)
	}
	own, err := b.Store.ShiftSignups(b.Ctx, second, sh.ID, db.PageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(own.Items) != 1 || own.Items[0].MemberID != second.MemberID {
		t.Fatalf("member's list: %+v", own)
	}
	none, err := b.Store.ShiftSignups(b.Ctx, b.NewMember(), sh.ID, db.PageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(none.Items) != 0 {
		t.Fatalf("stranger sees %d sign-ups", len(none.Items))
	}
}

func TestInputIsValidated(t *testing.T) {
	b := setup(t)
	line := b.Line()
	now := b.Clock.Now()
	cases := []struct {
		name  string
		field string
		err   error
	}{
		{"shift in the past", "startsAt", second(b.Store.CreateShift(b.Ctx, b.Staff, db.NewShift{PicketLineID: line.ID, StartsAt: now.Add(-time.Hour), EndsAt: now, Capacity: 3}))},
		{"shift ending before start", "endsAt", second(b.Store.CreateShift(b.Ctx, b.Staff, db.NewShift{PicketLineID: line.ID, StartsAt: now.Add(2 * time.Hour), EndsAt: now.Add(time.Hour), Capacity: 3}))},
		{"shift too long", "endsAt", second(b.Store.CreateShift(b.Ctx, b.Staff, db.NewShift{PicketLineID: line.ID, StartsAt: now.Add(time.Hour), EndsAt: now.Add(26 * time.Hour), Capacity: 3}))},
		{"zero capacity", "capacity", second(b.Store.CreateShift(b.Ctx, b.Staff, db.NewShift{PicketLineID: line.ID, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), Capacity: 0}))},
		{"latitude", "latitude", second(b.Store.CreatePicketLine(b.Ctx, b.Staff, db.NewPicketLine{JobActionID: line.JobActionID, Name: "x", Address: "y", Latitude: 91, Longitude: 0}))},
		{"empty name", "name", second(b.Store.CreateJobAction(b.Ctx, b.Staff, db.NewJobAction{Name: " ", Kind: db.KindStrike, Employer: "y", StartsAt: now}))},
		{"bad kind", "kind", second(b.Store.CreateJobAction(b.Ctx, b.Staff, db.NewJobAction{Name: "x", Kind: "RALLY", Employer: "y", StartsAt: now}))},
		{"bad email", "email", second(b.Store.UpdateMyContact(b.Ctx, b.Staff, db.ContactUpdate{Email: ptr("not-an-email")}))},
		{"bad phone", "phone", second(b.Store.UpdateMyContact(b.Ctx, b.Staff, db.ContactUpdate{Phone: ptr("call me")}))},
		{"page size", "first", second(b.Store.OpenShifts(b.Ctx, b.Staff, db.OpenShiftsQuery{PageQuery: db.PageQuery{First: 500}}))},
		{"cursor", "after", second(b.Store.OpenShifts(b.Ctx, b.Staff, db.OpenShiftsQuery{PageQuery: db.PageQuery{After: "garbage"}}))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if de := dbtest.WantCode(t, c.err, db.CodeBadUserInput); de.Field != c.field {
				t.Fatalf("field %q, want %q", de.Field, c.field)
			}
		})
	}
}

func TestUnknownIDsAreNotFound(t *testing.T) {
	b := setup(t)
	a := b.NewMember()
	for _, id := range []string{"nope", "7f1d0a43-1b7e-4c52-9c55-3d2f8e1f0a11"} {
		_, err := b.Store.SignUpForShift(b.Ctx, a, id, "")
		dbtest.WantCode(t, err, db.CodeNotFound)
		_, err = b.Store.CancelSignup(b.Ctx, a, id)
		dbtest.WantCode(t, err, db.CodeNotFound)
		_, err = b.Store.CancelShift(b.Ctx, b.Staff, id)
		dbtest.WantCode(t, err, db.CodeNotFound)
		_, err = b.Store.CreatePicketLine(b.Ctx, b.Staff, db.NewPicketLine{JobActionID: id, Name: "x", Address: "y"})
		dbtest.WantCode(t, err, db.CodeNotFound)
	}
}

func TestUpdateMyContact(t *testing.T) {
	b := setup(t)
	a := b.NewMember()
	m, err := b.Store.UpdateMyContact(b.Ctx, a, db.ContactUpdate{Name: ptr("Rosa Cardinal"), Email: ptr(" Rosa@Example.ORG "), Phone: ptr("+1 (403) 555-0199")})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "Rosa Cardinal" || m.Email != "rosa@example.org" || *m.Phone != "+1 (403) 555-0199" {
		t.Fatalf("updated member %+v", m)
	}
	m, err = b.Store.UpdateMyContact(b.Ctx, a, db.ContactUpdate{Phone: ptr("")})
	if err != nil {
		t.Fatal(err)
	}
	if m.Phone != nil || m.Name != "Rosa Cardinal" {
		t.Fatalf("after removing the phone: %+v", m)
	}
	taken := b.Member(db.RoleMember)
	_, err = b.Store.UpdateMyContact(b.Ctx, a, db.ContactUpdate{Email: &taken.Email})
	dbtest.WantCode(t, err, db.CodeConflict)
}

func second[T any](_ T, err error) error { return err }

func ptr[T any](v T) *T { return &v }
