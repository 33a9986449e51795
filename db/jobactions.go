package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// JobActionKind is a strike or a lockout.
type JobActionKind string

// The kinds of job action.
const (
	KindStrike  JobActionKind = "STRIKE"
	KindLockout JobActionKind = "LOCKOUT"
)

// JobActionStatus is where a job action stands.
type JobActionStatus string

// The statuses of a job action.
const (
	StatusPlanned JobActionStatus = "PLANNED"
	StatusActive  JobActionStatus = "ACTIVE"
	StatusEnded   JobActionStatus = "ENDED"
)

// DefaultCancelCutoffMinutes is how long before a shift members can no
// longer cancel their own sign-up, unless the job action says otherwise.
const DefaultCancelCutoffMinutes = 120

// JobAction is a strike or lockout against one employer.
type JobAction struct {
	ID                  string
	Name                string
	Kind                JobActionKind
	Employer            string
	StartsAt            time.Time
	CancelCutoffMinutes int
	EndedAt             *time.Time
	CreatedAt           time.Time
}

// StatusAt returns the job action's status at time now.
func (j *JobAction) StatusAt(now time.Time) JobActionStatus {
	switch {
	case j.EndedAt != nil:
		return StatusEnded
	case now.Before(j.StartsAt):
		return StatusPlanned
	default:
		return StatusActive
	}
}

const jobActionColumns = `id, name, kind, employer, starts_at, cancel_cutoff_minutes, ended_at, created_at`

func scanJobAction(row pgx.Row) (*JobAction, error) {
	var j JobAction
	err := row.Scan(&j.ID, &j.Name, &j.Kind, &j.Employer, &j.StartsAt, &j.CancelCutoffMinutes, &j.EndedAt, &j.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// NewJobAction is the input to CreateJobAction.
type NewJobAction struct {
	Name                string
	Kind                JobActionKind
	Employer            string
	StartsAt            time.Time
	CancelCutoffMinutes *int
}

// JobActionUpdate changes a job action; nil fields stay.
type JobActionUpdate struct {
	ID                  string
	Name                *string
	Kind                *JobActionKind
	Employer            *string
	StartsAt            *time.Time
	CancelCutoffMinutes *int
}

const insertJobActionSQL = `
INSERT INTO job_actions (name, kind, employer, starts_at, cancel_cutoff_minutes)
VALUES ($1, $2, $3, $4, $5)
RETURNING ` + jobActionColumns

// CreateJobAction creates a job action. Coordinators only.
func (s *Store) CreateJobAction(ctx context.Context, actor Actor, in NewJobAction) (j *JobAction, err error) {
	defer wrap(&err, "CreateJobAction")
	if err := actor.requireCoordinator(); err != nil {
		return nil, err
	}
	if in.Name, err = trimmedText("name", in.Name, 200); err != nil {
		return nil, err
	}
	if in.Employer, err = trimmedText("employer", in.Employer, 200); err != nil {
		return nil, err
	}
	if err := validKind(in.Kind); err != nil {
		return nil, err
	}
	cutoff := DefaultCancelCutoffMinutes
	if in.CancelCutoffMinutes != nil {
		cutoff = *in.CancelCutoffMinutes
	}
	if err := validCutoff(cutoff); err != nil {
		return nil, err
	}
	return scanJobAction(s.pool.QueryRow(ctx, insertJobActionSQL, in.Name, in.Kind, in.Employer, in.StartsAt, cutoff))
}

const updateJobActionSQL = `
UPDATE job_actions SET
    name = COALESCE($2, name),
    kind = COALESCE($3, kind),
    employer = COALESCE($4, employer),
    starts_at = COALESCE($5, starts_at),
    cancel_cutoff_minutes = COALESCE($6, cancel_cutoff_minutes)
WHERE id = $1
RETURNING ` + jobActionColumns

// UpdateJobAction changes a job action. Coordinators only.
func (s *Store) UpdateJobAction(ctx context.Context, actor Actor, in JobActionUpdate) (j *JobAction, err error) {
	defer wrap(&err, "UpdateJobAction(%s)", in.ID)
	if err := actor.requireCoordinator(); err != nil {
		return nil, err
	}
	if !validID(in.ID) {
		return nil, errNotFound("job action")
	}
	if in.Name != nil {
		v, err := trimmedText("name", *in.Name, 200)
		if err != nil {
			return nil, err
		}
		in.Name = &v
	}
	if in.Employer != nil {
		v, err := trimmedText("employer", *in.Employer, 200)
		if err != nil {
			return nil, err
		}
		in.Employer = &v
	}
	if in.Kind != nil {
		if err := validKind(*in.Kind); err != nil {
			return nil, err
		}
	}
	if in.CancelCutoffMinutes != nil {
		if err := validCutoff(*in.CancelCutoffMinutes); err != nil {
			return nil, err
		}
	}
	j, err = scanJobAction(s.pool.QueryRow(ctx, updateJobActionSQL, in.ID, in.Name, in.Kind, in.Employer, in.StartsAt, in.CancelCutoffMinutes))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("job action")
	}
	return j, err
}

const endJobActionSQL = `
UPDATE job_actions SET ended_at = COALESCE(ended_at, $2)
WHERE id = $1
RETURNING ` + jobActionColumns

// EndJobAction ends a job action: its shifts take no more sign-ups. Ending an
// ended job action changes nothing. Coordinators only.
func (s *Store) EndJobAction(ctx context.Context, actor Actor, id string) (j *JobAction, err error) {
	defer wrap(&err, "EndJobAction(%s)", id)
	if err := actor.requireCoordinator(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, errNotFound("job action")
	}
	j, err = scanJobAction(s.pool.QueryRow(ctx, endJobActionSQL, id, s.clock.Now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("job action")
	}
	return j, err
}

// Newest start first, so the keyset compares the start downwards and the
// id upwards.
const listJobActionsSQL = `
SELECT ` + jobActionColumns + ` FROM job_actions
WHERE $1::timestamptz IS NULL OR starts_at < $1 OR (starts_at = $1 AND id > $2::uuid)
ORDER BY starts_at DESC, id
LIMIT $3`

// JobActionCursor is the opaque cursor of a job action in JobActions.
func JobActionCursor(j *JobAction) string { return encodeCursor(formatCursorTime(j.StartsAt), j.ID) }

// JobActions pages through every job action, newest start first. Any
// member may see them.
func (s *Store) JobActions(ctx context.Context, actor Actor, q PageQuery) (_ *Page[*JobAction], err error) {
	defer wrap(&err, "JobActions")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	first, afterTime, afterID, err := q.timePage()
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, listJobActionsSQL, afterTime, afterID, first+1)
	return collectPage(rows, err, first, scanJobAction)
}

const jobActionsByIDsSQL = `SELECT ` + jobActionColumns + ` FROM job_actions WHERE id = ANY($1)`

// JobActionsByIDs loads job actions by id, for the dataloader.
func (s *Store) JobActionsByIDs(ctx context.Context, actor Actor, ids []string) (_ map[string]*JobAction, err error) {
	defer wrap(&err, "JobActionsByIDs")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	return loadByIDs(ctx, s.pool, jobActionsByIDsSQL, ids, scanJobAction, func(j *JobAction) string { return j.ID })
}

const anyJobActionSQL = `SELECT EXISTS (SELECT 1 FROM job_actions)`

// HasJobActions reports whether any job action exists, so the demo loader
// only ever fills an empty database. System only.
func (s *Store) HasJobActions(ctx context.Context, actor Actor) (ok bool, err error) {
	if err := actor.requireSystem(); err != nil {
		return false, err
	}
	defer wrap(&err, "HasJobActions")
	err = s.pool.QueryRow(ctx, anyJobActionSQL).Scan(&ok)
	return ok, err
}
