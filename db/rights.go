package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// A Watch is an open subscription's claim: a session following its member's
// own events, or, with LineID set, a line's events as well.
type Watch struct {
	SessionID string
	MemberID  string
	LineID    string
}

// Standing is what a watch may still do, as the database says now.
type Standing struct {
	// Live is false once the session was revoked or has expired.
	Live bool
	// Role is the member's role now.
	Role Role
	// MayFollowLine says whether the member may still follow the watch's
	// line: the rule of WatchLine.
	MayFollowLine bool
}

// takesPartSQL is the rule of who may follow a line and see its address,
// besides coordinators: its captains and the members holding a sign-up on it.
// The query it is written into names the member watch_member and the line
// watch_line.
const takesPartSQL = `(
    EXISTS (SELECT 1 FROM captains c WHERE c.picket_line_id = watch_line AND c.member_id = watch_member)
    OR EXISTS (
        SELECT 1 FROM signups su JOIN shifts sh ON sh.id = su.shift_id
        WHERE su.member_id = watch_member AND sh.picket_line_id = watch_line AND su.status <> 'CANCELLED'))`

const standingsSQL = `
SELECT w.i, m.role, w.watch_line IS NOT NULL AND ` + takesPartSQL + `
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) WITH ORDINALITY AS w(session_id, watch_member, watch_line, i)
JOIN sessions s ON s.id = w.session_id AND s.member_id = w.watch_member
JOIN members m ON m.id = w.watch_member
WHERE s.revoked_at IS NULL AND s.expires_at > $4`

// Standings checks open subscriptions against the rights their members hold
// now, all in one query: the realtime hub asks it when it hears that rights
// changed, and now and then in case it missed hearing it. The answer is in
// the order of watches. System only.
func (s *Store) Standings(ctx context.Context, actor Actor, watches []Watch) (_ []Standing, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "Standings")
	out := make([]Standing, len(watches))
	sessions := make([]*string, len(watches))
	members := make([]*string, len(watches))
	lines := make([]*string, len(watches))
	for i := range watches {
		w := &watches[i]
		// A malformed id names no session or line: the watch is dead, or
		// follows nothing.
		if validID(w.SessionID) && validID(w.MemberID) {
			sessions[i], members[i] = &w.SessionID, &w.MemberID
		}
		if validID(w.LineID) {
			lines[i] = &w.LineID
		}
	}
	rows, err := s.pool.Query(ctx, standingsSQL, sessions, members, lines, s.clock.Now())
	if err != nil {
		return nil, err
	}
	var (
		i    int
		role Role
		part bool
	)
	_, err = pgx.ForEachRow(rows, []any{&i, &role, &part}, func() error {
		st := &out[i-1]
		st.Live, st.Role = true, role
		st.MayFollowLine = watches[i-1].LineID != "" && (part || Actor{Role: role}.Coordinator())
		return nil
	})
	return out, err
}

const setRoleSQL = `UPDATE members SET role = $2, role_changed_at = $3 WHERE id = $1 RETURNING ` + memberColumns

// SetMemberRole gives a member another role. Admins only, and not their own:
// an admin who demoted themselves by mistake could not undo it. Every open
// socket of the member hears of it: subscriptions the old role allowed and
// the new one does not end, and the socket's next operations run with the
// new role.
func (s *Store) SetMemberRole(ctx context.Context, actor Actor, memberID string, role Role) (m *Member, err error) {
	defer wrap(&err, "SetMemberRole(%s)", memberID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if actor.Role != RoleAdmin {
		return nil, errForbidden("only admins can change roles")
	}
	if memberID == actor.MemberID {
		return nil, errForbidden("admins cannot change their own role; ask another admin")
	}
	if !validID(memberID) {
		return nil, errNotFound("member")
	}
	return s.setRole(ctx, memberID, role)
}

// SetMemberRoleByEmail gives the member with email another role, for the
// operator's command line. System only.
func (s *Store) SetMemberRoleByEmail(ctx context.Context, actor Actor, email string, role Role) (m *Member, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "SetMemberRoleByEmail")
	if email, err = NormalizeEmail("email", email); err != nil {
		return nil, err
	}
	m, err = scanMember(s.pool.QueryRow(ctx, memberByEmailSQL, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("member")
	}
	if err != nil {
		return nil, err
	}
	return s.setRole(ctx, m.ID, role)
}

func (s *Store) setRole(ctx context.Context, memberID string, role Role) (m *Member, err error) {
	if !role.Valid() {
		return nil, errInput("role", "must be member, coordinator or admin")
	}
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		m, err = scanMember(tx.QueryRow(ctx, setRoleSQL, memberID, role, s.clock.Now()))
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound("member")
		}
		c.rights = append(c.rights, memberID)
		return err
	})
	return m, err
}

const changesSinceSQL = `
SELECT id::text, true FROM sessions WHERE revoked_at >= $1
UNION ALL
SELECT id::text, false FROM members WHERE role_changed_at >= $1`

// RightsChangedSince lists the sessions revoked and the members whose role
// changed at or after since: a replica that missed hearing of some (a
// NOTIFY lost with a replica that crashed after its commit) finds them so.
// A change stamped before since but committed after it is missed: callers
// look back further than their last look. System only.
func (s *Store) RightsChangedSince(ctx context.Context, actor Actor, since time.Time) (sessions, members []string, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, nil, err
	}
	defer wrap(&err, "RightsChangedSince")
	rows, err := s.pool.Query(ctx, changesSinceSQL, since)
	if err != nil {
		return nil, nil, err
	}
	var (
		id      string
		session bool
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &session}, func() error {
		if session {
			sessions = append(sessions, id)
		} else {
			members = append(members, id)
		}
		return nil
	})
	return sessions, members, err
}
