package db

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Announcement is a message from a line's captains or the coordinators.
type Announcement struct {
	ID           string
	PicketLineID *string
	JobActionID  *string
	AuthorID     string
	Body         string
	Urgent       bool
	CreatedAt    time.Time
}

// NewAnnouncement is the input to PostAnnouncement: exactly one of
// PicketLineID and JobActionID.
type NewAnnouncement struct {
	PicketLineID *string
	JobActionID  *string
	Body         string
	Urgent       bool
}

// MaxAnnouncementLength bounds an announcement's body, in characters.
const MaxAnnouncementLength = 4000

const announcementColumns = `id, picket_line_id, job_action_id, author_id, body, urgent, created_at`

func scanAnnouncement(row pgx.Row) (*Announcement, error) {
	var a Announcement
	if err := row.Scan(&a.ID, &a.PicketLineID, &a.JobActionID, &a.AuthorID, &a.Body, &a.Urgent, &a.CreatedAt); err != nil {
		return nil, err
	}
	return &a, nil
}

const insertAnnouncementSQL = `
INSERT INTO announcements (picket_line_id, job_action_id, author_id, body, urgent, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING ` + announcementColumns

// PostAnnouncement posts to one line (its captains and coordinators) or to a
// whole job action (coordinators).
func (s *Store) PostAnnouncement(ctx context.Context, actor Actor, in NewAnnouncement) (a *Announcement, err error) {
	defer wrap(&err, "PostAnnouncement")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if (in.PicketLineID == nil) == (in.JobActionID == nil) {
		return nil, errInput("picketLineId", "give exactly one of picketLineId and jobActionId")
	}
	in.Body = strings.TrimSpace(in.Body)
	if in.Body == "" || len([]rune(in.Body)) > MaxAnnouncementLength {
		return nil, errInput("body", "must be 1 to 4000 characters")
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if in.PicketLineID != nil {
			if !validID(*in.PicketLineID) {
				return errNotFound("picket line")
			}
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM picket_lines WHERE id = $1)`, *in.PicketLineID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return errNotFound("picket line")
			}
			if err := requireLineManager(ctx, tx, actor, *in.PicketLineID); err != nil {
				return err
			}
		} else {
			if err := actor.requireCoordinator(); err != nil {
				return err
			}
			if !validID(*in.JobActionID) {
				return errNotFound("job action")
			}
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM job_actions WHERE id = $1)`, *in.JobActionID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return errNotFound("job action")
			}
		}
		a, err = scanAnnouncement(tx.QueryRow(ctx, insertAnnouncementSQL, in.PicketLineID, in.JobActionID, actor.MemberID, in.Body, in.Urgent, s.clock.Now()))
		return err
	})
	return a, err
}

// AnnouncementListLimit is how many announcements a list shows, newest first.
const AnnouncementListLimit = 50

const (
	lineAnnouncementsSQL      = `SELECT ` + announcementColumns + ` FROM announcements WHERE picket_line_id = $1 ORDER BY created_at DESC, id LIMIT $2`
	jobActionAnnouncementsSQL = `SELECT ` + announcementColumns + ` FROM announcements WHERE job_action_id = $1 ORDER BY created_at DESC, id LIMIT $2`
)

// LineAnnouncements lists a line's newest announcements to those who may see
// its address; for others the list is empty.
func (s *Store) LineAnnouncements(ctx context.Context, actor Actor, lineID string) (_ []*Announcement, err error) {
	defer wrap(&err, "LineAnnouncements(%s)", lineID)
	vis, err := s.AddressVisibility(ctx, actor, []string{lineID})
	if err != nil {
		return nil, err
	}
	if !vis[lineID] {
		return []*Announcement{}, nil
	}
	rows, err := s.pool.Query(ctx, lineAnnouncementsSQL, lineID, AnnouncementListLimit)
	return collect(rows, err, scanAnnouncement)
}

// JobActionAnnouncements lists a job action's newest announcements. Every
// member may see them.
func (s *Store) JobActionAnnouncements(ctx context.Context, actor Actor, jobActionID string) (_ []*Announcement, err error) {
	defer wrap(&err, "JobActionAnnouncements(%s)", jobActionID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, jobActionAnnouncementsSQL, jobActionID, AnnouncementListLimit)
	return collect(rows, err, scanAnnouncement)
}
