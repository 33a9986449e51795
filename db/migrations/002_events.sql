-- Event logs for live updates. A line's events are numbered by a counter on
-- the line row: the writer holds that row locked until it commits, so a
-- line's events become visible strictly in sequence order and a reader that
-- resumes after sequence n can never miss an earlier one.
ALTER TABLE picket_lines ADD COLUMN event_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE line_events (
    picket_line_id   uuid NOT NULL REFERENCES picket_lines,
    seq              bigint NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('SIGNUP_CHANGED', 'SHIFT_FILLED', 'SPOT_OPENED', 'SHIFT_CREATED',
                                                    'SHIFT_CHANGED', 'SHIFT_CANCELLED', 'ANNOUNCEMENT', 'CAPTAIN_CHANGED')),
    shift_id         uuid REFERENCES shifts,
    announcement_id  uuid REFERENCES announcements,
    occurred_at      timestamptz NOT NULL,
    PRIMARY KEY (picket_line_id, seq)
);
CREATE INDEX line_events_occurred_idx ON line_events (occurred_at);

-- What concerns one member personally, numbered per member the same way.
CREATE TABLE member_event_seqs (
    member_id  uuid PRIMARY KEY REFERENCES members ON DELETE CASCADE,
    seq        bigint NOT NULL
);

CREATE TABLE member_events (
    member_id        uuid NOT NULL REFERENCES members ON DELETE CASCADE,
    seq              bigint NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('WAITLIST_PROMOTED', 'SHIFT_CHANGED', 'SHIFT_CANCELLED', 'URGENT_ANNOUNCEMENT')),
    shift_id         uuid REFERENCES shifts,
    signup_id        uuid REFERENCES signups,
    announcement_id  uuid REFERENCES announcements,
    occurred_at      timestamptz NOT NULL,
    PRIMARY KEY (member_id, seq)
);
CREATE INDEX member_events_occurred_idx ON member_events (occurred_at);
