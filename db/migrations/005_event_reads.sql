-- The realtime hub reads new events of many lines (or members) at once.
-- These tables start empty and then take thousands of rows a minute, so
-- the statistics the planner last saw can say "tiny" while they hold tens
-- of thousands of rows; the planner then scans a whole table once per line
-- in the read, which took hundreds of milliseconds a round in the load
-- test. Each read is by primary key prefix, whatever the statistics say,
-- so these functions keep the planner on the indexes.

CREATE FUNCTION line_events_after(line_ids text[], cursors bigint[], page_size int)
RETURNS TABLE (line_id text, after bigint, latest bigint, seq bigint, kind text, shift_id uuid, announcement_id uuid, occurred_at timestamptz)
LANGUAGE sql STABLE
SET enable_seqscan = off
AS $$
    SELECT c.line_id, c.after, l.event_seq, e.seq, e.kind, e.shift_id, e.announcement_id, e.occurred_at
    FROM unnest(line_ids, cursors) AS c(line_id, after)
    JOIN picket_lines l ON l.id = c.line_id::uuid
    LEFT JOIN LATERAL (
        SELECT le.seq, le.kind, le.shift_id, le.announcement_id, le.occurred_at
        FROM line_events le
        WHERE le.picket_line_id = l.id AND le.seq > c.after
        ORDER BY le.seq
        LIMIT page_size
    ) e ON true
$$;

CREATE FUNCTION member_events_after(member_ids uuid[], cursors bigint[], page_size int)
RETURNS TABLE (member_id uuid, seq bigint, kind text, shift_id uuid, signup_id uuid, announcement_id uuid, occurred_at timestamptz)
LANGUAGE sql STABLE
SET enable_seqscan = off
AS $$
    SELECT c.member_id, e.seq, e.kind, e.shift_id, e.signup_id, e.announcement_id, e.occurred_at
    FROM unnest(member_ids, cursors) AS c(member_id, after)
    CROSS JOIN LATERAL (
        SELECT me.seq, me.kind, me.shift_id, me.signup_id, me.announcement_id, me.occurred_at
        FROM member_events me
        WHERE me.member_id = c.member_id AND me.seq > c.after
        ORDER BY me.seq
        LIMIT page_size
    ) e
    ORDER BY c.member_id, e.seq
$$;
