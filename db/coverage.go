package db

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CoverageCallLimit allows one call for coverage per shift per half hour,
// so members are not flooded.
var CoverageCallLimit = Limit{Max: 1, Window: 30 * time.Minute}

// MaxCoverageMessage bounds a coverage call's message, in characters.
const MaxCoverageMessage = 500

// Members who could take the shift: every member with a device who holds
// no active sign-up overlapping it (which covers those already on it).
const coverageAudienceSQL = `
SELECT DISTINCT d.member_id
FROM devices d
WHERE NOT EXISTS (
    SELECT 1 FROM signups s
    WHERE s.member_id = d.member_id AND s.status IN ` + activeStatuses + `
      AND s.period && tstzrange($1, $2))`

// CallForCoverage asks members free at the time of an understaffed shift to
// take it, by push notification, and returns how many members it reached.
// The line's captains and coordinators only. Besides CoverageCallLimit per
// shift, each call counts against the poster's Limits.UrgentPerHour, shared
// with urgent announcements.
func (s *Store) CallForCoverage(ctx context.Context, actor Actor, shiftID, message string) (n int, err error) {
	defer wrap(&err, "CallForCoverage(%s)", shiftID)
	if err := actor.requireMember(); err != nil {
		return 0, err
	}
	if !validID(shiftID) {
		return 0, errNotFound("shift")
	}
	if err := plainText("message", message); err != nil {
		return 0, err
	}
	message = strings.TrimSpace(message)
	if len([]rune(message)) > MaxCoverageMessage {
		return 0, errInput("message", "must be at most 500 characters")
	}
	var msg *string
	if message != "" {
		msg = &message
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		sh, err := lockShift(ctx, tx, shiftID)
		if err != nil {
			return err
		}
		if err := requireLineManager(ctx, tx, actor, sh.PicketLineID); err != nil {
			return err
		}
		if reason := signupClosedReason(s.clock.Now(), sh, false); reason != "" {
			return errShiftClosed(reason)
		}
		if sh.SpotsLeft() == 0 {
			return errConflict("this shift is full")
		}
		if err := s.hit(ctx, tx, "coverage:"+shiftID, CoverageCallLimit); err != nil {
			return err
		}
		if err := s.hitUrgent(ctx, tx, actor); err != nil {
			return err
		}
		audience, err := queryStrings(ctx, tx, coverageAudienceSQL, sh.StartsAt, sh.EndsAt)
		if err != nil {
			return err
		}
		n, err = s.enqueuePush(ctx, tx, c, audience, NotifyCoverageCall, &shiftID, nil, nil, msg, false)
		return err
	})
	return n, err
}
