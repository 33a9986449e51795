-- Mutations per member per minute, summed across replicas: each replica
-- counts in memory and adds what it admitted here about once a second
-- (see db/memberlimit.go), so the limit costs no round trip per mutation.
-- No reference to members: a flush must not fail for a member deleted
-- meanwhile, and the purge deletes a window minutes after it ends. A new
-- table only: replicas of the previous release never see it and go on as
-- before during a rolling upgrade.
CREATE TABLE member_mutations (
    member_id     uuid NOT NULL,
    window_start  timestamptz NOT NULL,
    mutations     int NOT NULL,
    PRIMARY KEY (member_id, window_start)
);
