package main

// The SQL of one sign-up, copied verbatim from package db, which exports
// none of it: activeStatuses, signupColumns, lockShiftForSignupSQL,
// priorSignupSQL and insertSignupSQL from db/signups.go and
// insertLineEventsSQL from db/events.go, the statements
// Store.SignUpForShift runs in its transaction. The bare scenario is only a
// fair ceiling while it runs the same statements: TestSignupSQLMatchesDB
// fails when they drift apart.
const (
	activeStatuses = `('SIGNED_UP', 'WAITLISTED', 'CHECKED_IN')`
	signupColumns  = `s.id, s.shift_id, s.member_id, s.status,
    CASE WHEN s.status = 'WAITLISTED' THEN (
        SELECT count(*)::int FROM signups w
        WHERE w.shift_id = s.shift_id AND w.status = 'WAITLISTED' AND w.waitlist_seq <= s.waitlist_seq
    ) END,
    s.created_at`
	lockShiftForSignupSQL = `
SELECT sh.picket_line_id, sh.capacity, sh.signed_up_count, sh.starts_at, sh.ends_at, sh.cancelled_at, ja.ended_at IS NOT NULL
FROM shifts sh
JOIN picket_lines l ON l.id = sh.picket_line_id
JOIN job_actions ja ON ja.id = l.job_action_id
WHERE sh.id = $1
FOR UPDATE OF sh`
	priorSignupSQL = `
SELECT ` + signupColumns + `, ($3::text IS NOT NULL AND s.idempotency_key = $3) AS same_key
FROM signups s
WHERE s.member_id = $1 AND ((s.shift_id = $2 AND s.status IN ` + activeStatuses + `) OR s.idempotency_key = $3)
ORDER BY same_key DESC
LIMIT 1`
	insertSignupSQL = `
WITH ins AS (
    INSERT INTO signups (shift_id, member_id, status, period, waitlist_seq, idempotency_key, created_at, updated_at)
    VALUES ($1, $2, $3, tstzrange($4, $5), CASE WHEN $3 = 'WAITLISTED' THEN nextval('signups_waitlist_seq_seq') END, $6, $7, $7)
    RETURNING id
), counted AS (
    UPDATE shifts SET
        signed_up_count = signed_up_count + CASE WHEN $3 = 'SIGNED_UP' THEN 1 ELSE 0 END,
        waitlist_count = waitlist_count + CASE WHEN $3 = 'WAITLISTED' THEN 1 ELSE 0 END
    WHERE id = $1
    RETURNING waitlist_count
)
SELECT ins.id, counted.waitlist_count FROM ins, counted`
	insertLineEventsSQL = `
WITH next AS (
    UPDATE picket_lines SET event_seq = event_seq + cardinality($2::text[]) WHERE id = $1 RETURNING event_seq
)
INSERT INTO line_events (picket_line_id, seq, kind, shift_id, announcement_id, occurred_at, revokes)
SELECT $1, next.event_seq - cardinality($2::text[]) + k.ord, k.kind, $3, $4, $5, CASE WHEN k.ord = 1 THEN $6::uuid[] END
FROM next, unnest($2::text[]) WITH ORDINALITY AS k(kind, ord)`
)
