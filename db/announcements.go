package db

import (
	"context"
	"errors"
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

const (
	lineExistsSQL         = `SELECT EXISTS (SELECT 1 FROM picket_lines WHERE id = $1)`
	jobActionExistsSQL    = `SELECT EXISTS (SELECT 1 FROM job_actions WHERE id = $1)`
	insertAnnouncementSQL = `
INSERT INTO announcements (picket_line_id, job_action_id, author_id, body, urgent, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING ` + announcementColumns
)

// PostAnnouncement posts to one line (its captains and coordinators) or to a
// whole job action (coordinators). An urgent one counts against the
// poster's Limits.UrgentPerHour, shared with coverage calls.
func (s *Store) PostAnnouncement(ctx context.Context, actor Actor, in NewAnnouncement) (a *Announcement, err error) {
	defer wrap(&err, "PostAnnouncement")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if (in.PicketLineID == nil) == (in.JobActionID == nil) {
		return nil, errInput("picketLineId", "give exactly one of picketLineId and jobActionId")
	}
	if err := plainText("body", in.Body); err != nil {
		return nil, err
	}
	in.Body = strings.TrimSpace(in.Body)
	if in.Body == "" || len([]rune(in.Body)) > MaxAnnouncementLength {
		return nil, errInput("body", "must be 1 to 4000 characters")
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		if in.PicketLineID != nil {
			if !validID(*in.PicketLineID) {
				return errNotFound("picket line")
			}
			var exists bool
			if err := tx.QueryRow(ctx, lineExistsSQL, *in.PicketLineID).Scan(&exists); err != nil {
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
			if err := tx.QueryRow(ctx, jobActionExistsSQL, *in.JobActionID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return errNotFound("job action")
			}
		}
		if in.Urgent {
			if err := s.hitUrgent(ctx, tx, actor); err != nil {
				return err
			}
		}
		a, err = scanAnnouncement(tx.QueryRow(ctx, insertAnnouncementSQL, in.PicketLineID, in.JobActionID, actor.MemberID, in.Body, in.Urgent, s.clock.Now()))
		if err != nil {
			return err
		}
		return s.announce(ctx, tx, c, a)
	})
	return a, err
}

const (
	// In id order, the order every use-case locks lines in.
	announcementLinesSQL = `
SELECT id FROM picket_lines WHERE id = $1 OR job_action_id = $2 ORDER BY id`
	// Everyone taking part on the lines: members holding a spot or a place
	// on the waitlist of a shift that has not ended, and the captains.
	announcementAudienceSQL = `
SELECT s.member_id
FROM signups s JOIN shifts sh ON sh.id = s.shift_id
WHERE sh.picket_line_id = ANY($1) AND s.status IN ` + activeStatuses + ` AND sh.ends_at > $2
UNION
SELECT member_id FROM captains WHERE picket_line_id = ANY($1)`
)

// The audience, minus the poster, cut into batches of $5 in id order.
const queueFanoutSQL = `
INSERT INTO announcement_fanout_batches (announcement_id, batch, recipients, created_at)
SELECT $3, (a.n - 1) / $5, array_agg(a.member_id ORDER BY a.n), $2
FROM (SELECT member_id, row_number() OVER (ORDER BY member_id) AS n
      FROM (` + announcementAudienceSQL + `) audience
      WHERE member_id <> $4) a
GROUP BY (a.n - 1) / $5`

// announce records the announcement on its line, or on every line of its
// job action. An urgent one is also queued for everyone taking part to hear
// of personally; the push worker fans it out (FanOutAnnouncements).
func (s *Store) announce(ctx context.Context, tx pgx.Tx, c *changes, a *Announcement) error {
	lines, err := queryStrings(ctx, tx, announcementLinesSQL, a.PicketLineID, a.JobActionID)
	if err != nil {
		return err
	}
	for _, line := range lines {
		if err := s.lineEvents(ctx, tx, c, line, nil, &a.ID, LineAnnouncement); err != nil {
			return err
		}
	}
	if !a.Urgent {
		return nil
	}
	tag, err := tx.Exec(ctx, queueFanoutSQL, lines, s.clock.Now(), a.ID, a.AuthorID, s.fanOutBatch)
	if tag.RowsAffected() > 0 {
		c.push = true
	}
	return err
}

// The oldest announcement's next batch, taken for good: the transaction
// that deletes it tells its members, so they hear exactly when it commits.
const takeFanoutBatchSQL = `
DELETE FROM announcement_fanout_batches
WHERE (announcement_id, batch) = (
    SELECT announcement_id, batch FROM announcement_fanout_batches
    ORDER BY created_at, announcement_id, batch
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING announcement_id, recipients`

// DefaultFanOutBatch is how many members of an urgent announcement's
// audience one fan-out transaction tells.
const DefaultFanOutBatch = 1000

// SetFanOutBatch changes how many members one fan-out transaction tells,
// for announcements posted from now on.
func (s *Store) SetFanOutBatch(n int) { s.fanOutBatch = max(n, 1) }

// FanOutAnnouncements tells the members of one batch of a queued urgent
// announcement about it (a personal event and a push message each) and
// reports how many it told; 0 means nothing is waiting. Each call is one
// transaction that also deletes the batch, and concurrent callers on any
// replica take different batches (SKIP LOCKED), so every recipient hears
// once. System only: the push worker runs it.
func (s *Store) FanOutAnnouncements(ctx context.Context, actor Actor) (n int, err error) {
	if err := actor.requireSystem(); err != nil {
		return 0, err
	}
	defer wrap(&err, "FanOutAnnouncements")
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		var (
			id         string
			recipients []string
		)
		// Committed durably, unlike the worker's bookkeeping: once a batch's
		// events are delivered, losing them in a crash would let their
		// sequence numbers be used again.
		if _, err := tx.Exec(ctx, indexPlans); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, takeFanoutBatchSQL).Scan(&id, &recipients)
		if errors.Is(err, pgx.ErrNoRows) {
			n = 0
			return nil
		}
		if err != nil {
			return err
		}
		n = len(recipients)
		return s.memberEvents(ctx, tx, c, recipients, MemberUrgentAnnouncement, nil, nil, &id)
	})
	return n, err
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

const announcementsByIDsSQL = `SELECT ` + announcementColumns + ` FROM announcements WHERE id = ANY($1)`

// AnnouncementsByIDs loads announcements by id, for events that carry one.
func (s *Store) AnnouncementsByIDs(ctx context.Context, actor Actor, ids []string) (_ map[string]*Announcement, err error) {
	defer wrap(&err, "AnnouncementsByIDs")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	return loadByIDs(ctx, s.pool, announcementsByIDsSQL, ids, scanAnnouncement, func(a *Announcement) string { return a.ID })
}
