package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// PushStatus is where one outbox message stands.
type PushStatus string

// The statuses of an outbox message; see migration 003.
const (
	PushPending   PushStatus = "PENDING"
	PushSending   PushStatus = "SENDING"
	PushSent      PushStatus = "SENT"
	PushFailed    PushStatus = "FAILED"
	PushDead      PushStatus = "DEAD"
	PushCancelled PushStatus = "CANCELLED"
)

// PushMessage is one notification to one device, as the worker sends it.
// It names things by id only: the app fetches what it shows.
type PushMessage struct {
	ID             int64
	EventID        string
	MemberID       string
	DeviceToken    string
	Platform       DevicePlatform
	Kind           NotificationKind
	ShiftID        *string
	SignupID       *string
	AnnouncementID *string
	Message        *string
	Urgent         bool
	Attempts       int
	ExpiresAt      time.Time
	Preferences    NotificationPreferences
}

// Every device of every recipient who wants the kind gets a row; all rows
// of one member share an event id, so the app can drop repeats.
const enqueuePushSQL = `
WITH recipients AS (
    SELECT m.id AS member_id, gen_random_uuid() AS event_id
    FROM unnest($1::uuid[]) AS m(id)
    LEFT JOIN notification_preferences p ON p.member_id = m.id
    WHERE $2 = 'URGENT_ANNOUNCEMENT' OR NOT ($2 = ANY (COALESCE(p.muted_kinds, '{}')))
), queued AS (
    INSERT INTO push_outbox (event_id, member_id, device_token, kind, shift_id, signup_id, announcement_id, message,
                             urgent, next_attempt_at, expires_at, created_at)
    SELECT r.event_id, r.member_id, d.token, $2, $3, $4, $5, $6, $7, $8, $9, $8
    FROM recipients r JOIN devices d ON d.member_id = r.member_id
    RETURNING member_id
)
SELECT count(*), count(DISTINCT member_id) FROM queued`

const shiftStartSQL = `SELECT starts_at FROM shifts WHERE id = $1`

// pushExpiry is how long a notification is worth delivering: one about a
// shift until the shift starts (at least an hour), others for a day.
func pushExpiry(ctx context.Context, tx pgx.Tx, now time.Time, shiftID *string) (time.Time, error) {
	expires := now.Add(24 * time.Hour)
	if shiftID == nil {
		return expires, nil
	}
	var start time.Time
	if err := tx.QueryRow(ctx, shiftStartSQL, *shiftID).Scan(&start); err != nil {
		return time.Time{}, err
	}
	return maxTime(start, now.Add(time.Hour)), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// enqueuePush writes outbox rows for members in the use-case's transaction,
// so a notification exists exactly when the change it tells of committed.
// It returns how many members it reached.
func (s *Store) enqueuePush(ctx context.Context, tx pgx.Tx, c *changes, memberIDs []string, kind NotificationKind, shiftID, signupID, announcementID, message *string, urgent bool) (int, error) {
	if len(memberIDs) == 0 {
		return 0, nil
	}
	now := s.clock.Now()
	expires, err := pushExpiry(ctx, tx, now, shiftID)
	if err != nil {
		return 0, err
	}
	var messages, members int
	err = tx.QueryRow(ctx, enqueuePushSQL, memberIDs, kind, shiftID, signupID, announcementID, message, urgent, now, expires).Scan(&messages, &members)
	if err != nil {
		return 0, err
	}
	if messages > 0 {
		c.push = true
	}
	return members, nil
}

const cancelRemindersSQL = `
UPDATE push_outbox SET status = 'CANCELLED'
WHERE kind = 'SHIFT_REMINDER' AND status IN ('PENDING', 'SENDING')
  AND (signup_id = ANY($1) OR shift_id = ANY($2))`

// cancelReminders withdraws reminders not yet sent for cancelled sign-ups
// or for shifts that moved or were cancelled.
func cancelReminders(ctx context.Context, tx pgx.Tx, signupIDs, shiftIDs []string) error {
	_, err := tx.Exec(ctx, cancelRemindersSQL, signupIDs, shiftIDs)
	return err
}

// Reminder lead times: 12 hours and 1 hour before a shift.
var reminderLeads = []int{12 * 60, 60}

// A reminder is due once its lead time is reached; the 12-hour one is
// skipped when the 1-hour one is already due. shift_reminders makes each
// reminder of each sign-up and shift start happen once, whichever replica
// scans first. The event id is derived from the reminder, so a scan retried
// after a crash could not make a second one either.
const scheduleRemindersSQL = `
WITH due AS (
    INSERT INTO shift_reminders (signup_id, lead_minutes, shift_starts_at, created_at)
    SELECT s.id, l.lead, sh.starts_at, $1
    FROM shifts sh
    JOIN signups s ON s.shift_id = sh.id AND s.status = 'SIGNED_UP'
    CROSS JOIN unnest($2::int[]) AS l(lead)
    WHERE sh.starts_at > $1 AND sh.starts_at <= $1 + make_interval(mins => l.lead)
      AND sh.cancelled_at IS NULL
      AND (l.lead = (SELECT min(x) FROM unnest($2::int[]) x) OR sh.starts_at > $1 + make_interval(mins => (SELECT min(x) FROM unnest($2::int[]) x)))
    ON CONFLICT DO NOTHING
    RETURNING signup_id, lead_minutes, shift_starts_at
)
INSERT INTO push_outbox (event_id, member_id, device_token, kind, shift_id, signup_id,
                         next_attempt_at, expires_at, created_at)
SELECT md5(due.signup_id::text || ':' || due.lead_minutes || ':' || due.shift_starts_at::text)::uuid,
       s.member_id, d.token, 'SHIFT_REMINDER', s.shift_id, s.id, $1, due.shift_starts_at, $1
FROM due
JOIN signups s ON s.id = due.signup_id
JOIN devices d ON d.member_id = s.member_id
LEFT JOIN notification_preferences p ON p.member_id = s.member_id
WHERE NOT ('SHIFT_REMINDER' = ANY (COALESCE(p.muted_kinds, '{}')))`

// ScheduleReminders queues the shift reminders that have come due and
// reports how many messages it queued. System only: the push worker runs
// it periodically; reminders live in the database, so they survive
// restarts.
func (s *Store) ScheduleReminders(ctx context.Context, actor Actor) (n int, err error) {
	if err := actor.requireSystem(); err != nil {
		return 0, err
	}
	defer wrap(&err, "ScheduleReminders")
	tag, err := s.pool.Exec(ctx, scheduleRemindersSQL, s.clock.Now(), reminderLeads)
	return int(tag.RowsAffected()), err
}

// PushPosition is a message's place in the order the worker claims due
// messages in: urgent first, then by due time, then by id.
type PushPosition struct {
	Urgent bool
	Due    time.Time
	ID     int64
}

// pushStart is before every position.
var pushStart = PushPosition{Urgent: true}

// Claims taken by a worker that died (their lease ran out) are put back at
// the start of each pass over the due messages; they are sent again, and
// the app drops the repeat by event id.
const releaseLapsedPushSQL = `
UPDATE push_outbox SET status = 'PENDING', claimed_until = NULL
WHERE status = 'SENDING' AND claimed_until < $1`

// Claiming takes due messages in order after a position. A message that
// expired, or whose device is gone, is closed as FAILED on the way instead
// of being handed out.
const claimPushSQL = `
WITH due AS (
    SELECT id FROM push_outbox
    WHERE status = 'PENDING' AND next_attempt_at <= $1
      AND ((NOT urgent), next_attempt_at, id) > (NOT $4::boolean, $5::timestamptz, $6::bigint)
    ORDER BY (NOT urgent), next_attempt_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE push_outbox o SET
        status = CASE WHEN o.expires_at <= $1 OR d.token IS NULL THEN 'FAILED' ELSE 'SENDING' END,
        last_error = CASE WHEN o.expires_at <= $1 THEN 'expired before it could be delivered'
                          WHEN d.token IS NULL THEN 'device no longer registered'
                          ELSE o.last_error END,
        claimed_until = CASE WHEN o.expires_at <= $1 OR d.token IS NULL THEN NULL ELSE $2::timestamptz END,
        attempts = o.attempts + 1
    FROM due c
    JOIN push_outbox q ON q.id = c.id
    LEFT JOIN devices d ON d.token = q.device_token
    WHERE o.id = c.id
    RETURNING o.id, o.event_id, o.member_id, o.device_token, d.platform, o.kind, o.shift_id, o.signup_id,
              o.announcement_id, o.message, o.urgent, o.attempts, o.expires_at, o.status, o.next_attempt_at
)
SELECT t.id, t.event_id, t.member_id, t.device_token, COALESCE(t.platform, ''), t.kind, t.shift_id, t.signup_id,
       t.announcement_id, t.message, t.urgent, t.attempts, t.expires_at, t.status = 'SENDING', t.next_attempt_at,
       COALESCE(p.quiet_start, 0), COALESCE(p.quiet_end, 0), COALESCE(p.time_zone, 'UTC')
FROM taken t
LEFT JOIN notification_preferences p ON p.member_id = t.member_id
ORDER BY NOT t.urgent, t.next_attempt_at, t.id`

// ClaimPush takes up to limit due messages after position after (nil:
// from the start, which first puts back lapsed claims) for this worker
// until lease ends. It returns those to send, and where to go on from when
// it took limit messages (counting those it closed as FAILED), or nil when
// it caught up. Going on from there, a worker passes over a burst of
// messages once; workers on several replicas never take the same row
// (SKIP LOCKED). System only: the push worker runs it.
func (s *Store) ClaimPush(ctx context.Context, actor Actor, limit int, lease time.Duration, after *PushPosition) (_ []PushMessage, next *PushPosition, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, nil, err
	}
	defer wrap(&err, "ClaimPush")
	now := s.clock.Now()
	from := pushStart
	if after != nil {
		from = *after
	}
	var out []PushMessage
	err = s.bookkeeping(ctx, func(tx pgx.Tx) error {
		if after == nil {
			if _, err := tx.Exec(ctx, releaseLapsedPushSQL, now); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, claimPushSQL, now, now.Add(lease), limit, from.Urgent, from.Due, from.ID)
		if err != nil {
			return err
		}
		out, next = nil, nil
		taken := 0
		for rows.Next() {
			var (
				m    PushMessage
				send bool
				pos  PushPosition
			)
			p := &m.Preferences
			if err := rows.Scan(&m.ID, &m.EventID, &m.MemberID, &m.DeviceToken, &m.Platform, &m.Kind, &m.ShiftID, &m.SignupID,
				&m.AnnouncementID, &m.Message, &m.Urgent, &m.Attempts, &m.ExpiresAt, &send, &pos.Due,
				&p.QuietStart, &p.QuietEnd, &p.TimeZone); err != nil {
				return err
			}
			p.MemberID = m.MemberID
			pos.Urgent, pos.ID = m.Urgent, m.ID
			if taken++; taken == limit {
				next = &pos
			}
			if send {
				out = append(out, m)
			}
		}
		return rows.Err()
	})
	if err != nil {
		// Rolled back: nothing was claimed, whatever was read.
		return nil, nil, err
	}
	return out, next, nil
}

// indexPlans keeps a transaction's plans on the indexes: the outbox and the
// member events grow from nothing to tens of thousands of rows within
// seconds of an urgent announcement, long before their statistics say so,
// and a plan made for an empty table scans all of it for every batch (as
// migration 005 explains for the event reads).
const indexPlans = `SET LOCAL enable_seqscan TO off`

// bookkeepingSettings apply to the push worker's claims and records: index
// plans, and commits that do not wait for the disk. A database crash can
// lose their last moments, and all that costs is a message sent again (the
// app drops it by event id), while the machine's disk flushes stay for the
// members' own changes.
const bookkeepingSettings = `SET LOCAL synchronous_commit TO off; ` + indexPlans

// bookkeeping runs fn in a transaction with bookkeepingSettings.
func (s *Store) bookkeeping(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, bookkeepingSettings); err != nil {
			return err
		}
		return fn(tx)
	})
}

// PushResult is what became of a claimed message.
type PushResult string

// The results a worker records.
const (
	// PushDelivered: FCM accepted the message.
	PushDelivered PushResult = "DELIVERED"
	// PushRejected: FCM refused the message itself; retrying cannot help.
	PushRejected PushResult = "REJECTED"
	// PushRetryLater: a transient failure; another attempt at At, or the
	// dead-letter state once the attempts are used up.
	PushRetryLater PushResult = "RETRY"
	// PushPostponed: held back until At without using an attempt (quiet
	// hours, or a worker stopping before it could send).
	PushPostponed PushResult = "POSTPONED"
)

// PushOutcome is the result of one claimed message.
type PushOutcome struct {
	ID     int64
	Result PushResult
	// At is when to try again, for PushRetryLater and PushPostponed.
	At time.Time
	// Error is FCM's or the network's words, for PushRejected and
	// PushRetryLater.
	Error string
}

// Only messages still claimed are updated: one cancelled or failed
// meanwhile (a withdrawn reminder, a dropped device) keeps that status.
const recordPushSQL = `
UPDATE push_outbox o SET
    status = CASE u.result
        WHEN 'DELIVERED' THEN 'SENT'
        WHEN 'REJECTED' THEN 'FAILED'
        WHEN 'RETRY' THEN CASE WHEN o.attempts >= $5 THEN 'DEAD' ELSE 'PENDING' END
        ELSE 'PENDING' END,
    sent_at = CASE WHEN u.result = 'DELIVERED' THEN $6 ELSE o.sent_at END,
    next_attempt_at = CASE WHEN u.result IN ('RETRY', 'POSTPONED') THEN u.at ELSE o.next_attempt_at END,
    attempts = CASE WHEN u.result = 'POSTPONED' THEN o.attempts - 1 ELSE o.attempts END,
    last_error = CASE WHEN u.result IN ('REJECTED', 'RETRY') THEN u.error ELSE o.last_error END,
    claimed_until = NULL
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[]) AS u(id, result, at, error)
WHERE o.id = u.id AND o.status = 'SENDING'`

// RecordPush writes what became of claimed messages, all in one statement:
// a worker sending thousands a second records them in batches. A message
// whose attempts reach maxAttempts and fails again goes to the dead-letter
// state operators watch. System only: the push worker runs it.
func (s *Store) RecordPush(ctx context.Context, actor Actor, outcomes []PushOutcome, maxAttempts int) (err error) {
	if err := actor.requireSystem(); err != nil {
		return err
	}
	defer wrap(&err, "RecordPush")
	if len(outcomes) == 0 {
		return nil
	}
	ids := make([]int64, len(outcomes))
	results := make([]string, len(outcomes))
	at := make([]time.Time, len(outcomes))
	errs := make([]string, len(outcomes))
	for i, o := range outcomes {
		ids[i], results[i], at[i], errs[i] = o.ID, string(o.Result), o.At, o.Error
	}
	return s.bookkeeping(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, recordPushSQL, ids, results, at, errs, maxAttempts, s.clock.Now())
		return err
	})
}

// PushCounts counts outbox messages by status, for operators. System only.
func (s *Store) PushCounts(ctx context.Context, actor Actor) (_ map[PushStatus]int, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "PushCounts")
	rows, err := s.pool.Query(ctx, pushCountsSQL)
	if err != nil {
		return nil, err
	}
	out := map[PushStatus]int{}
	for rows.Next() {
		var (
			st PushStatus
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// PushBacklog is the outbox's work in hand and its dead letters.
type PushBacklog struct {
	// Pending messages wait for a worker; Sending ones are claimed.
	Pending, Sending int
	// Dead messages ran out of attempts.
	Dead int
}

// Each count reads one partial index: the outbox keeps every message it
// ever sent, so counting by status over the whole table grows without end.
const pushBacklogSQL = `
SELECT (SELECT count(*) FROM push_outbox WHERE status = 'PENDING'),
       (SELECT count(*) FROM push_outbox WHERE status = 'SENDING'),
       (SELECT count(*) FROM push_outbox WHERE status = 'DEAD')`

// PushBacklog counts the outbox's pending, claimed and dead messages, for
// the metrics. System only.
func (s *Store) PushBacklog(ctx context.Context, actor Actor) (b PushBacklog, err error) {
	if err := actor.requireSystem(); err != nil {
		return b, err
	}
	defer wrap(&err, "PushBacklog")
	err = s.pool.QueryRow(ctx, pushBacklogSQL).Scan(&b.Pending, &b.Sending, &b.Dead)
	return b, err
}
