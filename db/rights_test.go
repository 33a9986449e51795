package db_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// rightsNotifier records what the store says about rights and sessions.
type rightsNotifier struct {
	db.NoNotifier
	mu       sync.Mutex
	rights   []string
	sessions []string
}

func (n *rightsNotifier) RightsChanged(ids ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rights = append(n.rights, ids...)
}

func (n *rightsNotifier) SessionsEnded(ids ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sessions = append(n.sessions, ids...)
}

// take returns what was told since the last take.
func (n *rightsNotifier) take() (rights, sessions []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rights, sessions = n.rights, n.sessions
	n.rights, n.sessions = nil, nil
	return rights, sessions
}

// sessionActor is m on a real session, as the websocket layer holds it.
func sessionActor(b *dbtest.Bundle, m *db.Member) db.Actor {
	a := b.Actor(m)
	a.SessionID = b.Session(m.ID).ID
	return a
}

func watch(a db.Actor, lineID string) db.Watch {
	return db.Watch{SessionID: a.SessionID, MemberID: a.MemberID, LineID: lineID}
}

func standing(t *testing.T, b *dbtest.Bundle, w db.Watch) db.Standing {
	t.Helper()
	got, err := b.Store.Standings(b.Ctx, db.System, []db.Watch{w})
	if err != nil {
		t.Fatalf("standings: %v", err)
	}
	return got[0]
}

func TestStandingsFollowTheRightsHeldNow(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	sh := b.Shift(5)
	line := sh.PicketLineID
	n := &rightsNotifier{}
	b.Store.SetNotifier(n)

	t.Run("a sign-up lets its member follow the line until it is cancelled", func(t *testing.T) {
		m := sessionActor(b, b.Member(db.RoleMember))
		if got := standing(t, b, watch(m, line)); got.MayFollowLine {
			t.Fatalf("before signing up: %+v, want the line refused", got)
		}
		su := b.SignUp(m, sh)
		n.take()
		want := db.Standing{Live: true, Role: db.RoleMember, MayFollowLine: true}
		if diff := cmp.Diff(want, standing(t, b, watch(m, line))); diff != "" {
			t.Fatalf("signed up (-want +got):\n%s", diff)
		}
		if _, err := b.Store.CancelSignup(b.Ctx, m, su.ID); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		if rights, _ := n.take(); !cmp.Equal(rights, []string{m.MemberID}) {
			t.Errorf("told of rights changed for %v, want the member's", rights)
		}
		want.MayFollowLine = false
		if diff := cmp.Diff(want, standing(t, b, watch(m, line))); diff != "" {
			t.Errorf("after cancelling (-want +got):\n%s", diff)
		}
	})
	t.Run("a cancelled shift takes its members' right with it", func(t *testing.T) {
		other := b.ShiftOn(b.Line(), 48*time.Hour, 3)
		m1, m2 := sessionActor(b, b.Member(db.RoleMember)), sessionActor(b, b.Member(db.RoleMember))
		b.SignUp(m1, other)
		b.SignUp(m2, other)
		n.take()
		if _, err := b.Store.CancelShift(b.Ctx, b.Staff, other.ID); err != nil {
			t.Fatalf("cancel shift: %v", err)
		}
		rights, _ := n.take()
		if diff := cmp.Diff([]string{m1.MemberID, m2.MemberID}, rights, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("told of rights changed (-want +got):\n%s", diff)
		}
		for _, m := range []db.Actor{m1, m2} {
			if standing(t, b, watch(m, other.PicketLineID)).MayFollowLine {
				t.Errorf("member %s still follows the cancelled shift's line", m.MemberID)
			}
		}
	})
	t.Run("a captaincy lets its member follow the line until it is removed", func(t *testing.T) {
		m := sessionActor(b, b.Member(db.RoleMember))
		other := b.Line()
		b.MakeCaptain(m, other)
		if !standing(t, b, watch(m, other.ID)).MayFollowLine {
			t.Fatal("a captain may not follow their line")
		}
		n.take()
		if _, err := b.Store.RemoveCaptain(b.Ctx, b.Staff, other.ID, m.MemberID); err != nil {
			t.Fatalf("remove captain: %v", err)
		}
		if rights, _ := n.take(); !cmp.Equal(rights, []string{m.MemberID}) {
			t.Errorf("told of rights changed for %v, want the captain's", rights)
		}
		if standing(t, b, watch(m, other.ID)).MayFollowLine {
			t.Error("a removed captain still follows the line")
		}
	})
	t.Run("coordinators follow every line, until demoted", func(t *testing.T) {
		admin := sessionActor(b, b.Member(db.RoleAdmin))
		c := sessionActor(b, b.Member(db.RoleCoordinator))
		want := db.Standing{Live: true, Role: db.RoleCoordinator, MayFollowLine: true}
		if diff := cmp.Diff(want, standing(t, b, watch(c, line))); diff != "" {
			t.Fatalf("coordinator (-want +got):\n%s", diff)
		}
		n.take()
		if _, err := b.Store.SetMemberRole(b.Ctx, admin, c.MemberID, db.RoleMember); err != nil {
			t.Fatalf("set role: %v", err)
		}
		if rights, _ := n.take(); !cmp.Equal(rights, []string{c.MemberID}) {
			t.Errorf("told of rights changed for %v, want the demoted member's", rights)
		}
		want = db.Standing{Live: true, Role: db.RoleMember}
		if diff := cmp.Diff(want, standing(t, b, watch(c, line))); diff != "" {
			t.Errorf("demoted (-want +got):\n%s", diff)
		}
		got, err := b.Store.SessionActor(b.Ctx, db.System, c.SessionID, c.MemberID)
		if err != nil || got.Role != db.RoleMember {
			t.Errorf("the session's actor after demotion: %+v, %v", got, err)
		}
	})
	t.Run("a session that ended stands no more", func(t *testing.T) {
		m := sessionActor(b, b.Member(db.RoleCoordinator))
		n.take()
		if err := b.Store.Logout(b.Ctx, m); err != nil {
			t.Fatalf("logout: %v", err)
		}
		if _, sessions := n.take(); !cmp.Equal(sessions, []string{m.SessionID}) {
			t.Errorf("told of sessions ended %v, want the one logged out", sessions)
		}
		if diff := cmp.Diff(db.Standing{}, standing(t, b, watch(m, line))); diff != "" {
			t.Errorf("logged out (-want +got):\n%s", diff)
		}
	})
	t.Run("a refresh token used twice ends its session", func(t *testing.T) {
		m := b.Member(db.RoleMember)
		sess := b.Session(m.ID)
		if _, err := b.Store.RefreshSession(b.Ctx, sess.RefreshToken); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		n.take()
		_, err := b.Store.RefreshSession(b.Ctx, sess.RefreshToken)
		dbtest.WantCode(t, err, db.CodeUnauthenticated)
		if _, sessions := n.take(); !cmp.Equal(sessions, []string{sess.ID}) {
			t.Errorf("told of sessions ended %v, want the reused one's", sessions)
		}
		if standing(t, b, db.Watch{SessionID: sess.ID, MemberID: m.ID}).Live {
			t.Error("the session still stands after its refresh token was reused")
		}
	})
	t.Run("an expired session stands no more", func(t *testing.T) {
		sb := dbtest.Setup(t)
		m := sessionActor(sb, sb.Member(db.RoleMember))
		if !standing(t, sb, watch(m, "")).Live {
			t.Fatal("a new session does not stand")
		}
		sb.Clock.Advance(db.SessionTTL)
		if standing(t, sb, watch(m, "")).Live {
			t.Error("the session stands after it expired")
		}
	})
	t.Run("a refused change tells nobody", func(t *testing.T) {
		m := sessionActor(b, b.Member(db.RoleMember))
		su := b.SignUp(m, sh)
		stranger := b.NewMember()
		n.take()
		_, err := b.Store.CancelSignup(b.Ctx, stranger, su.ID)
		dbtest.WantCode(t, err, db.CodeForbidden)
		if rights, sessions := n.take(); rights != nil || sessions != nil {
			t.Errorf("told %v and %v of a refused cancellation", rights, sessions)
		}
	})
}

func TestStandingsAnswerInOrderForMany(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	sh := b.Shift(100)
	var watches []db.Watch
	var want []db.Standing
	for i := range 60 {
		m := sessionActor(b, b.Member(db.RoleMember))
		switch i % 3 {
		case 0:
			b.SignUp(m, sh)
			want = append(want, db.Standing{Live: true, Role: db.RoleMember, MayFollowLine: true})
		case 1:
			want = append(want, db.Standing{Live: true, Role: db.RoleMember})
		case 2:
			// Someone else's session under this member's id.
			m.SessionID = b.Session(b.Member(db.RoleMember).ID).ID
			want = append(want, db.Standing{})
		}
		watches = append(watches, watch(m, sh.PicketLineID))
	}
	watches = append(watches, db.Watch{SessionID: "not an id", MemberID: "nor this", LineID: "nor this"})
	want = append(want, db.Standing{})
	got, err := b.Store.Standings(b.Ctx, db.System, watches)
	if err != nil {
		t.Fatalf("standings: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("standings (-want +got):\n%s", diff)
	}
}

func TestSetMemberRole(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	admin := b.Actor(b.Member(db.RoleAdmin))
	m := b.Member(db.RoleMember)
	for _, who := range []struct {
		name  string
		actor db.Actor
	}{
		{"a member", b.NewMember()},
		{"a captain", b.CaptainOf(b.Line())},
		{"a coordinator", b.Staff},
		{"the system", db.System},
	} {
		_, err := b.Store.SetMemberRole(b.Ctx, who.actor, m.ID, db.RoleAdmin)
		if code := db.ErrorCode(err); code != db.CodeForbidden && code != db.CodeUnauthenticated {
			t.Errorf("%s promoted a member: %v", who.name, err)
		}
	}
	_, err := b.Store.SetMemberRole(b.Ctx, admin, admin.MemberID, db.RoleMember)
	dbtest.WantCode(t, err, db.CodeForbidden)
	_, err = b.Store.SetMemberRole(b.Ctx, admin, m.ID, db.RoleSystem)
	if de := dbtest.WantCode(t, err, db.CodeBadUserInput); de.Field != "role" {
		t.Errorf("bad role answered for field %q", de.Field)
	}
	_, err = b.Store.SetMemberRole(b.Ctx, admin, "2b8c1f3e-0000-4000-8000-000000000000", db.RoleCoordinator)
	dbtest.WantCode(t, err, db.CodeNotFound)
	got, err := b.Store.SetMemberRole(b.Ctx, admin, m.ID, db.RoleCoordinator)
	if err != nil || got.Role != db.RoleCoordinator || got.ID != m.ID {
		t.Fatalf("promote: %+v, %v", got, err)
	}
	got, err = b.Store.SetMemberRoleByEmail(b.Ctx, db.System, " "+m.Email+" ", db.RoleMember)
	if err != nil || got.Role != db.RoleMember {
		t.Fatalf("demote by email: %+v, %v", got, err)
	}
	_, err = b.Store.SetMemberRoleByEmail(b.Ctx, db.System, "nobody@example.org", db.RoleMember)
	dbtest.WantCode(t, err, db.CodeNotFound)
}

func TestRightsChangedSinceFindsRevokedSessionsAndChangedRoles(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	admin := b.Actor(b.Member(db.RoleAdmin))
	before := sessionActor(b, b.Member(db.RoleMember))
	if err := b.Store.Logout(b.Ctx, before); err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(time.Minute)
	since := b.Clock.Now()
	out := sessionActor(b, b.Member(db.RoleMember))
	if err := b.Store.Logout(b.Ctx, out); err != nil {
		t.Fatal(err)
	}
	demoted := b.Member(db.RoleCoordinator)
	if _, err := b.Store.SetMemberRole(b.Ctx, admin, demoted.ID, db.RoleMember); err != nil {
		t.Fatal(err)
	}
	sessionActor(b, b.Member(db.RoleMember)) // live, unchanged
	sessions, members, err := b.Store.RightsChangedSince(b.Ctx, db.System, since)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{out.SessionID}, sessions); diff != "" {
		t.Errorf("sessions revoked since (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{demoted.ID}, members); diff != "" {
		t.Errorf("roles changed since (-want +got):\n%s", diff)
	}
}
