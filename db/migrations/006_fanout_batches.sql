-- An urgent announcement's audience, cut into batches when it is posted.
-- Taking the next 1,000 of 50,000 recipients out of one array read the whole
-- array (800 KB, stored out of line) for every batch: a tenth of a second of
-- the database's time each, a third of its work during a big push. Each
-- batch is now a row of its own, which the fan-out deletes in the
-- transaction that tells its members, so a crash neither loses nor repeats
-- one; replicas take different batches of one announcement at once
-- (SKIP LOCKED).
CREATE TABLE announcement_fanout_batches (
    announcement_id  uuid NOT NULL REFERENCES announcements ON DELETE CASCADE,
    batch            int NOT NULL,
    -- In id order, the order member event counters are locked in.
    recipients       uuid[] NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (announcement_id, batch)
);
-- Oldest announcement first, its batches in order.
CREATE INDEX announcement_fanout_batches_order_idx
    ON announcement_fanout_batches (created_at, announcement_id, batch);

-- The members of a fan-out not told yet, as batches.
CREATE FUNCTION announcement_fanout_to_batches(f announcement_fanouts) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO announcement_fanout_batches (announcement_id, batch, recipients, created_at)
    SELECT f.announcement_id, (u.n - 1) / 1000, array_agg(u.member_id ORDER BY u.n), f.created_at
    FROM unnest(f.recipients[f.done + 1 :]) WITH ORDINALITY AS u(member_id, n)
    GROUP BY (u.n - 1) / 1000
$$;

-- Replicas still running the previous release during a rolling upgrade go
-- on writing fan-outs the old way: each becomes batches as it is written.
-- A later migration drops the old table once no such replica can be left.
CREATE FUNCTION announcement_fanouts_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM announcement_fanout_to_batches(NEW);
    DELETE FROM announcement_fanouts WHERE announcement_id = NEW.announcement_id;
    RETURN NULL;
END
$$;

-- A replica of the previous release may be half-way through a batch: it
-- holds the fan-out row locked and advances done when it commits. Waiting
-- for it here makes the move below see that batch as told.
LOCK TABLE announcement_fanouts IN EXCLUSIVE MODE;

SELECT announcement_fanout_to_batches(f) FROM announcement_fanouts f;
DELETE FROM announcement_fanouts;

CREATE TRIGGER announcement_fanouts_moved AFTER INSERT ON announcement_fanouts
    FOR EACH ROW EXECUTE FUNCTION announcement_fanouts_moved();
