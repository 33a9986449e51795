-- Core schema: members and their sessions, job actions, picket lines,
-- captains, shifts, sign-ups and announcements.

-- btree_gist lets the sign-up exclusion constraint combine member equality
-- with time-range overlap in one index.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE members (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email       text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    phone       text CHECK (length(phone) BETWEEN 1 AND 40),
    role        text NOT NULL DEFAULT 'MEMBER' CHECK (role IN ('MEMBER', 'COORDINATOR', 'ADMIN')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT members_email_key UNIQUE (email)
);

-- Login codes are stored as a keyed hash, never in clear.
CREATE TABLE login_codes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id   uuid NOT NULL REFERENCES members ON DELETE CASCADE,
    code_hash   bytea NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    int NOT NULL DEFAULT 0,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_codes_member_idx ON login_codes (member_id, created_at DESC);

CREATE TABLE sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    member_id   uuid NOT NULL REFERENCES members ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX sessions_member_idx ON sessions (member_id);

-- Refresh tokens are opaque; only their SHA-256 is kept. A token is used once:
-- used_at marks it rotated, and presenting it again revokes its session.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Fixed-window counters shared by every replica.
CREATE TABLE rate_limits (
    key           text NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          int NOT NULL,
    PRIMARY KEY (key, window_start)
);

CREATE TABLE job_actions (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind                   text NOT NULL CHECK (kind IN ('STRIKE', 'LOCKOUT')),
    employer               text NOT NULL CHECK (length(employer) BETWEEN 1 AND 200),
    starts_at              timestamptz NOT NULL,
    cancel_cutoff_minutes  int NOT NULL DEFAULT 120 CHECK (cancel_cutoff_minutes BETWEEN 0 AND 10080),
    ended_at               timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE picket_lines (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_action_id    uuid NOT NULL REFERENCES job_actions,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address          text NOT NULL CHECK (length(address) BETWEEN 1 AND 500),
    latitude         double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude        double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    geofence_meters  int NOT NULL DEFAULT 150 CHECK (geofence_meters BETWEEN 10 AND 10000),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX picket_lines_job_action_idx ON picket_lines (job_action_id);

CREATE TABLE captains (
    picket_line_id  uuid NOT NULL REFERENCES picket_lines,
    member_id       uuid NOT NULL REFERENCES members ON DELETE CASCADE,
    assigned_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (picket_line_id, member_id)
);
CREATE INDEX captains_member_idx ON captains (member_id);

-- signed_up_count and waitlist_count are maintained by the sign-up use-cases
-- under the shift's row lock; the CHECK is the last line of defence for capacity.
CREATE TABLE shifts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    picket_line_id   uuid NOT NULL REFERENCES picket_lines,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    capacity         int NOT NULL CHECK (capacity BETWEEN 1 AND 10000),
    signed_up_count  int NOT NULL DEFAULT 0 CHECK (signed_up_count >= 0),
    waitlist_count   int NOT NULL DEFAULT 0 CHECK (waitlist_count >= 0),
    cancelled_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shifts_time_order CHECK (ends_at > starts_at),
    CONSTRAINT shifts_max_length CHECK (ends_at - starts_at <= interval '24 hours'),
    CONSTRAINT shifts_capacity_respected CHECK (signed_up_count <= capacity)
);
CREATE INDEX shifts_line_start_idx ON shifts (picket_line_id, starts_at);
-- openShifts scans upcoming shifts with room in start order.
CREATE INDEX shifts_open_idx ON shifts (starts_at, id)
    WHERE cancelled_at IS NULL AND signed_up_count < capacity;

-- A sign-up copies its shift's period so the database itself can refuse
-- overlapping active sign-ups of one member (signups_no_overlap).
CREATE TABLE signups (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    shift_id         uuid NOT NULL REFERENCES shifts,
    member_id        uuid NOT NULL REFERENCES members,
    status           text NOT NULL CHECK (status IN ('SIGNED_UP', 'WAITLISTED', 'CANCELLED', 'CHECKED_IN', 'COMPLETED', 'NO_SHOW')),
    period           tstzrange NOT NULL,
    -- Orders the waitlist: first come, first served.
    waitlist_seq     bigint,
    idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    cancelled_at     timestamptz,
    CONSTRAINT signups_waitlist_seq CHECK ((status = 'WAITLISTED') = (waitlist_seq IS NOT NULL)),
    CONSTRAINT signups_no_overlap EXCLUDE USING gist (member_id WITH =, period WITH &&)
        WHERE (status IN ('SIGNED_UP', 'WAITLISTED', 'CHECKED_IN'))
);
CREATE UNIQUE INDEX signups_one_active_per_shift ON signups (shift_id, member_id)
    WHERE status IN ('SIGNED_UP', 'WAITLISTED', 'CHECKED_IN');
CREATE UNIQUE INDEX signups_idempotency_key ON signups (member_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX signups_member_period_idx ON signups (member_id, lower(period));
CREATE INDEX signups_waitlist_idx ON signups (shift_id, waitlist_seq) WHERE status = 'WAITLISTED';
CREATE INDEX signups_shift_idx ON signups (shift_id);

CREATE SEQUENCE signups_waitlist_seq_seq;

CREATE TABLE announcements (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    picket_line_id  uuid REFERENCES picket_lines,
    job_action_id   uuid REFERENCES job_actions,
    author_id       uuid NOT NULL REFERENCES members,
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    urgent          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT announcements_one_target CHECK ((picket_line_id IS NULL) <> (job_action_id IS NULL))
);
CREATE INDEX announcements_line_idx ON announcements (picket_line_id, created_at DESC) WHERE picket_line_id IS NOT NULL;
CREATE INDEX announcements_job_action_idx ON announcements (job_action_id, created_at DESC) WHERE job_action_id IS NOT NULL;
