-- The websockets of members, authenticated and open on some replica: the
-- count behind the cap on connections per member, shared by every replica.
-- A replica refreshes seen_at of its open connections every
-- ConnectionRefreshInterval; a row not refreshed for ConnectionStaleAfter
-- belongs to a replica that died without saying so, and neither counts nor
-- stays (the purge deletes it). A new table only: replicas of the previous
-- release never see it.
CREATE TABLE ws_connections (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id  uuid NOT NULL REFERENCES members ON DELETE CASCADE,
    -- The process holding the socket, named afresh at every start.
    replica    uuid NOT NULL,
    opened_at  timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);
CREATE INDEX ws_connections_member_idx ON ws_connections (member_id, seen_at);
CREATE INDEX ws_connections_replica_idx ON ws_connections (replica);
CREATE INDEX ws_connections_seen_idx ON ws_connections (seen_at);
