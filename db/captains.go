package db

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// CaptainAssignment records that a member captains a line.
type CaptainAssignment struct {
	PicketLineID string
	MemberID     string
	AssignedAt   time.Time
}

// MaxCaptainsPerLine is the most captains a line may have; PicketLine.captains
// lists them all.
const MaxCaptainsPerLine = 50

const lineAndMemberExistSQL = `SELECT EXISTS (SELECT 1 FROM picket_lines WHERE id = $1), EXISTS (SELECT 1 FROM members WHERE id = $2)`

// Upsert so that assigning a captain twice answers with the first assignment.
const assignCaptainSQL = `
WITH ins AS (
    INSERT INTO captains (picket_line_id, member_id)
    SELECT l.id, m.id FROM picket_lines l, members m WHERE l.id = $1 AND m.id = $2
    ON CONFLICT (picket_line_id, member_id) DO NOTHING
    RETURNING picket_line_id, member_id, assigned_at
)
SELECT picket_line_id, member_id, assigned_at, true FROM ins
UNION ALL
SELECT picket_line_id, member_id, assigned_at, false FROM captains WHERE picket_line_id = $1 AND member_id = $2`

const (
	// The line's row lock serialises assignments to it, so that two at once
	// cannot both take the last place; the count runs after it, in a
	// snapshot that sees the other's commit.
	lockLineSQL     = `SELECT 1 FROM picket_lines WHERE id = $1 FOR UPDATE`
	captainCountSQL = `SELECT count(*), COALESCE(bool_or(member_id = $2), false) FROM captains WHERE picket_line_id = $1`
)

// AssignCaptain makes a member a captain of a line, at most
// MaxCaptainsPerLine of them (CONFLICT past it). Coordinators only.
func (s *Store) AssignCaptain(ctx context.Context, actor Actor, lineID, memberID string) (a *CaptainAssignment, err error) {
	defer wrap(&err, "AssignCaptain(%s, %s)", lineID, memberID)
	if err := actor.requireCoordinator(); err != nil {
		return nil, err
	}
	if !validID(lineID) {
		return nil, errNotFound("picket line")
	}
	if !validID(memberID) {
		return nil, errNotFound("member")
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		var lineOK, memberOK bool
		err := tx.QueryRow(ctx, lineAndMemberExistSQL, lineID, memberID).Scan(&lineOK, &memberOK)
		if err != nil {
			return err
		}
		if !lineOK {
			return errNotFound("picket line")
		}
		if !memberOK {
			return errNotFound("member")
		}
		if _, err := tx.Exec(ctx, lockLineSQL, lineID); err != nil {
			return err
		}
		var (
			captains int
			already  bool
		)
		if err := tx.QueryRow(ctx, captainCountSQL, lineID, memberID).Scan(&captains, &already); err != nil {
			return err
		}
		if !already && captains >= MaxCaptainsPerLine {
			return &Error{Code: CodeConflict, Field: "picketLineId", Message: "a line has at most " + strconv.Itoa(MaxCaptainsPerLine) + " captains"}
		}
		var inserted bool
		a = &CaptainAssignment{}
		err = tx.QueryRow(ctx, assignCaptainSQL, lineID, memberID).Scan(&a.PicketLineID, &a.MemberID, &a.AssignedAt, &inserted)
		if err != nil || !inserted {
			return err
		}
		return s.lineEvents(ctx, tx, c, lineID, nil, nil, LineCaptainChanged)
	})
	return a, err
}

const removeCaptainSQL = `DELETE FROM captains WHERE picket_line_id = $1 AND member_id = $2`

// RemoveCaptain removes a captain from a line and reports whether they were
// one. Coordinators only.
func (s *Store) RemoveCaptain(ctx context.Context, actor Actor, lineID, memberID string) (removed bool, err error) {
	defer wrap(&err, "RemoveCaptain(%s, %s)", lineID, memberID)
	if err := actor.requireCoordinator(); err != nil {
		return false, err
	}
	if !validID(lineID) || !validID(memberID) {
		return false, nil
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		tag, err := tx.Exec(ctx, removeCaptainSQL, lineID, memberID)
		if removed = tag.RowsAffected() == 1; err != nil || !removed {
			return err
		}
		return s.revokingLineEvents(ctx, tx, c, lineID, nil, []string{memberID}, LineCaptainChanged)
	})
	return removed, err
}

const captainsOfLineSQL = `
SELECT m.id, m.name, m.email, m.phone, m.role, m.created_at
FROM captains c JOIN members m ON m.id = c.member_id
WHERE c.picket_line_id = $1
ORDER BY c.assigned_at, m.id
LIMIT $2`

// CaptainsOfLine lists a line's captains (at most MaxCaptainsPerLine), first assigned first. Any member
// may see who leads a line; contact details are filtered separately.
func (s *Store) CaptainsOfLine(ctx context.Context, actor Actor, lineID string) (_ []*Member, err error) {
	defer wrap(&err, "CaptainsOfLine(%s)", lineID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, captainsOfLineSQL, lineID, MaxCaptainsPerLine)
	return collect(rows, err, scanMember)
}
