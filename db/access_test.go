package db_test

import (
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

func TestOnlyCoordinatorsSetUpJobActionsLinesAndCaptains(t *testing.T) {
	b := setup(t)
	line := b.line()
	member := b.newMember()
	captain := b.captainOf(line)
	admin := b.actor(b.member(db.RoleAdmin))
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
			_, err := b.store.CreateJobAction(b.ctx, who.actor, db.NewJobAction{Name: "x", Kind: db.KindStrike, Employer: "y", StartsAt: b.clock.Now()})
			wantCode(t, err, who.code)
			name := "Renamed"
			_, err = b.store.UpdateJobAction(b.ctx, who.actor, db.JobActionUpdate{ID: line.JobActionID, Name: &name})
			wantCode(t, err, who.code)
			_, err = b.store.EndJobAction(b.ctx, who.actor, line.JobActionID)
			wantCode(t, err, who.code)
			_, err = b.store.CreatePicketLine(b.ctx, who.actor, db.NewPicketLine{JobActionID: line.JobActionID, Name: "x", Address: "y", Latitude: 1, Longitude: 1})
			wantCode(t, err, who.code)
			_, err = b.store.UpdatePicketLine(b.ctx, who.actor, db.PicketLineUpdate{ID: line.ID, Name: &name})
			wantCode(t, err, who.code)
			_, err = b.store.AssignCaptain(b.ctx, who.actor, line.ID, member.MemberID)
			wantCode(t, err, who.code)
			_, err = b.store.RemoveCaptain(b.ctx, who.actor, line.ID, captain.MemberID)
			wantCode(t, err, who.code)
		})
	}
	if _, err := b.store.CreateJobAction(b.ctx, admin, db.NewJobAction{Name: "Admin's", Kind: db.KindLockout, Employer: "y", StartsAt: b.clock.Now()}); err != nil {
		t.Fatalf("admin creates a job action: %v", err)
	}
}

func TestCaptainsManageShiftsOnlyOnTheirLines(t *testing.T) {
	b := setup(t)
	mine, other := b.line(), b.line()
	captain := b.captainOf(mine)
	start := b.clock.Now().Add(24 * time.Hour)
	sh, err := b.store.CreateShift(b.ctx, captain, db.NewShift{PicketLineID: mine.ID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 4})
	mustNot(t, err)
	five := 5
	_, err = b.store.UpdateShift(b.ctx, captain, db.ShiftUpdate{ID: sh.ID, Capacity: &five})
	mustNot(t, err)

	_, err = b.store.CreateShift(b.ctx, captain, db.NewShift{PicketLineID: other.ID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 4})
	wantCode(t, err, db.CodeForbidden)
	otherShift := b.shiftOn(other, 24*time.Hour, 3)
	_, err = b.store.UpdateShift(b.ctx, captain, db.ShiftUpdate{ID: otherShift.ID, Capacity: &five})
	wantCode(t, err, db.CodeForbidden)
	_, err = b.store.CancelShift(b.ctx, captain, otherShift.ID)
	wantCode(t, err, db.CodeForbidden)
	_, err = b.store.CreateShift(b.ctx, b.newMember(), db.NewShift{PicketLineID: mine.ID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 4})
	wantCode(t, err, db.CodeForbidden)

	// Removing the captain takes the right away at once.
	_, err = b.store.RemoveCaptain(b.ctx, b.staff, mine.ID, captain.MemberID)
	mustNot(t, err)
	_, err = b.store.CancelShift(b.ctx, captain, sh.ID)
	wantCode(t, err, db.CodeForbidden)
}

func TestAnnouncementsGoOnlyWhereTheAuthorLeads(t *testing.T) {
	b := setup(t)
	mine, other := b.line(), b.line()
	captain := b.captainOf(mine)
	a, err := b.store.PostAnnouncement(b.ctx, captain, db.NewAnnouncement{PicketLineID: &mine.ID, Body: "  Bring water today  ", Urgent: true})
	mustNot(t, err)
	if a.Body != "Bring water today" || !a.Urgent || a.AuthorID != captain.MemberID {
		t.Fatalf("announcement %+v", a)
	}
	_, err = b.store.PostAnnouncement(b.ctx, captain, db.NewAnnouncement{PicketLineID: &other.ID, Body: "hi"})
	wantCode(t, err, db.CodeForbidden)
	_, err = b.store.PostAnnouncement(b.ctx, captain, db.NewAnnouncement{JobActionID: &mine.JobActionID, Body: "hi"})
	wantCode(t, err, db.CodeForbidden)
	_, err = b.store.PostAnnouncement(b.ctx, b.newMember(), db.NewAnnouncement{PicketLineID: &mine.ID, Body: "hi"})
	wantCode(t, err, db.CodeForbidden)
	_, err = b.store.PostAnnouncement(b.ctx, b.staff, db.NewAnnouncement{JobActionID: &mine.JobActionID, Body: "Rally at noon"})
	mustNot(t, err)
	_, err = b.store.PostAnnouncement(b.ctx, b.staff, db.NewAnnouncement{PicketLineID: &mine.ID, JobActionID: &mine.JobActionID, Body: "both"})
	wantCode(t, err, db.CodeBadUserInput)
	_, err = b.store.PostAnnouncement(b.ctx, b.staff, db.NewAnnouncement{Body: "neither"})
	wantCode(t, err, db.CodeBadUserInput)
	_, err = b.store.PostAnnouncement(b.ctx, b.staff, db.NewAnnouncement{PicketLineID: &mine.ID, Body: "   "})
	wantCode(t, err, db.CodeBadUserInput)

	// Line announcements reach those who may see the line's address.
	outsider := b.newMember()
	list, err := b.store.LineAnnouncements(b.ctx, outsider, mine.ID)
	mustNot(t, err)
	if len(list) != 0 {
		t.Fatalf("a member without a sign-up sees %d line announcements", len(list))
	}
	b.signUp(outsider, b.shiftOn(mine, 24*time.Hour, 3))
	list, err = b.store.LineAnnouncements(b.ctx, outsider, mine.ID)
	mustNot(t, err)
	if len(list) != 1 {
		t.Fatalf("a signed-up member sees %d line announcements, want 1", len(list))
	}
}

func TestAddressIsVisibleOnlyToThoseTakingPart(t *testing.T) {
	b := setup(t)
	line := b.line()
	captain := b.captainOf(line)
	member := b.newMember()
	vis := func(a db.Actor) bool {
		t.Helper()
		m, err := b.store.AddressVisibility(b.ctx, a, []string{line.ID})
		mustNot(t, err)
		return m[line.ID]
	}
	if vis(member) {
		t.Fatal("a member without a sign-up sees the address")
	}
	if !vis(captain) || !vis(b.staff) {
		t.Fatal("captain or coordinator cannot see the address")
	}
	su := b.signUp(member, b.shiftOn(line, 24*time.Hour, 3))
	if !vis(member) {
		t.Fatal("a signed-up member cannot see the address")
	}
	_, err := b.store.CancelSignup(b.ctx, member, su.ID)
	mustNot(t, err)
	if vis(member) {
		t.Fatal("a member whose only sign-up was cancelled still sees the address")
	}
}

func TestContactDetailsVisibility(t *testing.T) {
	b := setup(t)
	line, other := b.line(), b.line()
	captain := b.captainOf(line)
	otherCaptain := b.captainOf(other)
	member, stranger := b.newMember(), b.newMember()
	b.signUp(member, b.shiftOn(line, 24*time.Hour, 3))
	check := func(viewer db.Actor, target string, want db.ContactVisibility) {
		t.Helper()
		m, err := b.store.ContactVisibilities(b.ctx, viewer, []string{target})
		mustNot(t, err)
		if m[target] != want {
			t.Fatalf("visibility %+v, want %+v", m[target], want)
		}
	}
	check(member, member.MemberID, db.ContactVisibility{Email: true, Phone: true})
	check(b.staff, member.MemberID, db.ContactVisibility{Email: true, Phone: true})
	check(captain, member.MemberID, db.ContactVisibility{Phone: true})
	check(otherCaptain, member.MemberID, db.ContactVisibility{})
	check(stranger, member.MemberID, db.ContactVisibility{})
	check(member, captain.MemberID, db.ContactVisibility{})
}

func TestShiftSignupsListForCaptainsAndOwners(t *testing.T) {
	b := setup(t)
	line := b.line()
	captain := b.captainOf(line)
	sh := b.shiftOn(line, 24*time.Hour, 1)
	first, second := b.newMember(), b.newMember()
	b.signUp(first, sh)
	b.signUp(second, sh)
	all, err := b.store.ShiftSignups(b.ctx, captain, sh.ID)
	mustNot(t, err)
	if len(all) != 2 || all[0].MemberID != first.MemberID || all[1].Status != db.SignupWaitlisted {
		t.Fatalf("captain's list: %+v", all)
	}
	own, err := b.store.ShiftSignups(b.ctx, second, sh.ID)
	mustNot(t, err)
	if len(own) != 1 || own[0].MemberID != second.MemberID {
		t.Fatalf("member's list: %+v", own)
	}
	none, err := b.store.ShiftSignups(b.ctx, b.newMember(), sh.ID)
	mustNot(t, err)
	if len(none) != 0 {
		t.Fatalf("stranger sees %d sign-ups", len(none))
	}
}

func TestInputIsValidated(t *testing.T) {
	b := setup(t)
	line := b.line()
	now := b.clock.Now()
	cases := []struct {
		name  string
		field string
		err   error
	}{
		{"shift in the past", "startsAt", second(b.store.CreateShift(b.ctx, b.staff, db.NewShift{PicketLineID: line.ID, StartsAt: now.Add(-time.Hour), EndsAt: now, Capacity: 3}))},
		{"shift ending before start", "endsAt", second(b.store.CreateShift(b.ctx, b.staff, db.NewShift{PicketLineID: line.ID, StartsAt: now.Add(2 * time.Hour), EndsAt: now.Add(time.Hour), Capacity: 3}))},
		{"shift too long", "endsAt", second(b.store.CreateShift(b.ctx, b.staff, db.NewShift{PicketLineID: line.ID, StartsAt: now.Add(time.Hour), EndsAt: now.Add(26 * time.Hour), Capacity: 3}))},
		{"zero capacity", "capacity", second(b.store.CreateShift(b.ctx, b.staff, db.NewShift{PicketLineID: line.ID, StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour), Capacity: 0}))},
		{"latitude", "latitude", second(b.store.CreatePicketLine(b.ctx, b.staff, db.NewPicketLine{JobActionID: line.JobActionID, Name: "x", Address: "y", Latitude: 91, Longitude: 0}))},
		{"empty name", "name", second(b.store.CreateJobAction(b.ctx, b.staff, db.NewJobAction{Name: " ", Kind: db.KindStrike, Employer: "y", StartsAt: now}))},
		{"bad kind", "kind", second(b.store.CreateJobAction(b.ctx, b.staff, db.NewJobAction{Name: "x", Kind: "RALLY", Employer: "y", StartsAt: now}))},
		{"bad email", "email", second(b.store.UpdateMyContact(b.ctx, b.staff, db.ContactUpdate{Email: ptr("not-an-email")}))},
		{"bad phone", "phone", second(b.store.UpdateMyContact(b.ctx, b.staff, db.ContactUpdate{Phone: ptr("call me")}))},
		{"page size", "first", second(b.store.OpenShifts(b.ctx, b.staff, db.OpenShiftsQuery{First: 500}))},
		{"cursor", "after", second(b.store.OpenShifts(b.ctx, b.staff, db.OpenShiftsQuery{After: "garbage"}))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, c.err, db.CodeBadUserInput)
			var de *db.Error
			errorsAs(c.err, &de)
			if de.Field != c.field {
				t.Fatalf("field %q, want %q", de.Field, c.field)
			}
		})
	}
}

func TestUnknownIDsAreNotFound(t *testing.T) {
	b := setup(t)
	a := b.newMember()
	for _, id := range []string{"nope", "7f1d0a43-1b7e-4c52-9c55-3d2f8e1f0a11"} {
		_, err := b.store.SignUpForShift(b.ctx, a, id, "")
		wantCode(t, err, db.CodeNotFound)
		_, err = b.store.CancelSignup(b.ctx, a, id)
		wantCode(t, err, db.CodeNotFound)
		_, err = b.store.CancelShift(b.ctx, b.staff, id)
		wantCode(t, err, db.CodeNotFound)
		_, err = b.store.CreatePicketLine(b.ctx, b.staff, db.NewPicketLine{JobActionID: id, Name: "x", Address: "y"})
		wantCode(t, err, db.CodeNotFound)
	}
}

func TestUpdateMyContact(t *testing.T) {
	b := setup(t)
	a := b.newMember()
	m, err := b.store.UpdateMyContact(b.ctx, a, db.ContactUpdate{Name: ptr("Rosa Cardinal"), Email: ptr(" Rosa@Example.ORG "), Phone: ptr("+1 (403) 555-0199")})
	mustNot(t, err)
	if m.Name != "Rosa Cardinal" || m.Email != "rosa@example.org" || *m.Phone != "+1 (403) 555-0199" {
		t.Fatalf("updated member %+v", m)
	}
	m, err = b.store.UpdateMyContact(b.ctx, a, db.ContactUpdate{Phone: ptr("")})
	mustNot(t, err)
	if m.Phone != nil || m.Name != "Rosa Cardinal" {
		t.Fatalf("after removing the phone: %+v", m)
	}
	taken := b.member(db.RoleMember)
	_, err = b.store.UpdateMyContact(b.ctx, a, db.ContactUpdate{Email: &taken.Email})
	wantCode(t, err, db.CodeConflict)
}

func second[T any](_ T, err error) error { return err }

func ptr[T any](v T) *T { return &v }
