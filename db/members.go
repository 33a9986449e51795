package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Member is a person in the union. Email and Phone are the stored values;
// callers decide who may see them with ContactVisibility.
type Member struct {
	ID        string
	Name      string
	Email     string
	Phone     *string
	Role      Role
	CreatedAt time.Time
}

// NewMember is what an operator gives to add a member.
type NewMember struct {
	Name  string
	Email string
	Phone string
	Role  Role
}

const memberColumns = `id, name, email, phone, role, created_at`

func scanMember(row pgx.Row) (*Member, error) {
	var m Member
	if err := row.Scan(&m.ID, &m.Name, &m.Email, &m.Phone, &m.Role, &m.CreatedAt); err != nil {
		return nil, err
	}
	return &m, nil
}

const insertMemberSQL = `
INSERT INTO members (name, email, phone, role)
VALUES ($1, $2, NULLIF($3, ''), $4)
RETURNING ` + memberColumns

// AddMember creates a member. System only: it is an operator's command (the
// CLI and the demo loader), which no member asks for.
func (s *Store) AddMember(ctx context.Context, actor Actor, in NewMember) (m *Member, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "AddMember")
	if in.Role == "" {
		in.Role = RoleMember
	}
	if !in.Role.Valid() {
		return nil, errInput("role", "must be member, coordinator or admin")
	}
	if in.Name, err = normalizeName("name", in.Name); err != nil {
		return nil, err
	}
	if in.Email, err = NormalizeEmail("email", in.Email); err != nil {
		return nil, err
	}
	if in.Phone, err = normalizePhone("phone", in.Phone); err != nil {
		return nil, err
	}
	m, err = scanMember(s.pool.QueryRow(ctx, insertMemberSQL, in.Name, in.Email, in.Phone, in.Role))
	return m, mapError(err, insertMemberSQL)
}

const memberByEmailSQL = `SELECT ` + memberColumns + ` FROM members WHERE email = $1`

// MemberByEmail finds a member for operator commands. System only.
func (s *Store) MemberByEmail(ctx context.Context, actor Actor, email string) (m *Member, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "MemberByEmail")
	email, err = NormalizeEmail("email", email)
	if err != nil {
		return nil, err
	}
	m, err = scanMember(s.pool.QueryRow(ctx, memberByEmailSQL, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("member")
	}
	return m, err
}

const memberByIDSQL = `SELECT ` + memberColumns + ` FROM members WHERE id = $1`

// Me returns the calling member.
func (s *Store) Me(ctx context.Context, actor Actor) (m *Member, err error) {
	defer wrap(&err, "Me")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	m, err = scanMember(s.pool.QueryRow(ctx, memberByIDSQL, actor.MemberID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errUnauthenticated()
	}
	return m, err
}

const membersByIDsSQL = `SELECT ` + memberColumns + ` FROM members WHERE id = ANY($1)`

// MembersByIDs loads members by id, for the dataloader. Members are only
// reachable through objects the actor may see, and their contact details are
// filtered separately by ContactVisibility.
func (s *Store) MembersByIDs(ctx context.Context, actor Actor, ids []string) (_ map[string]*Member, err error) {
	defer wrap(&err, "MembersByIDs")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	return loadByIDs(ctx, s.pool, membersByIDsSQL, ids, scanMember, func(m *Member) string { return m.ID })
}

// ContactVisibility says which contact details of one member an actor may see.
type ContactVisibility struct {
	Email bool
	Phone bool
}

// Members whose phone a captain may see: those holding an active sign-up on a
// line the captain captains.
const phoneVisibleToCaptainSQL = `
SELECT DISTINCT s.member_id
FROM signups s
JOIN shifts sh ON sh.id = s.shift_id
JOIN captains c ON c.picket_line_id = sh.picket_line_id AND c.member_id = $1
WHERE s.member_id = ANY($2) AND s.status IN ` + activeStatuses

// ContactVisibilities tells, for each member id, which contact details the
// actor may see: their own always; coordinators everything; captains the
// phone of members signed up on their lines; nobody else anything.
func (s *Store) ContactVisibilities(ctx context.Context, actor Actor, ids []string) (_ map[string]ContactVisibility, err error) {
	defer wrap(&err, "ContactVisibilities")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	out := make(map[string]ContactVisibility, len(ids))
	if actor.Coordinator() {
		for _, id := range ids {
			out[id] = ContactVisibility{Email: true, Phone: true}
		}
		return out, nil
	}
	var others []string
	for _, id := range ids {
		if id == actor.MemberID {
			out[id] = ContactVisibility{Email: true, Phone: true}
		} else {
			out[id] = ContactVisibility{}
			others = append(others, id)
		}
	}
	if len(others) == 0 {
		return out, nil
	}
	visible, err := queryStrings(ctx, s.pool, phoneVisibleToCaptainSQL, actor.MemberID, validIDs(others))
	if err != nil {
		return nil, err
	}
	for _, id := range visible {
		out[id] = ContactVisibility{Phone: true}
	}
	return out, nil
}

// ContactUpdate changes a member's own contact details; nil fields stay.
type ContactUpdate struct {
	Name  *string
	Email *string
	Phone *string
}

const updateContactSQL = `
UPDATE members SET
    name  = COALESCE($2, name),
    email = COALESCE($3, email),
    phone = CASE WHEN $4::text IS NULL THEN phone ELSE NULLIF($4, '') END
WHERE id = $1
RETURNING ` + memberColumns

// UpdateMyContact changes the caller's own name, email or phone.
func (s *Store) UpdateMyContact(ctx context.Context, actor Actor, in ContactUpdate) (m *Member, err error) {
	defer wrap(&err, "UpdateMyContact")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	if in.Name != nil {
		n, err := normalizeName("name", *in.Name)
		if err != nil {
			return nil, err
		}
		in.Name = &n
	}
	if in.Email != nil {
		e, err := NormalizeEmail("email", *in.Email)
		if err != nil {
			return nil, err
		}
		in.Email = &e
	}
	if in.Phone != nil {
		p, err := normalizePhone("phone", *in.Phone)
		if err != nil {
			return nil, err
		}
		in.Phone = &p
	}
	m, err = scanMember(s.pool.QueryRow(ctx, updateContactSQL, actor.MemberID, in.Name, in.Email, in.Phone))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errUnauthenticated()
	}
	return m, mapError(err, updateContactSQL)
}
