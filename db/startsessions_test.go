package db_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestStartSessionsByEmailStartsOneSessionPerEmailInOrder(t *testing.T) {
	b := setup(t)
	ana, ben := b.Member(db.RoleMember), b.Member(db.RoleCoordinator)
	emails := []string{" " + strings.ToUpper(ben.Email), ana.Email, ben.Email}
	sessions, err := b.Store.StartSessionsByEmail(b.Ctx, db.System, emails)
	if err != nil {
		t.Fatal(err)
	}
	var gotMembers []string
	ids := map[string]bool{}
	for _, s := range sessions {
		gotMembers = append(gotMembers, s.Member.ID)
		ids[s.ID] = true
	}
	if diff := cmp.Diff([]string{ben.ID, ana.ID, ben.ID}, gotMembers); diff != "" {
		t.Fatalf("members of the sessions, in the order of the emails (-want +got):\n%s", diff)
	}
	if len(ids) != len(emails) {
		t.Fatalf("%d distinct sessions for %d emails", len(ids), len(emails))
	}
	// Each is a session like StartSession's: live for its member, and
	// renewable with its refresh token.
	for i, s := range sessions {
		actor, err := b.Store.SessionActor(b.Ctx, db.System, s.ID, s.Member.ID)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if diff := cmp.Diff(db.Actor{MemberID: s.Member.ID, SessionID: s.ID, Role: s.Member.Role}, actor); diff != "" {
			t.Errorf("actor of session %d (-want +got):\n%s", i, diff)
		}
		if _, err := b.Store.RefreshSession(b.Ctx, s.RefreshToken); err != nil {
			t.Errorf("refresh session %d: %v", i, err)
		}
	}
}

func TestStartSessionsByEmailWithAnUnknownEmailStartsNone(t *testing.T) {
	b := setup(t)
	ana := b.Member(db.RoleMember)
	_, err := b.Store.StartSessionsByEmail(b.Ctx, db.System, []string{ana.Email, "nobody@example.org"})
	dbtest.WantCode(t, err, db.CodeNotFound)
	if !strings.Contains(err.Error(), "email 2 of 2") {
		t.Errorf("error %q does not say which email", err)
	}
	_, err = b.Store.StartSessionsByEmail(b.Ctx, db.System, []string{ana.Email, "not an email"})
	dbtest.WantCode(t, err, db.CodeBadUserInput)
	var n int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM sessions WHERE member_id = $1`, ana.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d sessions started for a list that failed", n)
	}
}

func TestStartSessionsByEmailIsForTheSystemOnly(t *testing.T) {
	b := setup(t)
	ana := b.Member(db.RoleMember)
	_, err := b.Store.StartSessionsByEmail(b.Ctx, b.Staff, []string{ana.Email})
	dbtest.WantCode(t, err, db.CodeForbidden)
}
