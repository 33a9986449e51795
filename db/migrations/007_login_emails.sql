-- Login codes by email: an outbox the mail worker drains after the
-- requesting transaction commits, so a code asked for is emailed even when
-- the server restarts before it could send. A new table only: replicas of
-- the previous release never see it and go on as before during a rolling
-- upgrade.
CREATE TABLE login_emails (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Only the member: the address is read from members when the email is
    -- sent, so no copy of it sits here.
    member_id        uuid NOT NULL REFERENCES members ON DELETE CASCADE,
    -- The code, sealed (AES-GCM) under a key derived from the server's
    -- secret, bound to the member: the worker needs it in clear to send it,
    -- a copy of the database alone must not give it away. Gone once the row
    -- is final, which the check below holds the database to.
    sealed_code      bytea,
    -- PENDING waits for next_attempt_at; SENDING is claimed by a worker
    -- until next_attempt_at (a crashed worker's rows come back after it);
    -- SENT, FAILED (refused for good, out of attempts, or expired unsent)
    -- and SUPERSEDED (a newer code was asked for first) are final.
    status           text NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'SENDING', 'SENT', 'FAILED', 'SUPERSEDED')),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    -- The code's own expiry: an email that cannot arrive in time is not sent.
    expires_at       timestamptz NOT NULL,
    -- What kind of failure the last attempt met (the SMTP stage and reply
    -- code), never the server's words, which may quote the address.
    last_error       text CHECK (length(last_error) <= 100),
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    CONSTRAINT login_emails_code_only_while_unsent
        CHECK ((status IN ('PENDING', 'SENDING')) = (sealed_code IS NOT NULL))
);
CREATE INDEX login_emails_due_idx ON login_emails (next_attempt_at, id) WHERE status IN ('PENDING', 'SENDING');
CREATE INDEX login_emails_member_idx ON login_emails (member_id);
