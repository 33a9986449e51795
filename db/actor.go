package db

// Role is what a member may do beyond taking shifts.
type Role string

// The roles.
const (
	RoleMember      Role = "MEMBER"
	RoleCoordinator Role = "COORDINATOR"
	RoleAdmin       Role = "ADMIN"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleMember, RoleCoordinator, RoleAdmin:
		return true
	}
	return false
}

// Actor is the caller of a use-case. The zero Actor is anonymous.
type Actor struct {
	MemberID  string
	SessionID string
	Role      Role
}

// Authenticated reports whether the actor is a signed-in member.
func (a Actor) Authenticated() bool { return a.MemberID != "" }

// Coordinator reports whether the actor is union staff (coordinators and admins).
func (a Actor) Coordinator() bool { return a.Role == RoleCoordinator || a.Role == RoleAdmin }

func (a Actor) requireMember() error {
	if !a.Authenticated() {
		return errUnauthenticated()
	}
	return nil
}

func (a Actor) requireCoordinator() error {
	if err := a.requireMember(); err != nil {
		return err
	}
	if !a.Coordinator() {
		return errForbidden("only coordinators can do this")
	}
	return nil
}
