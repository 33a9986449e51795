package db

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SignupStatus is where a member's place on a shift stands.
type SignupStatus string

// The statuses of a sign-up. CHECKED_IN, COMPLETED and NO_SHOW are set by
// attendance on the line.
const (
	SignupSignedUp   SignupStatus = "SIGNED_UP"
	SignupWaitlisted SignupStatus = "WAITLISTED"
	SignupCancelled  SignupStatus = "CANCELLED"
	SignupCheckedIn  SignupStatus = "CHECKED_IN"
	SignupCompleted  SignupStatus = "COMPLETED"
	SignupNoShow     SignupStatus = "NO_SHOW"
)

// Signup is a member's place on a shift.
type Signup struct {
	ID       string
	ShiftID  string
	MemberID string
	Status   SignupStatus
	// WaitlistPosition is 1 for the next member to be promoted; set only
	// while the sign-up is WAITLISTED.
	WaitlistPosition *int
	CreatedAt        time.Time
	// waitlistSeq orders the waitlist (0 off it), for ShiftSignupCursor;
	// only ShiftSignups reads it.
	waitlistSeq int64
	// Shift is the sign-up's shift when the query that found the sign-up
	// read it too; nil otherwise.
	Shift *Shift
}

// Active sign-ups hold (or wait for) a spot; the overlap constraint and the
// one-per-shift index cover exactly these. Every statement about active
// sign-ups uses this list, as SQL rather than as an argument, so that the
// planner can match it against those partial indexes.
const activeStatuses = `('SIGNED_UP', 'WAITLISTED', 'CHECKED_IN')`

// The waitlist position is counted, not stored, so promotions never have to
// renumber anyone.
const signupColumns = `s.id, s.shift_id, s.member_id, s.status,
    CASE WHEN s.status = 'WAITLISTED' THEN (
        SELECT count(*)::int FROM signups w
        WHERE w.shift_id = s.shift_id AND w.status = 'WAITLISTED' AND w.waitlist_seq <= s.waitlist_seq
    ) END,
    s.created_at`

// signupDest is where a row of signupColumns scans to.
func signupDest(s *Signup) []any {
	return []any{&s.ID, &s.ShiftID, &s.MemberID, &s.Status, &s.WaitlistPosition, &s.CreatedAt}
}

func scanSignup(row pgx.Row) (*Signup, error) {
	var s Signup
	if err := row.Scan(signupDest(&s)...); err != nil {
		return nil, err
	}
	return &s, nil
}

const signupByIDSQL = `SELECT ` + signupColumns + ` FROM signups s WHERE s.id = $1`

func signupByID(ctx context.Context, q querier, id string) (*Signup, error) {
	su, err := scanSignup(q.QueryRow(ctx, signupByIDSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("sign-up")
	}
	return su, err
}

const (
	// Locks the shift (see lockShiftSQL).
	lockShiftForSignupSQL = `
SELECT sh.picket_line_id, sh.capacity, sh.signed_up_count, sh.starts_at, sh.ends_at, sh.cancelled_at, ja.ended_at IS NOT NULL
FROM shifts sh
JOIN picket_lines l ON l.id = sh.picket_line_id
JOIN job_actions ja ON ja.id = l.job_action_id
WHERE sh.id = $1
FOR UPDATE OF sh`
	// Runs after the lock as a statement of its own, so that its snapshot
	// includes a sign-up committed by a request that held the lock before:
	// a retry racing its own first attempt must find it.
	priorSignupSQL = `
SELECT ` + signupColumns + `, ($3::text IS NOT NULL AND s.idempotency_key = $3) AS same_key
FROM signups s
WHERE s.member_id = $1 AND ((s.shift_id = $2 AND s.status IN ` + activeStatuses + `) OR s.idempotency_key = $3)
ORDER BY same_key DESC
LIMIT 1`
	insertSignupSQL = `
WITH ins AS (
    INSERT INTO signups (shift_id, member_id, status, period, waitlist_seq, idempotency_key, created_at, updated_at)
    VALUES ($1, $2, $3, tstzrange($4, $5), CASE WHEN $3 = 'WAITLISTED' THEN nextval('signups_waitlist_seq_seq') END, $6, $7, $7)
    RETURNING id
), counted AS (
    UPDATE shifts SET
        signed_up_count = signed_up_count + CASE WHEN $3 = 'SIGNED_UP' THEN 1 ELSE 0 END,
        waitlist_count = waitlist_count + CASE WHEN $3 = 'WAITLISTED' THEN 1 ELSE 0 END
    WHERE id = $1
    RETURNING waitlist_count
)
SELECT ins.id, counted.waitlist_count FROM ins, counted`
)

// MaxIdempotencyKeyLength bounds the keys clients send with sign-ups.
const MaxIdempotencyKeyLength = 128

// errKeyUsedForAnotherShift answers a sign-up whose idempotency key the
// member already used for another shift, whether the earlier sign-up was
// found first or its unique index refused the insert.
func errKeyUsedForAnotherShift() *Error {
	return &Error{Code: CodeConflict, Field: "idempotencyKey", Message: "this key was already used for another shift"}
}

// SignUpForShift signs the actor up for a shift, or puts them on its
// waitlist when it is full. Signing up again for the same shift returns the
// existing sign-up; the same idempotency key returns the first answer.
func (s *Store) SignUpForShift(ctx context.Context, actor Actor, shiftID, idempotencyKey string) (su *Signup, err error) {
	defer wrap(&err, "SignUpForShift(%s)", shiftID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if !validID(shiftID) {
		return nil, errNotFound("shift")
	}
	if len(idempotencyKey) > MaxIdempotencyKeyLength {
		return nil, errInput("idempotencyKey", "must be at most 128 characters")
	}
	var key *string
	if idempotencyKey != "" {
		key = &idempotencyKey
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		var (
			sh    Shift
			ended bool
		)
		err := tx.QueryRow(ctx, lockShiftForSignupSQL, shiftID).Scan(
			&sh.PicketLineID, &sh.Capacity, &sh.SignedUpCount, &sh.StartsAt, &sh.EndsAt, &sh.CancelledAt, &ended)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound("shift")
		}
		if err != nil {
			return err
		}
		// The first answer to this key, or the sign-up already held here.
		var (
			prior   Signup
			sameKey bool
		)
		err = tx.QueryRow(ctx, priorSignupSQL, actor.MemberID, shiftID, key).Scan(append(signupDest(&prior), &sameKey)...)
		switch {
		case err == nil && sameKey && prior.ShiftID != shiftID:
			return errKeyUsedForAnotherShift()
		case err == nil:
			su = &prior
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		now := s.clock.Now()
		if reason := signupClosedReason(now, &sh, ended); reason != "" {
			return errShiftClosed(reason)
		}
		status := SignupWaitlisted
		if sh.SignedUpCount < sh.Capacity {
			status = SignupSignedUp
		}
		su = &Signup{ShiftID: shiftID, MemberID: actor.MemberID, Status: status, CreatedAt: now}
		var waitlistCount int
		err = tx.QueryRow(ctx, insertSignupSQL, shiftID, actor.MemberID, status, sh.StartsAt, sh.EndsAt, key, now).Scan(&su.ID, &waitlistCount)
		if err != nil {
			return mapError(err, insertSignupSQL)
		}
		after := sh
		if status == SignupWaitlisted {
			// The shift lock orders waitlist entries, so the newest is last.
			su.WaitlistPosition = &waitlistCount
		} else {
			after.SignedUpCount++
		}
		kinds := append([]LineEventKind{LineSignupChanged}, occupancyEvents(&sh, &after)...)
		return s.lineEvents(ctx, tx, c, sh.PicketLineID, &shiftID, nil, kinds...)
	})
	return su, err
}

const (
	signupShiftSQL     = `SELECT shift_id FROM signups WHERE id = $1`
	lockSignupSQL      = `SELECT ` + signupColumns + ` FROM signups s WHERE s.id = $1 FOR UPDATE`
	cancelCutoffSQL    = `SELECT ja.cancel_cutoff_minutes FROM picket_lines l JOIN job_actions ja ON ja.id = l.job_action_id WHERE l.id = $1`
	cancelOneSignupSQL = `
UPDATE signups SET status = 'CANCELLED', waitlist_seq = NULL, cancelled_at = $2, updated_at = $2
WHERE id = $1`
	uncountSignupSQL = `
UPDATE shifts SET
    signed_up_count = signed_up_count - CASE WHEN $2 = 'SIGNED_UP' THEN 1 ELSE 0 END,
    waitlist_count = waitlist_count - CASE WHEN $2 = 'WAITLISTED' THEN 1 ELSE 0 END
WHERE id = $1
RETURNING ` + shiftColumns
)

// CancelSignup cancels a sign-up. Members cancel their own, but a held spot
// not within the job action's cutoff before the start; the line's captains
// and coordinators cancel any. A freed spot goes to the head of the waitlist
// in the same transaction. Cancelling a cancelled sign-up changes nothing.
func (s *Store) CancelSignup(ctx context.Context, actor Actor, signupID string) (su *Signup, err error) {
	defer wrap(&err, "CancelSignup(%s)", signupID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if !validID(signupID) {
		return nil, errNotFound("sign-up")
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		var shiftID string
		err := tx.QueryRow(ctx, signupShiftSQL, signupID).Scan(&shiftID)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound("sign-up")
		}
		if err != nil {
			return err
		}
		// Shift first, then sign-up: the same lock order as SignUpForShift.
		sh, err := lockShift(ctx, tx, shiftID)
		if err != nil {
			return err
		}
		cur, err := scanSignup(tx.QueryRow(ctx, lockSignupSQL, signupID))
		if err != nil {
			return err
		}
		manager := actor.Coordinator()
		if !manager {
			if manager, err = isCaptain(ctx, tx, sh.PicketLineID, actor.MemberID); err != nil {
				return err
			}
		}
		if cur.MemberID != actor.MemberID && !manager {
			return errForbidden("you can only cancel your own sign-ups")
		}
		switch cur.Status {
		case SignupCancelled:
			su = cur
			return nil
		case SignupSignedUp, SignupWaitlisted:
		default:
			return errConflict("a sign-up that is " + strings.ToLower(strings.ReplaceAll(string(cur.Status), "_", " ")) + " cannot be cancelled")
		}
		now := s.clock.Now()
		if !manager && cur.Status == SignupSignedUp {
			var cutoff int
			if err := tx.QueryRow(ctx, cancelCutoffSQL, sh.PicketLineID).Scan(&cutoff); err != nil {
				return err
			}
			if withinCancelCutoff(now, sh.StartsAt, cutoff) {
				return errShiftClosed("it is too close to the start to cancel; ask your picket captain")
			}
		}
		if _, err := tx.Exec(ctx, cancelOneSignupSQL, signupID, now); err != nil {
			return err
		}
		if err := cancelReminders(ctx, tx, []string{signupID}, nil); err != nil {
			return err
		}
		before := sh
		sh, err = scanShift(tx.QueryRow(ctx, uncountSignupSQL, shiftID, cur.Status))
		if err != nil {
			return err
		}
		if cur.Status == SignupSignedUp && sh.CancelledAt == nil && now.Before(sh.StartsAt) {
			if sh, err = s.promoteWaitlist(ctx, tx, c, sh, now); err != nil {
				return err
			}
		}
		kinds := append([]LineEventKind{LineSignupChanged}, occupancyEvents(before, sh)...)
		if err := s.revokingLineEvents(ctx, tx, c, sh.PicketLineID, &shiftID, []string{cur.MemberID}, kinds...); err != nil {
			return err
		}
		su, err = signupByID(ctx, tx, signupID)
		return err
	})
	return su, err
}

// The counters update runs although the final SELECT does not read it:
// data-modifying statements in WITH always run exactly once.
const promoteSQL = `
WITH next AS (
    SELECT id FROM signups
    WHERE shift_id = $1 AND status = 'WAITLISTED'
    ORDER BY waitlist_seq
    LIMIT $2
    FOR UPDATE
), promoted AS (
    UPDATE signups s SET status = 'SIGNED_UP', waitlist_seq = NULL, updated_at = $3
    FROM next WHERE s.id = next.id
    RETURNING s.id, s.member_id
), counted AS (
    UPDATE shifts SET
        signed_up_count = signed_up_count + (SELECT count(*) FROM promoted),
        waitlist_count = waitlist_count - (SELECT count(*) FROM promoted)
    WHERE id = $1
)
SELECT id, member_id FROM promoted`

// promoteWaitlist fills the locked shift's free spots from the head of its
// waitlist, first come first served, tells each promoted member, and
// returns the shift as it now stands.
func (s *Store) promoteWaitlist(ctx context.Context, tx pgx.Tx, c *changes, sh *Shift, now time.Time) (*Shift, error) {
	free := sh.Capacity - sh.SignedUpCount
	if free <= 0 || sh.WaitlistCount == 0 {
		return sh, nil
	}
	rows, err := tx.Query(ctx, promoteSQL, sh.ID, free, now)
	if err != nil {
		return nil, err
	}
	type promotion struct{ signupID, memberID string }
	promoted, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (promotion, error) {
		var p promotion
		return p, r.Scan(&p.signupID, &p.memberID)
	})
	if err != nil {
		return nil, err
	}
	for _, p := range promoted {
		if err := s.memberEvents(ctx, tx, c, []string{p.memberID}, MemberWaitlistPromoted, &sh.ID, &p.signupID, nil); err != nil {
			return nil, err
		}
	}
	after := *sh
	after.SignedUpCount += len(promoted)
	after.WaitlistCount -= len(promoted)
	return &after, nil
}

// The shift comes along: the app always shows it with the sign-up.
const myShiftsSQL = `
SELECT ` + signupColumns + `,
    sh.id, sh.picket_line_id, sh.starts_at, sh.ends_at, sh.capacity, sh.signed_up_count, sh.waitlist_count, sh.cancelled_at, sh.created_at
FROM signups s JOIN shifts sh ON sh.id = s.shift_id
WHERE s.member_id = $1 AND s.status IN ` + activeStatuses + ` AND sh.ends_at > $2
  AND ($3::timestamptz IS NULL OR (sh.starts_at, sh.id) > ($3, $4::uuid))
ORDER BY sh.starts_at, sh.id
LIMIT $5`

// MyShiftCursor is the opaque cursor of a sign-up in MyShifts: its shift's
// place in start order, as a member holds one active sign-up per shift.
func MyShiftCursor(su *Signup) string {
	return encodeCursor(formatCursorTime(su.Shift.StartsAt), su.ShiftID)
}

// MyShifts pages through the actor's active sign-ups on shifts that have
// not ended, soonest first. Each sign-up carries its Shift.
func (s *Store) MyShifts(ctx context.Context, actor Actor, q PageQuery) (_ *Page[*Signup], err error) {
	defer wrap(&err, "MyShifts")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	first, afterTime, afterID, err := q.timePage()
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, myShiftsSQL, actor.MemberID, s.clock.Now(), afterTime, afterID, first+1)
	return collectPage(rows, err, first, func(row pgx.Row) (*Signup, error) {
		su, sh := Signup{}, Shift{}
		err := row.Scan(append(signupDest(&su),
			&sh.ID, &sh.PicketLineID, &sh.StartsAt, &sh.EndsAt, &sh.Capacity, &sh.SignedUpCount, &sh.WaitlistCount, &sh.CancelledAt, &sh.CreatedAt)...)
		su.Shift = &sh
		return &su, err
	})
}

const mySignupsSQL = `
SELECT ` + signupColumns + `
FROM signups s
WHERE s.member_id = $1 AND s.shift_id = ANY($2) AND s.status IN ` + activeStatuses

// MySignups finds the actor's active sign-up on each shift, for the
// dataloader behind Shift.mySignup.
func (s *Store) MySignups(ctx context.Context, actor Actor, shiftIDs []string) (_ map[string]*Signup, err error) {
	defer wrap(&err, "MySignups")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, mySignupsSQL, actor.MemberID, validIDs(shiftIDs))
	list, err := collect(rows, err, scanSignup)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Signup, len(list))
	for _, su := range list {
		out[su.ShiftID] = su
	}
	return out, nil
}

const (
	shiftLineSQL    = `SELECT picket_line_id FROM shifts WHERE id = $1`
	shiftSignupsSQL = `
SELECT ` + signupColumns + `, COALESCE(s.waitlist_seq, 0)
FROM signups s
WHERE s.shift_id = $1 AND s.status IN ` + activeStatuses + ` AND ($2::uuid IS NULL OR s.member_id = $2)
  AND ($3::bigint IS NULL OR (s.waitlist_seq IS NOT NULL, COALESCE(s.waitlist_seq, 0), s.created_at, s.id) > ($3 > 0, $3, $4, $5::uuid))
ORDER BY s.waitlist_seq IS NOT NULL, COALESCE(s.waitlist_seq, 0), s.created_at, s.id
LIMIT $6`
)

// A sign-up's place in ShiftSignups: those holding a spot (no waitlist
// number) by when they signed up, then the waitlist by its number. The
// cursor carries the number, 0 for none.
type signupKey struct {
	waitlistSeq int64
	createdAt   time.Time
	id          string
}

// ShiftSignupCursor is the opaque cursor of a sign-up in ShiftSignups.
func ShiftSignupCursor(su *Signup) string {
	return encodeCursor(strconv.FormatInt(su.waitlistSeq, 10), formatCursorTime(su.CreatedAt), su.ID)
}

func parseShiftSignupCursor(c string) (*signupKey, error) {
	if c == "" {
		return nil, nil
	}
	parts, err := decodeCursor(c, 3)
	if err != nil {
		return nil, err
	}
	seq, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || seq < 0 {
		return nil, errBadCursor()
	}
	created, err := time.Parse(time.RFC3339Nano, parts[1])
	if err != nil {
		return nil, errBadCursor()
	}
	return &signupKey{seq, created, parts[2]}, nil
}

// ShiftSignups pages through a shift's active sign-ups, spots first, then
// the waitlist in order. The line's captains and coordinators see
// everyone; other members see only their own.
func (s *Store) ShiftSignups(ctx context.Context, actor Actor, shiftID string, q PageQuery) (_ *Page[*Signup], err error) {
	defer wrap(&err, "ShiftSignups(%s)", shiftID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if !validID(shiftID) {
		return nil, errNotFound("shift")
	}
	first, err := q.size()
	if err != nil {
		return nil, err
	}
	after, err := parseShiftSignupCursor(q.After)
	if err != nil {
		return nil, err
	}
	var lineID string
	if err := s.pool.QueryRow(ctx, shiftLineSQL, shiftID).Scan(&lineID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errNotFound("shift")
		}
		return nil, err
	}
	only := &actor.MemberID
	if err := requireLineManager(ctx, s.pool, actor, lineID); err == nil {
		only = nil
	} else if ErrorCode(err) != CodeForbidden {
		return nil, err
	}
	var (
		afterSeq     *int64
		afterCreated *time.Time
		afterID      *string
	)
	if after != nil {
		afterSeq, afterCreated, afterID = &after.waitlistSeq, &after.createdAt, &after.id
	}
	rows, err := s.pool.Query(ctx, shiftSignupsSQL, shiftID, only, afterSeq, afterCreated, afterID, first+1)
	return collectPage(rows, err, first, func(row pgx.Row) (*Signup, error) {
		var su Signup
		return &su, row.Scan(append(signupDest(&su), &su.waitlistSeq)...)
	})
}

const signupsByIDsSQL = `SELECT ` + signupColumns + ` FROM signups s WHERE s.id = ANY($1)`

// SignupsByIDs loads sign-ups by id for events that carry one. Members see
// their own sign-ups; coordinators any.
func (s *Store) SignupsByIDs(ctx context.Context, actor Actor, ids []string) (_ map[string]*Signup, err error) {
	defer wrap(&err, "SignupsByIDs")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	found, err := loadByIDs(ctx, s.pool, signupsByIDsSQL, ids, scanSignup, func(su *Signup) string { return su.ID })
	if err != nil {
		return nil, err
	}
	for id, su := range found {
		if su.MemberID != actor.MemberID && !actor.Coordinator() {
			delete(found, id)
		}
	}
	return found, nil
}
