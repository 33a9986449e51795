package db

import (
	"context"
	"time"
)

// OpenShiftsQuery filters and pages OpenShifts.
type OpenShiftsQuery struct {
	JobActionID *string
	From, To    *time.Time
	PageQuery
}

// ShiftCursor is the opaque cursor of a shift in start order.
func ShiftCursor(sh *Shift) string { return encodeCursor(formatCursorTime(sh.StartsAt), sh.ID) }

// The NOT EXISTS drops shifts the member holds and shifts overlapping one
// they hold, using the overlap constraint's index.
const openShiftsSQL = `
SELECT ` + shiftColumns + `
FROM shifts sh
WHERE sh.cancelled_at IS NULL AND sh.signed_up_count < sh.capacity
  AND sh.starts_at > $2
  AND ($3::timestamptz IS NULL OR sh.starts_at >= $3)
  AND ($4::timestamptz IS NULL OR sh.starts_at < $4)
  AND ($5::timestamptz IS NULL OR (sh.starts_at, sh.id) > ($5, $6::uuid))
  AND EXISTS (
      SELECT 1 FROM picket_lines l JOIN job_actions ja ON ja.id = l.job_action_id
      WHERE l.id = sh.picket_line_id AND ja.ended_at IS NULL AND ($7::uuid IS NULL OR ja.id = $7))
  AND NOT EXISTS (
      SELECT 1 FROM signups s
      WHERE s.member_id = $1 AND s.status IN ` + activeStatuses + `
        AND s.period && tstzrange(sh.starts_at, sh.ends_at))
ORDER BY sh.starts_at, sh.id
LIMIT $8`

// OpenShifts pages through upcoming shifts with spots left that the actor
// could take without overlapping a shift they hold, soonest first.
func (s *Store) OpenShifts(ctx context.Context, actor Actor, q OpenShiftsQuery) (_ *Page[*Shift], err error) {
	defer wrap(&err, "OpenShifts")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	first, afterTime, afterID, err := q.timePage()
	if err != nil {
		return nil, err
	}
	if q.JobActionID != nil && !validID(*q.JobActionID) {
		return &Page[*Shift]{}, nil
	}
	rows, err := s.pool.Query(ctx, openShiftsSQL, actor.MemberID, s.clock.Now(), q.From, q.To, afterTime, afterID, q.JobActionID, first+1)
	return collectPage(rows, err, first, scanShift)
}
