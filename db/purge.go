package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Retention holds the purge's windows that an operator sets.
type Retention struct {
	// Events is how long line and member events are kept for clients
	// resuming by cursor (EVENT_RETENTION_DAYS).
	Events time.Duration
}

// How long rows stay once nothing reads them any more; the server's
// operator has no reason to change these.
const (
	// LoginCodeGrace keeps an expired login code a while past its ten
	// minutes, so that a replica whose clock runs behind still finds a
	// code it holds valid.
	LoginCodeGrace = time.Hour
	// EndedSessionRetention keeps a revoked or expired session, with its
	// refresh tokens, for a day: time enough to look into a revocation
	// for reuse, and no longer a record of who signed in when.
	EndedSessionRetention = 24 * time.Hour
	// UsedRefreshTokenRetention keeps a rotated refresh token of a live
	// session as long as a session lives unrefreshed. Presenting a used
	// token revokes its session, which is how a stolen copy is caught:
	// the member's app may come back with its token that long after a
	// thief used it.
	UsedRefreshTokenRetention = SessionTTL
	// RateLimitRetention keeps a rate-limit window until it has surely
	// ended: it is longer than every Limit's window (hit refuses a Limit
	// that outlasts it).
	RateLimitRetention = time.Hour
	// MutationCountRetention keeps a member's shared mutation count
	// (member_mutations) for minutes after its MutationWindow ends, room
	// enough for a replica whose clock runs behind to still be counting
	// in it.
	MutationCountRetention = 10 * time.Minute
	// PushRetention keeps push messages that were delivered or withdrawn
	// (SENT, CANCELLED) for a week, for questions about a notification.
	PushRetention = 7 * 24 * time.Hour
	// PushDeadLetterRetention keeps messages that could not be delivered
	// (FAILED, DEAD) for a month: operators read them to find what went
	// wrong. PENDING and SENDING messages are the worker's and stay.
	PushDeadLetterRetention = 30 * 24 * time.Hour
	// LoginEmailRetention keeps a login email that is done with (SENT,
	// FAILED, SUPERSEDED; it holds no code by then) for a day, to answer a
	// member whose code never arrived, and no longer a record of who
	// signed in when. PENDING and SENDING emails are the worker's and stay.
	LoginEmailRetention = 24 * time.Hour
	// LoginRequestRetention keeps a request for a login code the mail
	// worker has not resolved (none ran, or every one was failing) only
	// as long as the code it would make lasts: resolved later it makes
	// nothing, and it says who asked.
	LoginRequestRetention = LoginCodeTTL
	// ReminderRetention keeps the record of a shift's reminders for a day
	// after the shift starts; the reminder scan only reads shifts yet to
	// start.
	ReminderRetention = 24 * time.Hour
)

// purgeBatch is how many rows one purge statement deletes at most. A
// backlog (a first purge after months, or a big push) goes in many short
// transactions instead of one that locks a million rows and writes all of
// them to the WAL at once.
const purgeBatch = 10_000

// purgeStatementTimeoutSQL gives each batch a minute instead of the pool's
// statement timeout, which is made for requests: finding a batch of old
// rows in a table without an index on their age reads the whole table.
// The rows a batch locks are ones nobody uses any more.
const purgeStatementTimeoutSQL = `SET LOCAL statement_timeout = '1min'`

// The purge's statements, one a table. Each deletes at most $1 rows older
// than its cutoffs ($2, $3), picked by ctid so that one statement finds
// and deletes a batch.
const (
	purgeLoginCodesSQL = `
DELETE FROM login_codes WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM login_codes WHERE expires_at < $2 LIMIT $1))`
	// The refresh tokens of the sessions purgeSessionsSQL deletes go
	// first, so that the report counts them: $2 is that statement's
	// cutoff, and $3 the one for tokens already rotated.
	purgeRefreshTokensSQL = `
DELETE FROM refresh_tokens WHERE ctid = ANY (ARRAY(
    SELECT rt.ctid FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
    WHERE s.expires_at < $2 OR s.revoked_at < $2 OR rt.used_at < $3 LIMIT $1))`
	purgeSessionsSQL = `
DELETE FROM sessions WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM sessions WHERE expires_at < $2 OR revoked_at < $2 LIMIT $1))`
	purgeRateLimitsSQL = `
DELETE FROM rate_limits WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM rate_limits WHERE window_start < $2 LIMIT $1))`
	purgeMemberMutationsSQL = `
DELETE FROM member_mutations WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM member_mutations WHERE window_start < $2 LIMIT $1))`
	purgeLineEventsSQL = `
DELETE FROM line_events WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM line_events WHERE occurred_at < $2 LIMIT $1))`
	purgeMemberEventsSQL = `
DELETE FROM member_events WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM member_events WHERE occurred_at < $2 LIMIT $1))`
	// $2 is the cutoff for delivered and withdrawn messages, $3 for dead
	// letters.
	purgePushOutboxSQL = `
DELETE FROM push_outbox WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM push_outbox
    WHERE (status IN ('SENT', 'CANCELLED') AND created_at < $2)
       OR (status IN ('FAILED', 'DEAD') AND created_at < $3)
    LIMIT $1))`
	purgeLoginEmailsSQL = `
DELETE FROM login_emails WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM login_emails
    WHERE status IN ('SENT', 'FAILED', 'SUPERSEDED') AND created_at < $2 LIMIT $1))`
	purgeLoginRequestsSQL = `
DELETE FROM login_requests WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM login_requests WHERE requested_at < $2 LIMIT $1))`
	// A websocket's row left by a replica that died: it stopped counting
	// once it went ConnectionStaleAfter unrefreshed.
	purgeWSConnectionsSQL = `
DELETE FROM ws_connections WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM ws_connections WHERE seen_at < $2 LIMIT $1))`
	purgeShiftRemindersSQL = `
DELETE FROM shift_reminders WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM shift_reminders WHERE shift_starts_at < $2 LIMIT $1))`
)

// A purgeStep is what the purge does to one table: its statement, and
// the cutoffs the statement takes after the batch size.
type purgeStep struct {
	table   string
	sql     string
	cutoffs func(now time.Time, r Retention) []any
}

// purgeSteps lists every table that keeps rows past their use, in the
// order the purge visits them. A table of that kind added to the schema
// gets one statement above and one step here (and one case in the purge's
// test); the report then has a line for it.
var purgeSteps = []purgeStep{
	{"login_codes", purgeLoginCodesSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-LoginCodeGrace)}
	}},
	{"login_emails", purgeLoginEmailsSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-LoginEmailRetention)}
	}},
	{"login_requests", purgeLoginRequestsSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-LoginRequestRetention)}
	}},
	{"refresh_tokens", purgeRefreshTokensSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-EndedSessionRetention), now.Add(-UsedRefreshTokenRetention)}
	}},
	{"sessions", purgeSessionsSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-EndedSessionRetention)}
	}},
	{"rate_limits", purgeRateLimitsSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-RateLimitRetention)}
	}},
	{"member_mutations", purgeMemberMutationsSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-MutationCountRetention)}
	}},
	{"line_events", purgeLineEventsSQL, func(now time.Time, r Retention) []any {
		return []any{now.Add(-r.Events)}
	}},
	{"member_events", purgeMemberEventsSQL, func(now time.Time, r Retention) []any {
		return []any{now.Add(-r.Events)}
	}},
	{"push_outbox", purgePushOutboxSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-PushRetention), now.Add(-PushDeadLetterRetention)}
	}},
	{"shift_reminders", purgeShiftRemindersSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-ReminderRetention)}
	}},
	{"ws_connections", purgeWSConnectionsSQL, func(now time.Time, _ Retention) []any {
		return []any{now.Add(-ConnectionStaleAfter)}
	}},
}

// PurgedRows is how many rows the purge deleted from one table.
type PurgedRows struct {
	Table string
	Rows  int64
}

// PurgeReport is what one purge deleted, table by table in the order it
// visited them.
type PurgeReport []PurgedRows

// Total is how many rows the purge deleted in all.
func (r PurgeReport) Total() int64 {
	var n int64
	for _, p := range r {
		n += p.Rows
	}
	return n
}

// Purge deletes what the retention windows no longer keep: expired login
// codes, finished login emails and requests for codes left unresolved past
// the codes' lifetime, ended sessions and their refresh tokens, rotated
// refresh tokens, ended rate-limit windows and members'
// mutation counts, old line and member events, finished push messages,
// past shifts' reminder records and the websockets of replicas that died
// without saying so. Each table goes in batches,
// each its own transaction. A table that fails does not keep the others
// from being purged: the report counts what went, and the error says which
// tables failed. System only: the server runs it on a schedule and
// `picketline purge` once.
func (s *Store) Purge(ctx context.Context, actor Actor, r Retention) (report PurgeReport, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "Purge")
	now := s.clock.Now()
	var errs []error
	for _, step := range purgeSteps {
		n, err := s.purgeTable(ctx, step.sql, step.cutoffs(now, r))
		report = append(report, PurgedRows{Table: step.table, Rows: n})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", step.table, err))
		}
	}
	return report, errors.Join(errs...)
}

// purgeTable runs one table's statement until a batch comes back short,
// and returns how many rows went. The cutoffs stay those of the purge's
// start, so rows growing old meanwhile cannot keep it going.
func (s *Store) purgeTable(ctx context.Context, sql string, cutoffs []any) (int64, error) {
	args := append([]any{purgeBatch}, cutoffs...)
	var total int64
	for {
		var n int64
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, purgeStatementTimeoutSQL); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, sql, args...)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}
