package db

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// LineEventKind says what changed on a picket line.
type LineEventKind string

// The kinds of line event. ResyncRequired is never stored: it tells a
// client resuming from a cursor older than the retention window to refetch.
const (
	LineSignupChanged  LineEventKind = "SIGNUP_CHANGED"
	LineShiftFilled    LineEventKind = "SHIFT_FILLED"
	LineSpotOpened     LineEventKind = "SPOT_OPENED"
	LineShiftCreated   LineEventKind = "SHIFT_CREATED"
	LineShiftChanged   LineEventKind = "SHIFT_CHANGED"
	LineShiftCancelled LineEventKind = "SHIFT_CANCELLED"
	LineAnnouncement   LineEventKind = "ANNOUNCEMENT"
	LineCaptainChanged LineEventKind = "CAPTAIN_CHANGED"
	LineResyncRequired LineEventKind = "RESYNC_REQUIRED"
)

// LineEvent is one change to a picket line, numbered per line.
type LineEvent struct {
	PicketLineID   string
	Seq            int64
	Kind           LineEventKind
	ShiftID        *string
	AnnouncementID *string
	OccurredAt     time.Time
	// Revokes names the members whose right to follow the line this change
	// may have ended; no subscriber is shown it.
	Revokes []string
}

// MemberEventKind says what happened that concerns one member.
type MemberEventKind string

// The kinds of member event.
const (
	MemberWaitlistPromoted   MemberEventKind = "WAITLIST_PROMOTED"
	MemberShiftChanged       MemberEventKind = "SHIFT_CHANGED"
	MemberShiftCancelled     MemberEventKind = "SHIFT_CANCELLED"
	MemberUrgentAnnouncement MemberEventKind = "URGENT_ANNOUNCEMENT"
)

// MemberEvent is one event for one member, numbered per member.
type MemberEvent struct {
	MemberID       string
	Seq            int64
	Kind           MemberEventKind
	ShiftID        *string
	SignupID       *string
	AnnouncementID *string
	OccurredAt     time.Time
}

// occupancyEvents tells a line when a change moved a shift between full and
// not full: captains watch for gaps, members for spots.
func occupancyEvents(before, after *Shift) []LineEventKind {
	switch {
	case before.SpotsLeft() == 0 && after.SpotsLeft() > 0:
		return []LineEventKind{LineSpotOpened}
	case before.SpotsLeft() > 0 && after.SpotsLeft() == 0 && after.CancelledAt == nil:
		return []LineEventKind{LineShiftFilled}
	}
	return nil
}

// The line row lock taken here orders the line's events (see migration 002).
const insertLineEventsSQL = `
WITH next AS (
    UPDATE picket_lines SET event_seq = event_seq + cardinality($2::text[]) WHERE id = $1 RETURNING event_seq
)
INSERT INTO line_events (picket_line_id, seq, kind, shift_id, announcement_id, occurred_at, revokes)
SELECT $1, next.event_seq - cardinality($2::text[]) + k.ord, k.kind, $3, $4, $5, CASE WHEN k.ord = 1 THEN $6::uuid[] END
FROM next, unnest($2::text[]) WITH ORDINALITY AS k(kind, ord)`

// lineEvents records events on a line, in order, in the use-case's
// transaction, in one round trip.
func (s *Store) lineEvents(ctx context.Context, tx pgx.Tx, c *changes, lineID string, shiftID, announcementID *string, kinds ...LineEventKind) error {
	return s.insertLineEvents(ctx, tx, c, lineID, shiftID, announcementID, nil, kinds)
}

// revokingLineEvents is lineEvents for a change that may end the right of
// the members revoked to follow the line: the first event names them, and
// they are told to have their rights checked.
func (s *Store) revokingLineEvents(ctx context.Context, tx pgx.Tx, c *changes, lineID string, shiftID *string, revoked []string, kinds ...LineEventKind) error {
	c.rights = append(c.rights, revoked...)
	return s.insertLineEvents(ctx, tx, c, lineID, shiftID, nil, revoked, kinds)
}

func (s *Store) insertLineEvents(ctx context.Context, tx pgx.Tx, c *changes, lineID string, shiftID, announcementID *string, revoked []string, kinds []LineEventKind) error {
	if len(revoked) == 0 {
		revoked = nil // stored as NULL
	}
	if _, err := tx.Exec(ctx, insertLineEventsSQL, lineID, kinds, shiftID, announcementID, s.clock.Now(), revoked); err != nil {
		return err
	}
	c.lines = append(c.lines, lineID)
	return nil
}

// Members are numbered in id order so that two transactions writing events
// for overlapping sets of members lock the counters in the same order.
const insertMemberEventsSQL = `
WITH next AS (
    INSERT INTO member_event_seqs AS m (member_id, seq)
    SELECT id, 1 FROM unnest($1::uuid[]) AS id ORDER BY id
    ON CONFLICT (member_id) DO UPDATE SET seq = m.seq + 1
    RETURNING member_id, seq
)
INSERT INTO member_events (member_id, seq, kind, shift_id, signup_id, announcement_id, occurred_at)
SELECT member_id, seq, $2, $3, $4, $5, $6 FROM next`

// memberEvents records one event for each member in the use-case's transaction.
func (s *Store) memberEvents(ctx context.Context, tx pgx.Tx, c *changes, memberIDs []string, kind MemberEventKind, shiftID, signupID, announcementID *string) error {
	if len(memberIDs) == 0 {
		return nil
	}
	ids := slices.Compact(slices.Sorted(slices.Values(memberIDs)))
	if _, err := tx.Exec(ctx, insertMemberEventsSQL, ids, kind, shiftID, signupID, announcementID, s.clock.Now()); err != nil {
		return err
	}
	c.members = append(c.members, ids...)
	// Every personal event is also a push notification of the same name.
	_, err := s.enqueuePush(ctx, tx, c, ids, NotificationKind(kind), shiftID, signupID, announcementID, nil, kind == MemberUrgentAnnouncement)
	return err
}

// LinePage is what one read found for a line: its next events after the
// cursor, in order, and its latest sequence number. A gap between the
// cursor and the first event, or no event below the latest, means events
// were purged.
type LinePage struct {
	Events []LineEvent
	Latest int64
}

// LineRead is where a read of a line's events starts: after sequence
// number After.
type LineRead struct {
	LineID string
	After  int64
}

// line_events_after (migration 005, a function so that the planner keeps
// to the indexes) left-joins the events, keeping a line with no new events:
// its latest sequence number is what shows that the events a subscriber
// still needs were purged. Both come from one statement's snapshot, and a
// line's events commit with its counter, so latest never runs ahead of the
// events read. Ids go in and come back as text, so the pages are keyed
// exactly as the caller spelled them (a uuid may arrive in capitals).
const lineEventsAfterSQL = `SELECT * FROM line_events_after($1, $2, $3)`

// LineEventsAfter reads, in one query, for each read up to limit events of
// its line after its start, in order, and the line's latest sequence
// number. A line may be read from several points (subscribers at different
// places in its stream). System only: it serves the realtime hub's live
// delivery, which checked the subscriber's right to watch each line when it
// subscribed (WatchLine).
func (s *Store) LineEventsAfter(ctx context.Context, actor Actor, reads []LineRead, limit int) (_ map[LineRead]LinePage, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "LineEventsAfter")
	ids := make([]string, len(reads))
	afters := make([]int64, len(reads))
	for i, r := range reads {
		ids[i], afters[i] = r.LineID, r.After
	}
	rows, err := s.pool.Query(ctx, lineEventsAfterSQL, ids, afters, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	pages := make(map[LineRead]LinePage, len(reads))
	for rows.Next() {
		var (
			c      LineRead
			e      LineEvent
			latest int64
			seq    *int64
			kind   *LineEventKind
			at     *time.Time
		)
		if err := rows.Scan(&c.LineID, &c.After, &latest, &seq, &kind, &e.ShiftID, &e.AnnouncementID, &at, &e.Revokes); err != nil {
			return nil, err
		}
		page := pages[c]
		page.Latest = latest
		if seq != nil {
			e.PicketLineID, e.Seq, e.Kind, e.OccurredAt = c.LineID, *seq, *kind, *at
			page.Events = append(page.Events, e)
		}
		pages[c] = page
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Sorted here rather than by the query: ordering the rows of a hundred
	// lines by their text ids cost PostgreSQL more than the read itself.
	for _, page := range pages {
		slices.SortFunc(page.Events, func(a, b LineEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return pages, nil
}

const lineEventSeqSQL = `SELECT event_seq FROM picket_lines WHERE id = $1`

// WatchLine checks that the actor may follow a line's events: the same
// people who may see its address (coordinators, its captains, members with
// a sign-up on it). It returns the line's latest sequence number, where a
// subscriber without a cursor starts.
func (s *Store) WatchLine(ctx context.Context, actor Actor, lineID string) (seq int64, err error) {
	defer wrap(&err, "WatchLine(%s)", lineID)
	if err := actor.requireMember(); err != nil {
		return 0, err
	}
	if !validID(lineID) {
		return 0, errNotFound("picket line")
	}
	err = s.pool.QueryRow(ctx, lineEventSeqSQL, lineID).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errNotFound("picket line")
	}
	if err != nil {
		return 0, err
	}
	vis, err := s.AddressVisibility(ctx, actor, []string{lineID})
	if err != nil {
		return 0, err
	}
	if !vis[lineID] {
		return 0, errForbidden("only this line's captains, members signed up on it and coordinators can follow it")
	}
	return seq, nil
}

const memberEventsAfterSQL = `SELECT * FROM member_events_after($1, $2, $3)`

// MemberEventsAfter reads, for each member with a cursor, up to limit
// events after that member's cursor, grouped by member and in order.
// System only: it serves the realtime hub's live delivery.
func (s *Store) MemberEventsAfter(ctx context.Context, actor Actor, cursors map[string]int64, limit int) (_ []MemberEvent, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "MemberEventsAfter")
	ids := make([]string, 0, len(cursors))
	seqs := make([]int64, 0, len(cursors))
	for id, seq := range cursors {
		ids = append(ids, id)
		seqs = append(seqs, seq)
	}
	rows, err := s.pool.Query(ctx, memberEventsAfterSQL, ids, seqs, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (MemberEvent, error) {
		var e MemberEvent
		return e, r.Scan(&e.MemberID, &e.Seq, &e.Kind, &e.ShiftID, &e.SignupID, &e.AnnouncementID, &e.OccurredAt)
	})
}

// A member without events yet has no counter row: they are at 0.
const memberEventSeqSQL = `SELECT COALESCE((SELECT seq FROM member_event_seqs WHERE member_id = $1), 0)`

// MemberEventSeq returns the actor's latest personal event number, where a
// new subscription to their events starts.
func (s *Store) MemberEventSeq(ctx context.Context, actor Actor) (seq int64, err error) {
	defer wrap(&err, "MemberEventSeq")
	if err := actor.requireMember(); err != nil {
		return 0, err
	}
	err = s.pool.QueryRow(ctx, memberEventSeqSQL, actor.MemberID).Scan(&seq)
	return seq, err
}

// LineCursor is the opaque cursor of a line event.
func LineCursor(seq int64) string { return eventCursor("line:", seq) }

// ParseLineCursor reads a cursor made by LineCursor.
func ParseLineCursor(c string) (int64, error) { return parseEventCursor("line:", c) }

// MemberCursor is the opaque cursor of a member event.
func MemberCursor(seq int64) string { return eventCursor("member:", seq) }

// ParseMemberCursor reads a cursor made by MemberCursor.
func ParseMemberCursor(c string) (int64, error) { return parseEventCursor("member:", c) }

func eventCursor(stream string, seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(stream + strconv.FormatInt(seq, 10)))
}

// ErrCursorAhead is the error for a cursor past a stream's latest event,
// which no event of the stream gave.
func ErrCursorAhead() error { return errBadEventCursor() }

func errBadEventCursor() *Error { return errInput("after", "not a cursor of this event stream") }

func parseEventCursor(stream, c string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if n, ok := strings.CutPrefix(string(raw), stream); ok {
			if seq, err := strconv.ParseInt(n, 10, 64); err == nil && seq >= 0 {
				return seq, nil
			}
		}
	}
	return 0, errBadEventCursor()
}
