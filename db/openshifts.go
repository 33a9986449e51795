package db

import (
	"context"
	"encoding/base64"
	"strings"
	"time"
)

// OpenShiftsQuery filters and pages OpenShifts.
type OpenShiftsQuery struct {
	JobActionID *string
	From, To    *time.Time
	First       int
	After       string
}

// ShiftPage is one page of shifts.
type ShiftPage struct {
	Shifts      []*Shift
	HasNextPage bool
}

// Page sizes of OpenShifts.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ShiftCursor is the opaque cursor of a shift in start order.
func ShiftCursor(sh *Shift) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sh.StartsAt.UTC().Format(time.RFC3339Nano) + "|" + sh.ID))
}

func parseShiftCursor(c string) (time.Time, string, error) {
	bad := errInput("after", "not a cursor from this list")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok || !validID(id) {
		return time.Time{}, "", bad
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", bad
	}
	return t, id, nil
}

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
func (s *Store) OpenShifts(ctx context.Context, actor Actor, q OpenShiftsQuery) (page *ShiftPage, err error) {
	defer wrap(&err, "OpenShifts")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	first := q.First
	switch {
	case first == 0:
		first = DefaultPageSize
	case first < 0 || first > MaxPageSize:
		return nil, errInput("first", "must be between 1 and 100")
	}
	if q.JobActionID != nil && !validID(*q.JobActionID) {
		return &ShiftPage{}, nil
	}
	var (
		afterTime *time.Time
		afterID   *string
	)
	if q.After != "" {
		t, id, err := parseShiftCursor(q.After)
		if err != nil {
			return nil, err
		}
		afterTime, afterID = &t, &id
	}
	rows, err := s.pool.Query(ctx, openShiftsSQL, actor.MemberID, s.clock.Now(), q.From, q.To, afterTime, afterID, q.JobActionID, first+1)
	shifts, err := collect(rows, err, scanShift)
	if err != nil {
		return nil, err
	}
	page = &ShiftPage{Shifts: shifts}
	if len(shifts) > first {
		page.Shifts, page.HasNextPage = shifts[:first], true
	}
	return page, nil
}
