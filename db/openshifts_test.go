package db_test

import (
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

func TestOpenShiftsOffersOnlyShiftsTheMemberCanTake(t *testing.T) {
	b := setup(t)
	line := b.line()
	a := b.newMember()
	held := b.shiftOn(line, 24*time.Hour, 5)
	b.signUp(a, held)
	overlapping := b.shiftOn(line, 26*time.Hour, 5)
	full := b.shiftOn(line, 48*time.Hour, 1)
	b.signUp(b.newMember(), full)
	cancelled := b.shiftOn(line, 50*time.Hour, 5)
	_, err := b.store.CancelShift(b.ctx, b.staff, cancelled.ID)
	mustNot(t, err)
	startingSoon := b.shiftOn(line, 10*time.Minute, 5)
	open1 := b.shiftOn(line, 72*time.Hour, 5)
	open2 := b.shiftOn(line, 96*time.Hour, 5)
	b.clock.Advance(20 * time.Minute) // startingSoon has started

	endedLine := b.line()
	b.shiftOn(endedLine, 30*time.Hour, 5)
	_, err = b.store.EndJobAction(b.ctx, b.staff, endedLine.JobActionID)
	mustNot(t, err)

	page, err := b.store.OpenShifts(b.ctx, a, db.OpenShiftsQuery{})
	mustNot(t, err)
	got := ids(page.Shifts)
	want := []string{open1.ID, open2.ID}
	if !equal(got, want) {
		t.Fatalf("open shifts %v, want %v (held %s, overlapping %s, full %s, cancelled %s, started %s)",
			got, want, held.ID, overlapping.ID, full.ID, cancelled.ID, startingSoon.ID)
	}
}

func TestOpenShiftsPagesWithCursors(t *testing.T) {
	b := setup(t)
	line := b.line()
	var want []string
	for i := range 7 {
		want = append(want, b.shiftOn(line, time.Duration(24+5*i)*time.Hour, 3).ID)
	}
	a := b.newMember()
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		page, err := b.store.OpenShifts(b.ctx, a, db.OpenShiftsQuery{First: 3, After: after})
		mustNot(t, err)
		got = append(got, ids(page.Shifts)...)
		if !page.HasNextPage {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		after = db.ShiftCursor(page.Shifts[len(page.Shifts)-1])
	}
	if !equal(got, want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
	from, to := b.clock.Now().Add(29*time.Hour), b.clock.Now().Add(39*time.Hour)
	page, err := b.store.OpenShifts(b.ctx, a, db.OpenShiftsQuery{From: &from, To: &to})
	mustNot(t, err)
	if !equal(ids(page.Shifts), want[1:3]) {
		t.Fatalf("window [%v, %v): %v, want %v", from, to, ids(page.Shifts), want[1:3])
	}
	other := b.line()
	otherShift := b.shiftOn(other, 24*time.Hour, 3)
	page, err = b.store.OpenShifts(b.ctx, a, db.OpenShiftsQuery{JobActionID: &other.JobActionID})
	mustNot(t, err)
	if !equal(ids(page.Shifts), []string{otherShift.ID}) {
		t.Fatalf("by job action: %v", ids(page.Shifts))
	}
}

func TestMyShiftsListsUpcomingActiveSignupsSoonestFirst(t *testing.T) {
	b := setup(t)
	line := b.line()
	a := b.newMember()
	later := b.shiftOn(line, 48*time.Hour, 3)
	sooner := b.shiftOn(line, 24*time.Hour, 3)
	cancelled := b.shiftOn(line, 72*time.Hour, 3)
	past := b.shiftOn(line, time.Hour, 3)
	b.signUp(a, later)
	b.signUp(a, sooner)
	b.signUp(a, past)
	su := b.signUp(a, cancelled)
	_, err := b.store.CancelSignup(b.ctx, a, su.ID)
	mustNot(t, err)
	b.clock.Advance(6 * time.Hour) // past has ended
	mine, err := b.store.MyShifts(b.ctx, a)
	mustNot(t, err)
	var got []string
	for _, s := range mine {
		got = append(got, s.ShiftID)
	}
	if !equal(got, []string{sooner.ID, later.ID}) {
		t.Fatalf("my shifts %v, want %v", got, []string{sooner.ID, later.ID})
	}
}

func ids(shifts []*db.Shift) []string {
	out := []string{}
	for _, s := range shifts {
		out = append(out, s.ID)
	}
	return out
}

func equal(a, b []string) bool {
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
