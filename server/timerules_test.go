package main

import (
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

const (
	signUpMutation = `mutation($s: ID!, $k: String) { signUpForShift(shiftId: $s, idempotencyKey: $k) { id status waitlistPosition } }`
	cancelMutation = `mutation($id: ID!) { cancelSignup(signupId: $id) { id status } }`
)

func TestTimeRules(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	staff := s.addMember(t, db.RoleCoordinator)
	ja := k.JobAction()
	line := k.LineOf(ja)
	captain := s.captain(t, line)
	m := s.addMember(t, db.RoleMember)

	signUp := func(t *testing.T, token, shiftID string, key any) signupJSON {
		t.Helper()
		var out struct{ SignUpForShift signupJSON }
		s.do(t, token, signUpMutation, map[string]any{"s": shiftID, "k": key}, &out)
		return out.SignUpForShift
	}
	counts := func(t *testing.T, shiftID string) (signedUp, waiting int) {
		t.Helper()
		var out struct{ Shift shiftJSON }
		s.do(t, staff.Token, `query($id: ID!) { shift(id: $id) { signedUpCount waitlistCount } }`, map[string]any{"id": shiftID}, &out)
		return out.Shift.SignedUpCount, out.Shift.WaitlistCount
	}

	t.Run("cancelled shift takes no sign-ups", func(t *testing.T) {
		sh := s.kit(t).ShiftOn(line, 100*time.Hour, 5)
		s.do(t, captain.Token, `mutation($id: ID!) { cancelShift(id: $id) { id } }`, map[string]any{"id": sh.ID}, nil)
		s.fails(t, m.Token, signUpMutation, map[string]any{"s": sh.ID}, "SHIFT_CLOSED")
		s.fails(t, captain.Token, `mutation($in: UpdateShiftInput!) { updateShift(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"id": sh.ID, "capacity": 6}}, "SHIFT_CLOSED")
	})

	t.Run("started shift takes no sign-ups and cannot move", func(t *testing.T) {
		sh := s.kit(t).ShiftOn(line, 110*time.Hour, 5)
		holder := s.addMember(t, db.RoleMember)
		su := s.kit(t).SignUp(holder.Actor(), sh)
		// Move the shift into the past behind the server's back: it started
		// an hour ago and runs three more.
		s.sql(t, `UPDATE shifts SET starts_at = now() - interval '1 hour', ends_at = now() + interval '3 hours' WHERE id = $1`, sh.ID)
		s.sql(t, `UPDATE signups SET period = tstzrange(now() - interval '1 hour', now() + interval '3 hours') WHERE shift_id = $1`, sh.ID)
		s.fails(t, m.Token, signUpMutation, map[string]any{"s": sh.ID}, "SHIFT_CLOSED")
		s.fails(t, captain.Token, `mutation($in: UpdateShiftInput!) { updateShift(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"id": sh.ID, "startsAt": ts(time.Now().Add(time.Hour)), "endsAt": ts(time.Now().Add(2 * time.Hour))}}, "SHIFT_CLOSED")
		// Its capacity may still change.
		s.do(t, captain.Token, `mutation($in: UpdateShiftInput!) { updateShift(input: $in) { id capacity } }`,
			map[string]any{"in": map[string]any{"id": sh.ID, "capacity": 7}}, nil)
		// The holder may no longer cancel; the captain may.
		s.fails(t, holder.Token, cancelMutation, map[string]any{"id": su.ID}, "SHIFT_CLOSED")
		var out struct{ CancelSignup signupJSON }
		s.do(t, captain.Token, cancelMutation, map[string]any{"id": su.ID}, &out)
		if out.CancelSignup.Status != "CANCELLED" {
			t.Fatalf("captain's cancellation = %+v", out.CancelSignup)
		}
	})

	t.Run("ended job action takes no sign-ups", func(t *testing.T) {
		other := s.kit(t).JobAction()
		sh := s.kit(t).ShiftOn(s.kit(t).LineOf(other), 120*time.Hour, 5)
		s.do(t, staff.Token, `mutation($id: ID!) { endJobAction(id: $id) { id } }`, map[string]any{"id": other.ID}, nil)
		s.fails(t, m.Token, signUpMutation, map[string]any{"s": sh.ID}, "SHIFT_CLOSED")
		// Nor does it take new shifts.
		start := time.Now().Add(130 * time.Hour)
		s.fails(t, staff.Token, `mutation($in: CreateShiftInput!) { createShift(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"picketLineId": sh.PicketLineID, "startsAt": ts(start), "endsAt": ts(start.Add(time.Hour)), "capacity": 2}}, "CONFLICT")
	})

	t.Run("ended shift cannot be cancelled", func(t *testing.T) {
		sh := s.kit(t).ShiftOn(line, 140*time.Hour, 5)
		s.sql(t, `UPDATE shifts SET starts_at = now() - interval '5 hours', ends_at = now() - interval '1 hour' WHERE id = $1`, sh.ID)
		s.fails(t, captain.Token, `mutation($id: ID!) { cancelShift(id: $id) { id } }`, map[string]any{"id": sh.ID}, "SHIFT_CLOSED")
	})

	t.Run("members cannot cancel within the cutoff, captains can", func(t *testing.T) {
		// The job action's cutoff is 120 minutes; this shift starts in 90.
		soon := s.kit(t).ShiftOn(line, 90*time.Minute, 5)
		holder := s.addMember(t, db.RoleMember)
		su := signUp(t, holder.Token, soon.ID, nil)
		r := s.fails(t, holder.Token, cancelMutation, map[string]any{"id": su.ID}, "SHIFT_CLOSED")
		if !r.NoData() {
			t.Fatalf("refused cancellation answered data: %s", r)
		}
		if up, _ := counts(t, soon.ID); up != 1 {
			t.Fatalf("refused cancellation changed the count to %d", up)
		}
		var out struct{ CancelSignup signupJSON }
		s.do(t, captain.Token, cancelMutation, map[string]any{"id": su.ID}, &out)
		if out.CancelSignup.Status != "CANCELLED" {
			t.Fatalf("captain's cancellation = %+v", out.CancelSignup)
		}
		if up, _ := counts(t, soon.ID); up != 0 {
			t.Fatalf("after the captain's cancellation %d signed up, want 0", up)
		}
		// Outside the cutoff the member cancels themselves.
		later := s.kit(t).ShiftOn(line, 150*time.Minute, 5)
		su = signUp(t, holder.Token, later.ID, nil)
		s.do(t, holder.Token, cancelMutation, map[string]any{"id": su.ID}, &out)
		// A waitlisted member may leave the waitlist even within the cutoff.
		full := s.kit(t).ShiftOn(line, 30*time.Minute+5*time.Hour, 1)
		s.kit(t).SignUp(s.kit(t).NewMember(), full)
		setCutoff := func(minutes int) {
			s.do(t, staff.Token, `mutation($id: ID!, $m: Int) { updateJobAction(input: {id: $id, cancelCutoffMinutes: $m}) { id } }`,
				map[string]any{"id": ja.ID, "m": minutes}, nil)
		}
		setCutoff(600)
		waiting := signUp(t, holder.Token, full.ID, nil)
		if waiting.Status != "WAITLISTED" {
			t.Fatalf("sign-up on a full shift = %+v", waiting)
		}
		s.do(t, holder.Token, cancelMutation, map[string]any{"id": waiting.ID}, &out)
		// The cutoff is the job action's: at 600 minutes a spot 6 hours
		// away cannot be given up, at 0 it can.
		spot := s.kit(t).ShiftOn(line, 6*time.Hour, 5)
		su = signUp(t, holder.Token, spot.ID, nil)
		s.fails(t, holder.Token, cancelMutation, map[string]any{"id": su.ID}, "SHIFT_CLOSED")
		setCutoff(0)
		s.do(t, holder.Token, cancelMutation, map[string]any{"id": su.ID}, &out)
		setCutoff(120)
	})

	t.Run("overlapping shifts conflict", func(t *testing.T) {
		a := s.kit(t).ShiftOn(line, 200*time.Hour, 5)
		otherLine := s.kit(t).LineOf(ja)
		b := s.kit(t).ShiftOn(otherLine, 202*time.Hour, 5) // starts while a runs
		c := s.kit(t).ShiftOn(otherLine, 204*time.Hour, 5) // starts as a ends
		member := s.addMember(t, db.RoleMember)
		signUp(t, member.Token, a.ID, nil)
		s.fails(t, member.Token, signUpMutation, map[string]any{"s": b.ID}, "CONFLICT")
		if up, waiting := counts(t, b.ID); up != 0 || waiting != 0 {
			t.Fatalf("refused sign-up counted: %d, %d", up, waiting)
		}
		if su := signUp(t, member.Token, c.ID, nil); su.Status != "SIGNED_UP" {
			t.Fatalf("back-to-back shift: %+v", su)
		}
	})

	t.Run("one idempotency key, one sign-up", func(t *testing.T) {
		sh := s.kit(t).ShiftOn(line, 300*time.Hour, 5)
		member := s.addMember(t, db.RoleMember)
		first := signUp(t, member.Token, sh.ID, "tap-1")
		second := signUp(t, member.Token, sh.ID, "tap-1")
		if first.ID != second.ID || second.Status != "SIGNED_UP" {
			t.Fatalf("same key twice: %+v then %+v", first, second)
		}
		if up, _ := counts(t, sh.ID); up != 1 {
			t.Fatalf("same key twice counted %d sign-ups, want 1", up)
		}
		// Without a key, signing up again returns the existing sign-up too.
		if again := signUp(t, member.Token, sh.ID, nil); again.ID != first.ID {
			t.Fatalf("signing up again gave %s, want %s", again.ID, first.ID)
		}
		// The key's first answer stands even after a cancellation.
		var out struct{ CancelSignup signupJSON }
		s.do(t, member.Token, cancelMutation, map[string]any{"id": first.ID}, &out)
		if retry := signUp(t, member.Token, sh.ID, "tap-1"); retry.ID != first.ID || retry.Status != "CANCELLED" {
			t.Fatalf("retry after a cancellation: %+v, want the first sign-up, cancelled", retry)
		}
		if up, _ := counts(t, sh.ID); up != 0 {
			t.Fatalf("a retried request signed the member up again: %d", up)
		}
		// The same key for another shift is a conflict.
		other := s.kit(t).ShiftOn(line, 310*time.Hour, 5)
		r := s.fails(t, member.Token, signUpMutation, map[string]any{"s": other.ID, "k": "tap-1"}, "CONFLICT")
		if f := r.Errors[0].Extensions.Field; f != "idempotencyKey" {
			t.Fatalf("field %q, want idempotencyKey", f)
		}
		// Keys are per member.
		someone := s.addMember(t, db.RoleMember)
		if su := signUp(t, someone.Token, sh.ID, "tap-1"); su.ID == first.ID {
			t.Fatalf("another member's key returned the first member's sign-up")
		}
	})
}
