-- The websockets of members, authenticated and open on some replica: the
-- count behind the cap on connections per member, shared by every replica.
-- A replica refreshes seen_at of its open connections every
-- ConnectionRefreshInterval; a row not refreshed for ConnectionStaleAfter
-- belongs to a replica that died without saying so, and neither counts nor
-- stays (the purge deletes it). A new table only: replicas of the previous
-- release never see it.
--
-- Unlogged: a row is written when a socket opens and deleted when it
-- closes, and none of it need outlive the sockets. Without WAL, opening one
-- waits for no disk flush. A crash or a failover of the database empties
-- the table, which lets members open up to their cap again beside the
-- sockets they hold until those reconnect; no foreign key either, since
-- checking one locks the member's row, which is written to the WAL. A
-- member's rows go with their sockets, whether or not the member still is.
CREATE UNLOGGED TABLE ws_connections (
    -- Random rather than from a sequence: an unlogged table's sequence
    -- starts again after a crash, and replicas still holding the ids they
    -- had would then refresh and delete other sockets' rows.
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    member_id  uuid NOT NULL,
    -- The process holding the socket, named afresh at every start.
    replica    uuid NOT NULL,
    opened_at  timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);
CREATE INDEX ws_connections_member_idx ON ws_connections (member_id, seen_at);
CREATE INDEX ws_connections_replica_idx ON ws_connections (replica);
CREATE INDEX ws_connections_seen_idx ON ws_connections (seen_at);
