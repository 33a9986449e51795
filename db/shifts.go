package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Shift is a stretch of time on a line that needs Capacity members.
type Shift struct {
	ID            string
	PicketLineID  string
	StartsAt      time.Time
	EndsAt        time.Time
	Capacity      int
	SignedUpCount int
	WaitlistCount int
	CancelledAt   *time.Time
	CreatedAt     time.Time
}

// SpotsLeft is how many more members the shift takes before the waitlist.
func (s *Shift) SpotsLeft() int {
	if s.CancelledAt != nil || s.SignedUpCount >= s.Capacity {
		return 0
	}
	return s.Capacity - s.SignedUpCount
}

const shiftColumns = `id, picket_line_id, starts_at, ends_at, capacity, signed_up_count, waitlist_count, cancelled_at, created_at`

func scanShift(row pgx.Row) (*Shift, error) {
	var s Shift
	err := row.Scan(&s.ID, &s.PicketLineID, &s.StartsAt, &s.EndsAt, &s.Capacity, &s.SignedUpCount, &s.WaitlistCount, &s.CancelledAt, &s.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// NewShift is the input to CreateShift.
type NewShift struct {
	PicketLineID string
	StartsAt     time.Time
	EndsAt       time.Time
	Capacity     int
}

// ShiftUpdate changes a shift; nil fields stay.
type ShiftUpdate struct {
	ID       string
	StartsAt *time.Time
	EndsAt   *time.Time
	Capacity *int
}

const (
	lineJobActionEndedSQL = `
SELECT ja.ended_at IS NOT NULL
FROM picket_lines l JOIN job_actions ja ON ja.id = l.job_action_id
WHERE l.id = $1`
	insertShiftSQL = `
INSERT INTO shifts (picket_line_id, starts_at, ends_at, capacity)
VALUES ($1, $2, $3, $4)
RETURNING ` + shiftColumns
)

// CreateShift creates a shift on a line. Coordinators and the line's captains.
func (s *Store) CreateShift(ctx context.Context, actor Actor, in NewShift) (sh *Shift, err error) {
	defer wrap(&err, "CreateShift")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if !validID(in.PicketLineID) {
		return nil, errNotFound("picket line")
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		var ended bool
		err := tx.QueryRow(ctx, lineJobActionEndedSQL, in.PicketLineID).Scan(&ended)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound("picket line")
		}
		if err != nil {
			return err
		}
		if err := requireLineManager(ctx, tx, actor, in.PicketLineID); err != nil {
			return err
		}
		if ended {
			return errConflict("this job action has ended")
		}
		if err := checkShiftTimes(s.clock.Now(), in.StartsAt, in.EndsAt); err != nil {
			return err
		}
		if err := checkCapacity(in.Capacity); err != nil {
			return err
		}
		sh, err = scanShift(tx.QueryRow(ctx, insertShiftSQL, in.PicketLineID, in.StartsAt, in.EndsAt, in.Capacity))
		if err != nil {
			return err
		}
		return s.lineEvents(ctx, tx, c, sh.PicketLineID, &sh.ID, nil, LineShiftCreated)
	})
	return sh, err
}

// The shift row lock serialises every change to a shift's sign-ups: capacity
// counting and waitlist order depend on it.
const lockShiftSQL = `SELECT ` + shiftColumns + ` FROM shifts WHERE id = $1 FOR UPDATE`

func lockShift(ctx context.Context, tx pgx.Tx, id string) (*Shift, error) {
	sh, err := scanShift(tx.QueryRow(ctx, lockShiftSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("shift")
	}
	return sh, err
}

const (
	moveShiftSQL = `UPDATE shifts SET starts_at = $2, ends_at = $3, capacity = $4 WHERE id = $1 RETURNING ` + shiftColumns
	// Active sign-ups carry the shift's period for the overlap constraint.
	moveSignupsSQL = `
UPDATE signups SET period = tstzrange($2, $3), updated_at = $4
WHERE shift_id = $1 AND status IN ` + activeStatuses + `
RETURNING member_id`
)

// UpdateShift changes a shift's times or capacity. Raising the capacity
// promotes waitlisted members in order; it may not drop below the members
// already signed up. Times of a started shift are fixed, and a move that
// would double-book a signed-up member is refused. Coordinators and the
// line's captains.
func (s *Store) UpdateShift(ctx context.Context, actor Actor, in ShiftUpdate) (sh *Shift, err error) {
	defer wrap(&err, "UpdateShift(%s)", in.ID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if !validID(in.ID) {
		return nil, errNotFound("shift")
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		cur, err := lockShift(ctx, tx, in.ID)
		if err != nil {
			return err
		}
		if err := requireLineManager(ctx, tx, actor, cur.PicketLineID); err != nil {
			return err
		}
		if cur.CancelledAt != nil {
			return errShiftClosed("this shift was cancelled")
		}
		now := s.clock.Now()
		start, end, capacity := cur.StartsAt, cur.EndsAt, cur.Capacity
		if in.StartsAt != nil {
			start = *in.StartsAt
		}
		if in.EndsAt != nil {
			end = *in.EndsAt
		}
		if in.Capacity != nil {
			capacity = *in.Capacity
		}
		moved := !start.Equal(cur.StartsAt) || !end.Equal(cur.EndsAt)
		if moved {
			if !now.Before(cur.StartsAt) {
				return errShiftClosed("a started shift cannot be moved")
			}
			if err := checkShiftTimes(now, start, end); err != nil {
				return err
			}
		}
		if err := checkCapacity(capacity); err != nil {
			return err
		}
		if capacity < cur.SignedUpCount {
			return errInput("capacity", "more members are signed up than that; cancel sign-ups first")
		}
		var affected []string
		if moved {
			affected, err = queryStrings(ctx, tx, moveSignupsSQL, cur.ID, start, end, now)
			if err != nil {
				return mapError(err, moveSignupsSQL)
			}
		}
		sh, err = scanShift(tx.QueryRow(ctx, moveShiftSQL, cur.ID, start, end, capacity))
		if err != nil {
			return err
		}
		if now.Before(sh.StartsAt) {
			if sh, err = s.promoteWaitlist(ctx, tx, c, sh, now); err != nil {
				return err
			}
		}
		if moved {
			if err := cancelReminders(ctx, tx, nil, []string{sh.ID}); err != nil {
				return err
			}
		}
		if err := s.memberEvents(ctx, tx, c, affected, MemberShiftChanged, &sh.ID, nil, nil); err != nil {
			return err
		}
		kinds := append([]LineEventKind{LineShiftChanged}, occupancyEvents(cur, sh)...)
		return s.lineEvents(ctx, tx, c, sh.PicketLineID, &sh.ID, nil, kinds...)
	})
	return sh, err
}

const (
	cancelShiftSQL = `
UPDATE shifts SET cancelled_at = $2, signed_up_count = 0, waitlist_count = 0
WHERE id = $1 RETURNING ` + shiftColumns
	cancelShiftSignupsSQL = `
UPDATE signups SET status = 'CANCELLED', waitlist_seq = NULL, cancelled_at = $2, updated_at = $2
WHERE shift_id = $1 AND status IN ` + activeStatuses + `
RETURNING member_id`
)

// CancelShift cancels a shift and every active sign-up on it. Cancelling a
// cancelled shift changes nothing; a shift that has ended cannot be
// cancelled. Coordinators and the line's captains.
func (s *Store) CancelShift(ctx context.Context, actor Actor, id string) (sh *Shift, err error) {
	defer wrap(&err, "CancelShift(%s)", id)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, errNotFound("shift")
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		cur, err := lockShift(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := requireLineManager(ctx, tx, actor, cur.PicketLineID); err != nil {
			return err
		}
		if cur.CancelledAt != nil {
			sh = cur
			return nil
		}
		now := s.clock.Now()
		if !now.Before(cur.EndsAt) {
			return errShiftClosed("this shift has already ended")
		}
		affected, err := queryStrings(ctx, tx, cancelShiftSignupsSQL, id, now)
		if err != nil {
			return err
		}
		sh, err = scanShift(tx.QueryRow(ctx, cancelShiftSQL, id, now))
		if err != nil {
			return err
		}
		if err := cancelReminders(ctx, tx, nil, []string{sh.ID}); err != nil {
			return err
		}
		if err := s.memberEvents(ctx, tx, c, affected, MemberShiftCancelled, &sh.ID, nil, nil); err != nil {
			return err
		}
		// Their sign-ups may have been what let them follow the line.
		return s.revokingLineEvents(ctx, tx, c, sh.PicketLineID, &sh.ID, affected, LineShiftCancelled)
	})
	return sh, err
}

const shiftsByIDsSQL = `SELECT ` + shiftColumns + ` FROM shifts WHERE id = ANY($1)`

// ShiftsByIDs loads shifts by id, for the dataloader. Any member may see shifts.
func (s *Store) ShiftsByIDs(ctx context.Context, actor Actor, ids []string) (_ map[string]*Shift, err error) {
	defer wrap(&err, "ShiftsByIDs")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	return loadByIDs(ctx, s.pool, shiftsByIDsSQL, ids, scanShift, func(s *Shift) string { return s.ID })
}

const shiftsOfLineSQL = `
SELECT ` + shiftColumns + ` FROM shifts
WHERE picket_line_id = $1
  AND ($2::timestamptz IS NULL OR starts_at >= $2)
  AND ($3::timestamptz IS NULL OR starts_at < $3)
  AND ($4::timestamptz IS NULL OR (starts_at, id) > ($4, $5::uuid))
ORDER BY starts_at, id
LIMIT $6`

// ShiftsOfLine pages through a line's shifts starting in [from, to),
// soonest first; the cursors are ShiftCursor's.
func (s *Store) ShiftsOfLine(ctx context.Context, actor Actor, lineID string, from, to *time.Time, q PageQuery) (_ *Page[*Shift], err error) {
	defer wrap(&err, "ShiftsOfLine(%s)", lineID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	first, afterTime, afterID, err := q.timePage()
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, shiftsOfLineSQL, lineID, from, to, afterTime, afterID, first+1)
	return collectPage(rows, err, first, scanShift)
}
