-- An urgent announcement reaches everyone taking part, which on a big job
-- action is tens of thousands of members. Writing all their personal events
-- and push messages in the announcement's own transaction held the poster
-- for seconds; instead that transaction records who is to hear it, and the
-- push worker fans it out in batches, each batch one transaction that also
-- advances done, so a crash mid-way neither loses nor repeats a recipient.
CREATE TABLE announcement_fanouts (
    announcement_id  uuid PRIMARY KEY REFERENCES announcements ON DELETE CASCADE,
    -- The audience when the announcement was posted, in id order (the order
    -- member event counters are locked in).
    recipients       uuid[] NOT NULL,
    -- How many of recipients have been reached; the row goes when all are.
    done             int NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL
);

-- The worker claims urgent messages first, then by due time, then by id,
-- and goes on after the last one it took: an index in that order lets each
-- claim start where the last one stopped. Starting from the front each time
-- would step over the entries of every message already taken, which a
-- scan can only skip cheaply once no open snapshot might still see them
-- (a backup or a long report holds one for minutes).
DROP INDEX push_outbox_due_idx;
CREATE INDEX push_outbox_due_idx ON push_outbox ((NOT urgent), next_attempt_at, id) WHERE status = 'PENDING';
