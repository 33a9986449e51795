-- Requests for a login code, as requestLoginCode leaves them: every request
-- is one row here, member or not, so that answering one does the same work
-- whoever the email belongs to. The mail worker resolves them after the
-- commit: a member's becomes a login code and a login email, a stranger's
-- is deleted. A new table only: replicas of the previous release never see
-- it and go on making codes themselves during a rolling upgrade.
CREATE TABLE login_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The email as asked for, sealed (AES-GCM) under a key derived from the
    -- server's secret: a copy of the database alone does not say who asked.
    -- No client address: the per-address limit was counted before the row
    -- was written.
    sealed_email  bytea NOT NULL,
    -- When it was asked for: the code's ten minutes run from here.
    requested_at  timestamptz NOT NULL
);
CREATE INDEX login_requests_requested_idx ON login_requests (requested_at);
