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

// RoleSystem is the role of System. No member holds it, Role.Valid refuses
// it, and no token can carry it.
const RoleSystem Role = "SYSTEM"

// System is the actor of the process itself, for work no member asks for:
// the commands an operator runs (adding members, minting tokens), turning a
// token's session into an actor, and the background jobs (the realtime hub's
// reads, push claims, reminders, purges). Use-cases for members refuse it;
// the ones it runs refuse everyone else.
var System = Actor{Role: RoleSystem}

func (a Actor) requireSystem() error {
	if a.Role != RoleSystem || a.MemberID != "" {
		return errForbidden("only the system can do this")
	}
	return nil
}
