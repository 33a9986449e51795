package db_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
)

func TestOpenShiftsOffersOnlyShiftsTheMemberCanTake(t *testing.T) {
	b := setup(t)
	line := b.Line()
	a := b.NewMember()
	held := b.ShiftOn(line, 24*time.Hour, 5)
	b.SignUp(a, held)
	overlapping := b.ShiftOn(line, 26*time.Hour, 5)
	full := b.ShiftOn(line, 48*time.Hour, 1)
	b.SignUp(b.NewMember(), full)
	cancelled := b.ShiftOn(line, 50*time.Hour, 5)
	_, err := b.Store.CancelShift(b.Ctx, b.Staff, cancelled.ID)
	if err != nil {
		t.Fatal(err)
	}
	startingSoon := b.ShiftOn(line, 10*time.Minute, 5)
	open1 := b.ShiftOn(line, 72*time.Hour, 5)
	open2 := b.ShiftOn(line, 96*time.Hour, 5)
	b.Clock.Advance(20 * time.Minute) // startingSoon has started

	endedLine := b.Line()
	b.ShiftOn(endedLine, 30*time.Hour, 5)
	_, err = b.Store.EndJobAction(b.Ctx, b.Staff, endedLine.JobActionID)
	if err != nil {
		t.Fatal(err)
	}

	page, err := b.Store.OpenShifts(b.Ctx, a, db.OpenShiftsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{open1.ID, open2.ID}, ids(page.Items)); diff != "" {
		t.Fatalf("open shifts (-want +got):\n%s\n(held %s, overlapping %s, full %s, cancelled %s, started %s)",
			diff, held.ID, overlapping.ID, full.ID, cancelled.ID, startingSoon.ID)
	}
}

func TestOpenShiftsPagesWithCursors(t *testing.T) {
	b := setup(t)
	line := b.Line()
	var want []string
	for i := range 7 {
		want = append(want, b.ShiftOn(line, time.Duration(24+5*i)*time.Hour, 3).ID)
	}
	a := b.NewMember()
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		page, err := b.Store.OpenShifts(b.Ctx, a, db.OpenShiftsQuery{PageQuery: db.PageQuery{First: 3, After: after}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page.Items)...)
		if !page.HasNextPage {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		after = db.ShiftCursor(page.Items[len(page.Items)-1])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("paged by three (-want +got):\n%s", diff)
	}
	from, to := b.Clock.Now().Add(29*time.Hour), b.Clock.Now().Add(39*time.Hour)
	page, err := b.Store.OpenShifts(b.Ctx, a, db.OpenShiftsQuery{From: &from, To: &to})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[1:3], ids(page.Items)); diff != "" {
		t.Fatalf("window [%v, %v) (-want +got):\n%s", from, to, diff)
	}
	other := b.Line()
	otherShift := b.ShiftOn(other, 24*time.Hour, 3)
	page, err = b.Store.OpenShifts(b.Ctx, a, db.OpenShiftsQuery{JobActionID: &other.JobActionID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{otherShift.ID}, ids(page.Items)); diff != "" {
		t.Fatalf("by job action (-want +got):\n%s", diff)
	}
}

func TestMyShiftsListsUpcomingActiveSignupsSoonestFirst(t *testing.T) {
	b := setup(t)
	line := b.Line()
	a := b.NewMember()
	later := b.ShiftOn(line, 48*time.Hour, 3)
	sooner := b.ShiftOn(line, 24*time.Hour, 3)
	cancelled := b.ShiftOn(line, 72*time.Hour, 3)
	past := b.ShiftOn(line, time.Hour, 3)
	b.SignUp(a, later)
	b.SignUp(a, sooner)
	b.SignUp(a, past)
	su := b.SignUp(a, cancelled)
	_, err := b.Store.CancelSignup(b.Ctx, a, su.ID)
	if err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(6 * time.Hour) // past has ended
	mine, err := b.Store.MyShifts(b.Ctx, a, db.PageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range mine.Items {
		got = append(got, s.ShiftID)
	}
	if diff := cmp.Diff([]string{sooner.ID, later.ID}, got); diff != "" {
		t.Fatalf("my shifts (-want +got):\n%s", diff)
	}
}

func ids(shifts []*db.Shift) []string {
	out := []string{}
	for _, s := range shifts {
		out = append(out, s.ID)
	}
	return out
}
