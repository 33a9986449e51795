package db_test

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

func TestSignupNeverExceedsCapacity(t *testing.T) {
	b := setup(t)
	sh := b.shift(10)
	const racers = 200
	actors := make([]db.Actor, racers)
	for i := range actors {
		actors[i] = b.newMember()
	}
	results := make([]*db.Signup, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			su, err := b.store.SignUpForShift(b.ctx, actors[i], sh.ID, "")
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
	got := b.reloadShift(sh.ID)
	if got.SignedUpCount != 10 || got.WaitlistCount != 190 || got.SpotsLeft() != 0 {
		t.Fatalf("shift counts: signed up %d, waitlist %d, spots %d", got.SignedUpCount, got.WaitlistCount, got.SpotsLeft())
	}
}

func TestWaitlistIsFirstComeFirstServed(t *testing.T) {
	b := setup(t)
	sh := b.shift(1)
	first := b.newMember()
	holder := b.signUp(first, sh)
	var waiting []db.Actor
	for i := range 3 {
		a := b.newMember()
		su := b.signUp(a, sh)
		if su.Status != db.SignupWaitlisted || *su.WaitlistPosition != i+1 {
			t.Fatalf("sign-up %d: status %s position %v, want WAITLISTED %d", i, su.Status, su.WaitlistPosition, i+1)
		}
		waiting = append(waiting, a)
	}
	if _, err := b.store.CancelSignup(b.ctx, first, holder.ID); err != nil {
		t.Fatal(err)
	}
	mine, err := b.store.MySignups(b.ctx, waiting[0], []string{sh.ID})
	mustNot(t, err)
	if mine[sh.ID].Status != db.SignupSignedUp {
		t.Fatalf("head of waitlist is %s after a cancellation, want SIGNED_UP", mine[sh.ID].Status)
	}
	for i, a := range waiting[1:] {
		mine, err := b.store.MySignups(b.ctx, a, []string{sh.ID})
		mustNot(t, err)
		if got := mine[sh.ID]; got.Status != db.SignupWaitlisted || *got.WaitlistPosition != i+1 {
			t.Fatalf("waiting member %d: %s at %v, want WAITLISTED at %d", i+2, got.Status, got.WaitlistPosition, i+1)
		}
	}
	if got := b.reloadShift(sh.ID); got.SignedUpCount != 1 || got.WaitlistCount != 2 {
		t.Fatalf("counts %d/%d, want 1/2", got.SignedUpCount, got.WaitlistCount)
	}
}

func TestCaptainCancellationPromotesWaitlist(t *testing.T) {
	b := setup(t)
	line := b.line()
	captain := b.captainOf(line)
	sh := b.shiftOn(line, time.Hour, 1) // inside the cutoff: only a captain may cancel
	holder := b.signUp(b.newMember(), sh)
	next := b.newMember()
	b.signUp(next, sh)
	su, err := b.store.CancelSignup(b.ctx, captain, holder.ID)
	mustNot(t, err)
	if su.Status != db.SignupCancelled {
		t.Fatalf("status %s, want CANCELLED", su.Status)
	}
	mine, err := b.store.MySignups(b.ctx, next, []string{sh.ID})
	mustNot(t, err)
	if mine[sh.ID].Status != db.SignupSignedUp {
		t.Fatalf("waiting member is %s, want SIGNED_UP", mine[sh.ID].Status)
	}
}

func TestRaisingCapacityPromotesWaitlistInOrder(t *testing.T) {
	b := setup(t)
	sh := b.shift(1)
	b.signUp(b.newMember(), sh)
	var waiting []db.Actor
	for range 3 {
		a := b.newMember()
		b.signUp(a, sh)
		waiting = append(waiting, a)
	}
	capacity := 3
	got, err := b.store.UpdateShift(b.ctx, b.staff, db.ShiftUpdate{ID: sh.ID, Capacity: &capacity})
	mustNot(t, err)
	if got.SignedUpCount != 3 || got.WaitlistCount != 1 {
		t.Fatalf("counts %d/%d, want 3/1", got.SignedUpCount, got.WaitlistCount)
	}
	want := []db.SignupStatus{db.SignupSignedUp, db.SignupSignedUp, db.SignupWaitlisted}
	for i, a := range waiting {
		mine, err := b.store.MySignups(b.ctx, a, []string{sh.ID})
		mustNot(t, err)
		if mine[sh.ID].Status != want[i] {
			t.Fatalf("waiting member %d is %s, want %s", i+1, mine[sh.ID].Status, want[i])
		}
	}
}

func TestCapacityCannotDropBelowSignedUp(t *testing.T) {
	b := setup(t)
	sh := b.shift(3)
	b.signUp(b.newMember(), sh)
	b.signUp(b.newMember(), sh)
	one := 1
	_, err := b.store.UpdateShift(b.ctx, b.staff, db.ShiftUpdate{ID: sh.ID, Capacity: &one})
	wantCode(t, err, db.CodeBadUserInput)
	var de *db.Error
	if errorsAs(err, &de); de.Field != "capacity" {
		t.Fatalf("field %q, want capacity", de.Field)
	}
}

func TestNoOverlappingSignups(t *testing.T) {
	b := setup(t)
	line := b.line()
	a := b.newMember()
	morning := b.shiftOn(line, 24*time.Hour, 5)
	overlapping := b.shiftOn(line, 26*time.Hour, 5)
	adjacent := b.shiftOn(line, 28*time.Hour, 5)
	b.signUp(a, morning)
	_, err := b.store.SignUpForShift(b.ctx, a, overlapping.ID, "")
	wantCode(t, err, db.CodeConflict)
	if su := b.signUp(a, adjacent); su.Status != db.SignupSignedUp {
		t.Fatalf("adjacent shift: %s, want SIGNED_UP", su.Status)
	}
}

func TestOverlapIsRefusedByTheDatabase(t *testing.T) {
	b := setup(t)
	line := b.line()
	a := b.newMember()
	one := b.shiftOn(line, 24*time.Hour, 5)
	other := b.shiftOn(line, 25*time.Hour, 5)
	b.signUp(a, one)
	// Bypass the use-case entirely: the constraint itself must refuse.
	_, err := b.store.Pool().Exec(b.ctx, `
INSERT INTO signups (shift_id, member_id, status, period)
VALUES ($1, $2, 'SIGNED_UP', tstzrange($3, $4))`, other.ID, a.MemberID, other.StartsAt, other.EndsAt)
	code, constraint := pgCode(err)
	if code != "23P01" || constraint != "signups_no_overlap" {
		t.Fatalf("direct insert of an overlapping sign-up: %v, want exclusion violation", err)
	}
}

func TestConcurrentOverlappingSignupsHoldOnlyOne(t *testing.T) {
	b := setup(t)
	line := b.line()
	a := b.newMember()
	var shifts []*db.Shift
	for i := range 20 {
		shifts = append(shifts, b.shiftOn(line, 24*time.Hour+time.Duration(i)*time.Minute, 5))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := 0
	for _, sh := range shifts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.store.SignUpForShift(b.ctx, a, sh.ID, "")
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
	sh := b.shift(5)
	a := b.newMember()
	first := b.signUp(a, sh)
	second := b.signUp(a, sh)
	if first.ID != second.ID {
		t.Fatalf("second sign-up %s differs from first %s", second.ID, first.ID)
	}
	if got := b.reloadShift(sh.ID); got.SignedUpCount != 1 {
		t.Fatalf("signed up count %d, want 1", got.SignedUpCount)
	}
}

func TestIdempotencyKeyReturnsTheFirstAnswer(t *testing.T) {
	b := setup(t)
	sh := b.shift(1)
	a := b.newMember()
	first, err := b.store.SignUpForShift(b.ctx, a, sh.ID, "key-1")
	mustNot(t, err)
	_, err = b.store.CancelSignup(b.ctx, a, first.ID)
	mustNot(t, err)
	// A retry of the first request must not sign the member up again.
	again, err := b.store.SignUpForShift(b.ctx, a, sh.ID, "key-1")
	mustNot(t, err)
	if again.ID != first.ID || again.Status != db.SignupCancelled {
		t.Fatalf("retry returned %s (%s), want the first sign-up %s, now CANCELLED", again.ID, again.Status, first.ID)
	}
	if got := b.reloadShift(sh.ID); got.SignedUpCount != 0 {
		t.Fatalf("signed up count %d after a retried request, want 0", got.SignedUpCount)
	}
	_, err = b.store.SignUpForShift(b.ctx, a, b.shift(1).ID, "key-1")
	wantCode(t, err, db.CodeConflict)
}

func TestConcurrentRetriesWithOneKeyCreateOneSignup(t *testing.T) {
	b := setup(t)
	sh := b.shift(5)
	a := b.newMember()
	ids := make([]string, 30)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			su, err := b.store.SignUpForShift(b.ctx, a, sh.ID, "retry-key")
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
	if got := b.reloadShift(sh.ID); got.SignedUpCount != 1 {
		t.Fatalf("signed up count %d, want 1", got.SignedUpCount)
	}
}

func TestNoSignupForClosedShifts(t *testing.T) {
	b := setup(t)
	line := b.line()
	started := b.shiftOn(line, time.Hour, 5)
	cancelled := b.shiftOn(line, 30*time.Hour, 5)
	_, err := b.store.CancelShift(b.ctx, b.staff, cancelled.ID)
	mustNot(t, err)
	b.clock.Advance(time.Hour)
	a := b.newMember()
	_, err = b.store.SignUpForShift(b.ctx, a, started.ID, "")
	wantCode(t, err, db.CodeShiftClosed)
	_, err = b.store.SignUpForShift(b.ctx, a, cancelled.ID, "")
	wantCode(t, err, db.CodeShiftClosed)

	other := b.shift(5)
	ja, err := b.store.PicketLinesByIDs(b.ctx, b.staff, []string{other.PicketLineID})
	mustNot(t, err)
	_, err = b.store.EndJobAction(b.ctx, b.staff, ja[other.PicketLineID].JobActionID)
	mustNot(t, err)
	_, err = b.store.SignUpForShift(b.ctx, a, other.ID, "")
	wantCode(t, err, db.CodeShiftClosed)
}

func TestMemberCannotCancelWithinCutoff(t *testing.T) {
	b := setup(t)
	line := b.line()
	captain := b.captainOf(line)
	sh := b.shiftOn(line, 3*time.Hour, 5)
	a := b.newMember()
	su := b.signUp(a, sh)
	b.clock.Advance(61 * time.Minute) // 1h59m before the start
	_, err := b.store.CancelSignup(b.ctx, a, su.ID)
	wantCode(t, err, db.CodeShiftClosed)
	got, err := b.store.CancelSignup(b.ctx, captain, su.ID)
	mustNot(t, err)
	if got.Status != db.SignupCancelled {
		t.Fatalf("captain's cancel: %s", got.Status)
	}
	su2 := b.signUp(b.newMember(), b.shiftOn(line, 30*time.Minute, 5))
	_, err = b.store.CancelSignup(b.ctx, b.staff, su2.ID)
	mustNot(t, err)
}

func TestMemberCanCancelJustBeforeCutoff(t *testing.T) {
	b := setup(t)
	sh := b.shift(5)
	a := b.newMember()
	su := b.signUp(a, sh)
	b.clock.Advance(24*time.Hour - 2*time.Hour - time.Minute)
	got, err := b.store.CancelSignup(b.ctx, a, su.ID)
	mustNot(t, err)
	if got.Status != db.SignupCancelled {
		t.Fatalf("status %s", got.Status)
	}
}

func TestCancelCutoffIsPerJobAction(t *testing.T) {
	b := setup(t)
	line := b.line()
	thirty := 30
	_, err := b.store.UpdateJobAction(b.ctx, b.staff, db.JobActionUpdate{ID: line.JobActionID, CancelCutoffMinutes: &thirty})
	mustNot(t, err)
	sh := b.shiftOn(line, time.Hour, 5)
	a := b.newMember()
	su := b.signUp(a, sh)
	if _, err := b.store.CancelSignup(b.ctx, a, su.ID); err != nil {
		t.Fatalf("cancel an hour ahead with a 30-minute cutoff: %v", err)
	}
}

func TestMembersCancelOnlyTheirOwnSignups(t *testing.T) {
	b := setup(t)
	sh := b.shift(5)
	su := b.signUp(b.newMember(), sh)
	_, err := b.store.CancelSignup(b.ctx, b.newMember(), su.ID)
	wantCode(t, err, db.CodeForbidden)
	_, err = b.store.CancelSignup(b.ctx, b.captainOf(b.line()), su.ID)
	wantCode(t, err, db.CodeForbidden)
}

func TestCancelShiftCancelsItsSignups(t *testing.T) {
	b := setup(t)
	line := b.line()
	captain := b.captainOf(line)
	sh := b.shiftOn(line, 24*time.Hour, 1)
	a, w := b.newMember(), b.newMember()
	b.signUp(a, sh)
	b.signUp(w, sh)
	got, err := b.store.CancelShift(b.ctx, captain, sh.ID)
	mustNot(t, err)
	if got.CancelledAt == nil || got.SignedUpCount != 0 || got.WaitlistCount != 0 {
		t.Fatalf("cancelled shift: %+v", got)
	}
	mine, err := b.store.MyShifts(b.ctx, a)
	mustNot(t, err)
	if len(mine) != 0 {
		t.Fatalf("member still holds %d shifts", len(mine))
	}
	// Cancelled sign-ups free the time: the member can take another shift then.
	b.signUp(a, b.shiftOn(line, 24*time.Hour, 1))
}

func TestMovingAShiftKeepsMembersFromDoubleBooking(t *testing.T) {
	b := setup(t)
	line := b.line()
	a := b.newMember()
	early := b.shiftOn(line, 24*time.Hour, 5)
	late := b.shiftOn(line, 30*time.Hour, 5)
	b.signUp(a, early)
	b.signUp(a, late)
	start, end := early.StartsAt.Add(5*time.Hour), early.EndsAt.Add(5*time.Hour)
	_, err := b.store.UpdateShift(b.ctx, b.staff, db.ShiftUpdate{ID: early.ID, StartsAt: &start, EndsAt: &end})
	wantCode(t, err, db.CodeConflict)
	// A move into free time carries the sign-ups along.
	start, end = early.StartsAt.Add(-4*time.Hour), early.EndsAt.Add(-4*time.Hour)
	moved, err := b.store.UpdateShift(b.ctx, b.staff, db.ShiftUpdate{ID: early.ID, StartsAt: &start, EndsAt: &end})
	mustNot(t, err)
	if !moved.StartsAt.Equal(start) {
		t.Fatalf("start %v, want %v", moved.StartsAt, start)
	}
	b.signUp(a, b.shiftOn(line, 24*time.Hour, 5)) // the old slot is free now
}

func TestStartedShiftCannotMove(t *testing.T) {
	b := setup(t)
	sh := b.shiftOn(b.line(), time.Hour, 5)
	b.clock.Advance(90 * time.Minute)
	later := sh.EndsAt.Add(time.Hour)
	_, err := b.store.UpdateShift(b.ctx, b.staff, db.ShiftUpdate{ID: sh.ID, EndsAt: &later})
	wantCode(t, err, db.CodeShiftClosed)
}
