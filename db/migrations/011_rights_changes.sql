-- Replicas look for the sessions revoked and the roles changed since their
-- last look, a few rows, rather than check every open socket: these
-- indexes hold only the rows that changed.
ALTER TABLE members ADD COLUMN role_changed_at timestamptz;
CREATE INDEX members_role_changed_idx ON members (role_changed_at) WHERE role_changed_at IS NOT NULL;
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
