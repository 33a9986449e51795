-- A line event that may end members' right to follow the line (a sign-up
-- or shift cancelled, a captain removed) names them. Every replica reads
-- it in the line's own order, so it holds those members' subscriptions at
-- that event, before anything after it, until their rights are checked.
ALTER TABLE line_events ADD COLUMN revokes uuid[];

DROP FUNCTION line_events_after(text[], bigint[], int);

CREATE FUNCTION line_events_after(line_ids text[], cursors bigint[], page_size int)
RETURNS TABLE (line_id text, after bigint, latest bigint, seq bigint, kind text, shift_id uuid, announcement_id uuid, occurred_at timestamptz, revokes uuid[])
LANGUAGE sql STABLE
SET enable_seqscan = off
AS $$
    SELECT c.line_id, c.after, l.event_seq, e.seq, e.kind, e.shift_id, e.announcement_id, e.occurred_at, e.revokes
    FROM unnest(line_ids, cursors) AS c(line_id, after)
    JOIN picket_lines l ON l.id = c.line_id::uuid
    LEFT JOIN LATERAL (
        SELECT le.seq, le.kind, le.shift_id, le.announcement_id, le.occurred_at, le.revokes
        FROM line_events le
        WHERE le.picket_line_id = l.id AND le.seq > c.after
        ORDER BY le.seq
        LIMIT page_size
    ) e ON true
$$;
