-- Push notifications: members' devices, their preferences, and the outbox
-- the push worker drains.

CREATE TABLE devices (
    token         text PRIMARY KEY CHECK (length(token) BETWEEN 1 AND 4096),
    member_id     uuid NOT NULL REFERENCES members ON DELETE CASCADE,
    -- The session that registered the device: logging out removes it.
    session_id    uuid REFERENCES sessions ON DELETE SET NULL,
    platform      text NOT NULL CHECK (platform IN ('ANDROID', 'IOS', 'WEB')),
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL
);
CREATE INDEX devices_member_idx ON devices (member_id);
CREATE INDEX devices_session_idx ON devices (session_id);
CREATE INDEX devices_last_seen_idx ON devices (last_seen_at);

CREATE TABLE notification_preferences (
    member_id      uuid PRIMARY KEY REFERENCES members ON DELETE CASCADE,
    -- Kinds the member does not want; urgent announcements cannot be muted.
    muted_kinds    text[] NOT NULL DEFAULT '{}',
    -- Quiet hours in the member's time zone, as minutes after midnight;
    -- start = end means none. Only urgent announcements break them.
    quiet_start    int NOT NULL DEFAULT 0 CHECK (quiet_start BETWEEN 0 AND 1439),
    quiet_end      int NOT NULL DEFAULT 0 CHECK (quiet_end BETWEEN 0 AND 1439),
    time_zone      text NOT NULL DEFAULT 'UTC'
);

-- One row per message to one device. event_id is the same for every device
-- of one member hearing of one event; the app drops repeats by it.
CREATE TABLE push_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         uuid NOT NULL,
    member_id        uuid NOT NULL REFERENCES members ON DELETE CASCADE,
    device_token     text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('WAITLIST_PROMOTED', 'SHIFT_REMINDER', 'SHIFT_CHANGED',
                                                    'SHIFT_CANCELLED', 'URGENT_ANNOUNCEMENT', 'COVERAGE_CALL')),
    shift_id         uuid,
    signup_id        uuid,
    announcement_id  uuid,
    -- A coverage call's words from the captain, shown in the notification.
    message          text CHECK (length(message) <= 500),
    urgent           boolean NOT NULL DEFAULT false,
    -- PENDING waits for next_attempt_at; SENDING is claimed by a worker
    -- until claimed_until (a crashed worker's rows come back after it);
    -- SENT, FAILED (refused for good), DEAD (out of attempts) and
    -- CANCELLED (no longer true) are final.
    status           text NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'SENDING', 'SENT', 'FAILED', 'DEAD', 'CANCELLED')),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    claimed_until    timestamptz,
    expires_at       timestamptz NOT NULL,
    last_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    UNIQUE (event_id, device_token)
);
CREATE INDEX push_outbox_due_idx ON push_outbox (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX push_outbox_claimed_idx ON push_outbox (claimed_until) WHERE status = 'SENDING';
CREATE INDEX push_outbox_dead_idx ON push_outbox (created_at) WHERE status IN ('DEAD', 'FAILED');

-- A reminder goes out once per sign-up, lead time and shift start: moving
-- the shift calls for new reminders, cancelling the sign-up for none.
CREATE TABLE shift_reminders (
    signup_id       uuid NOT NULL REFERENCES signups,
    lead_minutes    int NOT NULL,
    shift_starts_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (signup_id, lead_minutes, shift_starts_at)
);

-- The reminder scan looks for shifts starting within the next hours.
CREATE INDEX shifts_starts_idx ON shifts (starts_at);
