package db_test

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestSignupNeverExceedsCapacity(t *testing.T) {
	b := setup(t)
	sh := b.Shift(10)
	const racers = 200
	actors := make([]db.Actor, racers)
	for i := range actors {
		actors[i] = b.NewMember()
	}
	results := make([]*db.Signup, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			su, err := b.Store.SignUpForShift(b.Ctx, actors[i], sh.ID, "")
			if err != nil {
				t.Errorf("sign up %d: %v", i, err)
				return
			}
			results[i] = su
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	var signedUp int
	var positions []int
	for _, su := range results {
		switch su.Status {
		case db.SignupSignedUp:
			signedUp++
		case db.SignupWaitlisted:
			positions = append(positions, *su.WaitlistPosition)
		default:
			t.Fatalf("unexpected status %s", su.Status)
		}
	}
	if signedUp != 10 || len(positions) != 190 {
		t.Fatalf("got %d signed up and %d waitlisted, want 10 and 190", signedUp, len(positions))
	}
	sort.Ints(positions)
	for i, p := range positions {
		if p != i+1 {
			t.Fatalf("waitlist positions are not 1..190: position %d is %d", i+1, p)
		}
	}
	got := b.ReloadShift(sh.ID)
	if got.SignedUpCount != 10 || got.WaitlistCount != 190 || got.SpotsLeft() != 0 {
		t.Fatalf("shift counts: signed up %d, waitlist %d, spots %d", got.SignedUpCount, got.WaitlistCount, got.SpotsLeft())
	}
}

func TestWaitlistIsFirstComeFirstServed(t *testing.T) {
	b := setup(t)
	sh := b.Shift(1)
	first := b.NewMember()
	holder := b.SignUp(first, sh)
	var waiting []db.Actor
	for i := range 3 {
		a := b.NewMember()
		su := b.SignUp(a, sh)
		if su.Status != db.SignupWaitlisted || *su.WaitlistPosition != i+1 {
			t.Fatalf("sign-up %d: status %s position %v, want WAITLISTED %d", i, su.Status, su.WaitlistPosition, i+1)
		}
		waiting = append(waiting, a)
	}
	if _, err := b.Store.CancelSignup(b.Ctx, first, holder.ID); err != nil {
		t.Fatal(err)
	}
	mine, err := b.Store.MySignups(b.Ctx, waiting[0], []string{sh.ID})
	if err != nil {
		t.Fatal(err)
	}
	if mine[sh.ID].Status != db.SignupSignedUp {
		t.Fatalf("head of waitlist is %s after a cancellation, want SIGNED_UP", mine[sh.ID].Status)
	}
	for i, a := range waiting[1:] {
		mine, err := b.Store.MySignups(b.Ctx, a, []string{sh.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got := mine[sh.ID]; got.Status != db.SignupWaitlisted || *got.WaitlistPosition != i+1 {
			t.Fatalf("waiting member %d: %s at %v, want WAITLISTED at %d", i+2, got.Status, got.WaitlistPosition, i+1)
		}
	}
	if got := b.ReloadShift(sh.ID); got.SignedUpCount != 1 || got.WaitlistCount != 2 {
		t.Fatalf("counts %d/%d, want 1/2", got.SignedUpCount, got.WaitlistCount)
	}
}

func TestCaptainCancellationPromotesWaitlist(t *testing.T) {
	b := setup(t)
	line := b.Line()
	captain := b.CaptainOf(line)
	sh := b.ShiftOn(line, time.Hour, 1) // inside the cutoff: only a captain may cancel
	holder := b.SignUp(b.NewMember(), sh)
	next := b.NewMember()
	b.SignUp(next, sh)
	su, err := b.Store.CancelSignup(b.Ctx, captain, holder.ID)
	if err != nil {
		t.Fatal(err)
	}
	if su.Status != db.SignupCancelled {
		t.Fatalf("status %s, want CANCELLED", su.Status)
	}
	mine, err := b.Store.MySignups(b.Ctx, next, []string{sh.ID})
	if err != nil {
		t.Fatal(err)
	}
	if mine[sh.ID].Status != db.SignupSignedUp {
		t.Fatalf("waiting member is %s, want SIGNED_UP", mine[sh.ID].Status)
	}
}

func TestRaisingCapacityPromotesWaitlistInOrder(t *testing.T) {
	b := setup(t)
	sh := b.Shift(1)
	b.SignUp(b.NewMember(), sh)
	var waiting []db.Actor
	for range 3 {
		a := b.NewMember()
		b.SignUp(a, sh)
		waiting = append(waiting, a)
	}
	capacity := 3
	got, err := b.Store.UpdateShift(b.Ctx, b.Staff, db.ShiftUpdate{ID: sh.ID, Capacity: &capacity})
	if err != nil {
		t.Fatal(err)
	}
	if got.SignedUpCount != 3 || got.WaitlistCount != 1 {
		t.Fatalf("counts %d/%d, want 3/1", got.SignedUpCount, got.WaitlistCount)
	}
	want := []db.SignupStatus{db.SignupSignedUp, db.SignupSignedUp, db.SignupWaitlisted}
	for i, a := range waiting {
		mine, err := b.Store.MySignups(b.Ctx, a, []string{sh.ID})
		if err != nil {
			t.Fatal(err)
		}
		if mine[sh.ID].Status != want[i] {
			t.Fatalf("waiting member %d is %s, want %s", i+1, mine[sh.ID].Status, want[i])
		}
	}
}

func TestCapacityCannotDropBelowSignedUp(t *testing.T) {
	b := setup(t)
	sh := b.Shift(3)
	b.SignUp(b.NewMember(), sh)
	b.SignUp(b.NewMember(), sh)
	one := 1
	_, err := b.Store.UpdateShift(b.Ctx, b.Staff, db.ShiftUpdate{ID: sh.ID, Capacity: &one})
	if de := dbtest.WantCode(t, err, db.CodeBadUserInput); de.Field != "capacity" {
		t.Fatalf("field %q, want capacity", de.Field)
	}
}

func TestNoOverlappingSignups(t *testing.T) {
	b := setup(t)
	line := b.Line()
	a := b.NewMember()
	morning := b.ShiftOn(line, 24*time.Hour, 5)
	overlapping := b.ShiftOn(line, 26*time.Hour, 5)
	adjacent := b.ShiftOn(line, 28*time.Hour, 5)
	b.SignUp(a, morning)
	_, err := b.Store.SignUpForShift(b.Ctx, a, overlapping.ID, "")
	dbtest.WantCode(t, err, db.CodeConflict)
	if su := b.SignUp(a, adjacent); su.Status != db.SignupSignedUp {
		t.Fatalf("adjacent shift: %s, want SIGNED_UP", su.Status)
	}
}

func TestOverlapIsRefusedByTheDatabase(t *testing.T) {
	b := setup(t)
	line := b.Line()
	a := b.NewMember()
	one := b.ShiftOn(line, 24*time.Hour, 5)
	other := b.ShiftOn(line, 25*time.Hour, 5)
	b.SignUp(a, one)
	// Bypass the use-case entirely: the constraint itself must refuse.
	_, err := b.Store.Pool().Exec(b.Ctx, `
INSERT INTO signups (shift_id, member_id, status, period)
VALUES ($1, $2, 'SIGNED_UP', tstzrange($3, $4))`, other.ID, a.MemberID, other.StartsAt, other.EndsAt)
	code, constraint := pgCode(err)
	if code != "23P01" || constraint != "signups_no_overlap" {
		t.Fatalf("direct insert of an overlapping sign-up: %v, want exclusion violation", err)
	}
}

func TestConcurrentOverlappingSignupsHoldOnlyOne(t *testing.T) {
	b := setup(t)
	line := b.Line()
	a := b.NewMember()
	var shifts []*db.Shift
	for i := range 20 {
		shifts = append(shifts, b.ShiftOn(line, 24*time.Hour+time.Duration(i)*time.Minute, 5))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := 0
	for _, sh := range shifts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.Store.SignUpForShift(b.Ctx, a, sh.ID, "")
			if err == nil {
				mu.Lock()
				held++
				mu.Unlock()
			} else if db.ErrorCode(err) != db.CodeConflict {
				t.Errorf("sign up: %v", err)
			}
		}()
	}
	wg.Wait()
	if held != 1 {
		t.Fatalf("member holds %d overlapping shifts, want 1", held)
	}
}

func TestSigningUpTwiceReturnsTheExistingSignup(t *testing.T) {
	b := setup(t)
	sh := b.Shift(5)
	a := b.NewMember()
	first := b.SignUp(a, sh)
	second := b.SignUp(a, sh)
	if first.ID != second.ID {
		t.Fatalf("second sign-up %s differs from first %s", second.ID, first.ID)
	}
	if got := b.ReloadShift(sh.ID); got.SignedUpCount != 1 {
		t.Fatalf("signed up count %d, want 1", got.SignedUpCount)
	}
}

func TestIdempotencyKeyReturnsTheFirstAnswer(t *testing.T) {
	b := setup(t)
	sh := b.Shift(1)
	a := b.NewMember()
	first, err := b.Store.SignUpForShift(b.Ctx, a, sh.ID, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Store.CancelSignup(b.Ctx, a, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A retry of the first request must not sign the member up again.
	again, err := b.Store.SignUpForShift(b.Ctx, a, sh.ID, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Status != db.SignupCancelled {
		t.Fatalf("retry returned %s (%s), want the first sign-up %s, now CANCELLED", again.ID, again.Status, first.ID)
	}
	if got := b.ReloadShift(sh.ID); got.SignedUpCount != 0 {
		t.Fatalf("signed up count %d after a retried request, want 0", got.SignedUpCount)
	}
	_, err = b.Store.SignUpForShift(b.Ctx, a, b.Shift(1).ID, "key-1")
	dbtest.WantCode(t, err, db.CodeConflict)
}

func TestConcurrentRetriesWithOneKeyCreateOneSignup(t *testing.T) {
	b := setup(t)
	sh := b.Shift(5)
	a := b.NewMember()
	ids := make([]string, 30)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			su, err := b.Store.SignUpForShift(b.Ctx, a, sh.ID, "retry-key")
			if err != nil {
				t.Errorf("retry %d: %v", i, err)
				return
			}
			ids[i] = su.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("retries returned different sign-ups: %v", ids)
		}
	}
	if got := b.ReloadShift(sh.ID); got.SignedUpCount != 1 {
		t.Fatalf("signed up count %d, want 1", got.SignedUpCount)
	}
}

func TestNoSignupForClosedShifts(t *testing.T) {
	b := setup(t)
	line := b.Line()
	started := b.ShiftOn(line, time.Hour, 5)
	cancelled := b.ShiftOn(line, 30*time.Hour, 5)
	_, err := b.Store.CancelShift(b.Ctx, b.Staff, cancelled.ID)
	if err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(time.Hour)
	a := b.NewMember()
	_, err = b.Store.SignUpForShift(b.Ctx, a, started.ID, "")
	dbtest.WantCode(t, err, db.CodeShiftClosed)
	_, err = b.Store.SignUpForShift(b.Ctx, a, cancelled.ID, "")
	dbtest.WantCode(t, err, db.CodeShiftClosed)

	other := b.Shift(5)
	ja, err := b.Store.PicketLinesByIDs(b.Ctx, b.Staff, []string{other.PicketLineID})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Store.EndJobAction(b.Ctx, b.Staff, ja[other.PicketLineID].JobActionID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Store.SignUpForShift(b.Ctx, a, other.ID, "")
	dbtest.WantCode(t, err, db.CodeShiftClosed)
}

func TestMemberCannotCancelWithinCutoff(t *testing.T) {
	b := setup(t)
	line := b.Line()
	captain := b.CaptainOf(line)
	sh := b.ShiftOn(line, 3*time.Hour, 5)
	a := b.NewMember()
	su := b.SignUp(a, sh)
	b.Clock.Advance(61 * time.Minute) // 1h59m before the start
	_, err := b.Store.CancelSignup(b.Ctx, a, su.ID)
	dbtest.WantCode(t, err, db.CodeShiftClosed)
	got, err := b.Store.CancelSignup(b.Ctx, captain, su.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != db.SignupCancelled {
		t.Fatalf("captain's cancel: %s", got.Status)
	}
	su2 := b.SignUp(b.NewMember(), b.ShiftOn(line, 30*time.Minute, 5))
	_, err = b.Store.CancelSignup(b.Ctx, b.Staff, su2.ID)
	if err != nil {
		t.Fatal(err)
	}
}

func TestMemberCanCancelJustBeforeCutoff(t *testing.T) {
	b := setup(t)
	sh := b.Shift(5)
	a := b.NewMember()
	su := b.SignUp(a, sh)
	b.Clock.Advance(24*time.Hour - 2*time.Hour - time.Minute)
	got, err := b.Store.CancelSignup(b.Ctx, a, su.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != db.SignupCancelled {
		t.Fatalf("status %s", got.Status)
	}
}

func TestCancelCutoffIsPerJobAction(t *testing.T) {
	b := setup(t)
	line := b.Line()
	thirty := 30
	_, err := b.Store.UpdateJobAction(b.Ctx, b.Staff, db.JobActionUpdate{ID: line.JobActionID, CancelCutoffMinutes: &thirty})
	if err != nil {
		t.Fatal(err)
	}
	sh := b.ShiftOn(line, time.Hour, 5)
	a := b.NewMember()
	su := b.SignUp(a, sh)
	if _, err := b.Store.CancelSignup(b.Ctx, a, su.ID); err != nil {
		t.Fatalf("cancel an hour ahead with a 30-minute cutoff: %v", err)
	}
}

func TestMembersCancelOnlyTheirOwnSignups(t *testing.T) {
	b := setup(t)
	sh := b.Shift(5)
	su := b.SignUp(b.NewMember(), sh)
	_, err := b.Store.CancelSignup(b.Ctx, b.NewMember(), su.ID)
	dbtest.WantCode(t, err, db.CodeForbidden)
	_, err = b.Store.CancelSignup(b.Ctx, b.CaptainOf(b.Line()), su.ID)
	dbtest.WantCode(t, err, db.CodeForbidden)
}

func TestCancelShiftCancelsItsSignups(t *testing.T) {
	b := setup(t)
	line := b.Line()
	captain := b.CaptainOf(line)
	sh := b.ShiftOn(line, 24*time.Hour, 1)
	a, w := b.NewMember(), b.NewMember()
	b.SignUp(a, sh)
	b.SignUp(w, sh)
	got, err := b.Store.CancelShift(b.Ctx, captain, sh.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CancelledAt == nil || got.SignedUpCount != 0 || got.WaitlistCount != 0 {
		t.Fatalf("cancelled shift: %+v", got)
	}
	mine, err := b.Store.MyShifts(b.Ctx, a, db.PageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine.Items) != 0 {
		t.Fatalf("member still holds %d shifts", len(mine.Items))
	}
	// Cancelled sign-ups free the time: the member can take another shift then.
	b.SignUp(a, b.ShiftOn(line, 24*time.Hour, 1))
}

func TestMovingAShiftKeepsMembersFromDoubleBooking(t *testing.T) {
	b := setup(t)
	line := b.Line()
	a := b.NewMember()
	early := b.ShiftOn(line, 24*time.Hour, 5)
	late := b.ShiftOn(line, 30*time.Hour, 5)
	b.SignUp(a, early)
	b.SignUp(a, late)
	start, end := early.StartsAt.Add(5*time.Hour), early.EndsAt.Add(5*time.Hour)
	_, err := b.Store.UpdateShift(b.Ctx, b.Staff, db.ShiftUpdate{ID: early.ID, StartsAt: &start, EndsAt: &end})
	dbtest.WantCode(t, err, db.CodeConflict)
	// A move into free time carries the sign-ups along.
	start, end = early.StartsAt.Add(-4*time.Hour), early.EndsAt.Add(-4*time.Hour)
	moved, err := b.Store.UpdateShift(b.Ctx, b.Staff, db.ShiftUpdate{ID: early.ID, StartsAt: &start, EndsAt: &end})
	if err != nil {
		t.Fatal(err)
	}
	if !moved.StartsAt.Equal(start) {
		t.Fatalf("start %v, want %v", moved.StartsAt, start)
	}
	b.SignUp(a, b.ShiftOn(line, 24*time.Hour, 5)) // the old slot is free now
}

func TestStartedShiftCannotMove(t *testing.T) {
	b := setup(t)
	sh := b.ShiftOn(b.Line(), time.Hour, 5)
	b.Clock.Advance(90 * time.Minute)
	later := sh.EndsAt.Add(time.Hour)
	_, err := b.Store.UpdateShift(b.Ctx, b.Staff, db.ShiftUpdate{ID: sh.ID, EndsAt: &later})
	dbtest.WantCode(t, err, db.CodeShiftClosed)
}
