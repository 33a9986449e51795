package db

import "time"

// MaxShiftLength is the longest a shift may run.
const MaxShiftLength = 24 * time.Hour

// MaxShiftCapacity bounds the members one shift may take.
const MaxShiftCapacity = 10000

// checkShiftTimes checks a shift's times at time now: it must start in the
// future, end after it starts, and last at most MaxShiftLength.
func checkShiftTimes(now, start, end time.Time) error {
	if !start.After(now) {
		return errInput("startsAt", "must be in the future")
	}
	if !end.After(start) {
		return errInput("endsAt", "must be after the start")
	}
	if end.Sub(start) > MaxShiftLength {
		return errInput("endsAt", "a shift lasts at most 24 hours")
	}
	return nil
}

func checkCapacity(capacity int) error {
	if capacity < 1 || capacity > MaxShiftCapacity {
		return errInput("capacity", "must be between 1 and 10000")
	}
	return nil
}

// withinCancelCutoff reports whether, at time now, a shift starting at start
// is too close for a member to cancel their own sign-up.
func withinCancelCutoff(now, start time.Time, cutoffMinutes int) bool {
	return !now.Before(start.Add(-time.Duration(cutoffMinutes) * time.Minute))
}

// signupClosedReason says why a shift takes no sign-ups at time now, or ""
// when it takes them.
func signupClosedReason(now time.Time, sh *Shift, jobActionEnded bool) string {
	switch {
	case sh.CancelledAt != nil:
		return "this shift was cancelled"
	case jobActionEnded:
		return "this job action has ended"
	case !now.Before(sh.StartsAt):
		return "this shift has already started"
	}
	return ""
}
