package db_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestLoginCodeSignsInOnce(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	code := requestCode(t, b, "  "+m.Email+" ")
	if len(code) != 6 {
		t.Fatalf("login code %q", code)
	}
	sess, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, code, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if sess.Member.ID != m.ID || sess.RefreshToken == "" || sess.ID == "" {
		t.Fatalf("session %+v", sess)
	}
	actor, err := b.Store.SessionActor(b.Ctx, db.System, sess.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if actor.MemberID != m.ID || actor.Role != db.RoleMember {
		t.Fatalf("actor %+v", actor)
	}
	_, err = b.Store.VerifyLoginCode(b.Ctx, m.Email, code, "192.0.2.1")
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
}

func TestLoginCodeIsStoredHashed(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	code := requestCode(t, b, m.Email)
	var stored []byte
	if err := b.Store.Pool().QueryRow(b.Ctx, `SELECT code_hash FROM login_codes WHERE member_id = $1`, m.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(code)) || len(stored) != 32 {
		t.Fatalf("stored code is not a hash: %x", stored)
	}
}

func TestLoginCodeExpiresAfterTenMinutes(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	code := requestCode(t, b, m.Email)
	b.Clock.Advance(10*time.Minute + time.Second)
	_, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, code, "192.0.2.1")
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
}

func TestLoginCodeAllowsFiveAttempts(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	code := requestCode(t, b, m.Email)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for range 5 {
		_, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, wrong, "192.0.2.1")
		dbtest.WantCode(t, err, db.CodeUnauthenticated)
	}
	_, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, code, "192.0.2.1")
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
}

func TestOnlyTheNewestLoginCodeWorks(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	old := requestCode(t, b, m.Email)
	fresh := requestCode(t, b, m.Email)
	if old != fresh {
		_, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, old, "192.0.2.1")
		dbtest.WantCode(t, err, db.CodeUnauthenticated)
	}
	if _, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, fresh, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
}

func TestLoginCodeRequestRevealsNothingForStrangers(t *testing.T) {
	b := setup(t)
	askForCode(t, b, "stranger@example.org", "192.0.2.1")
	var codes, emails, requests int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT (SELECT count(*) FROM login_codes), (SELECT count(*) FROM login_emails), (SELECT count(*) FROM login_requests)`).Scan(&codes, &emails, &requests); err != nil {
		t.Fatal(err)
	}
	if codes != 0 || emails != 0 || requests != 0 {
		t.Fatalf("an email that is no member's made %d codes and %d emails and left %d requests, want none", codes, emails, requests)
	}
}

func TestLoginCodeRequestsAreRateLimited(t *testing.T) {
	b := setup(t)
	for _, email := range []string{b.Member(db.RoleMember).Email, "stranger@example.org"} {
		for i := range db.LoginCodeEmailLimit.Max {
			err := b.Store.RequestLoginCode(b.Ctx, email, "192.0.2.1")
			if err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
		}
		err := b.Store.RequestLoginCode(b.Ctx, email, "192.0.2.1")
		de := dbtest.WantCode(t, err, db.CodeRateLimited)
		if de.RetryAfterSeconds <= 0 || de.RetryAfterSeconds > int(db.LoginCodeEmailLimit.Window.Seconds()) {
			t.Fatalf("retryAfterSeconds %d", de.RetryAfterSeconds)
		}
	}
	b.Clock.Advance(db.LoginCodeEmailLimit.Window)
	err := b.Store.RequestLoginCode(b.Ctx, "stranger@example.org", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoginCodeRequestsAreRateLimitedPerAddress(t *testing.T) {
	b := setup(t)
	b.Store.SetLimits(db.Limits{LoginPerAddressPerHour: 3})
	member := b.Member(db.RoleMember).Email
	for i, email := range []string{member, "stranger1@example.org", "stranger2@example.org"} {
		if err := b.Store.RequestLoginCode(b.Ctx, email, "198.51.100.7"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	// Past the limit a member and a stranger get the same refusal.
	var refusals []*db.Error
	for _, email := range []string{b.Member(db.RoleMember).Email, "last@example.org"} {
		err := b.Store.RequestLoginCode(b.Ctx, email, "198.51.100.7")
		refusals = append(refusals, dbtest.WantCode(t, err, db.CodeRateLimited))
	}
	if diff := cmp.Diff(shown(refusals[0]), shown(refusals[1])); diff != "" {
		t.Fatalf("a member's refusal differs from a stranger's (-member +stranger):\n%s", diff)
	}
	if s := refusals[0].RetryAfterSeconds; s <= 0 || s > 3600 {
		t.Fatalf("retryAfterSeconds %d, want 1 to 3600", s)
	}
	if err := b.Store.RequestLoginCode(b.Ctx, "last@example.org", "198.51.100.8"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	b.Clock.Advance(time.Hour)
	if err := b.Store.RequestLoginCode(b.Ctx, "last@example.org", "198.51.100.7"); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
}

func TestLoginCodeVerificationsAreRateLimitedPerAddress(t *testing.T) {
	b := setup(t)
	b.Store.SetLimits(db.Limits{LoginPerAddressPerHour: 3})
	m := b.Member(db.RoleMember)
	code := requestCode(t, b, m.Email)
	const addr = "198.51.100.7"
	tries := []struct{ email, code string }{{m.Email, wrongCode(code)}, {"stranger@example.org", code}, {"stranger@example.org", wrongCode(code)}}
	for i, try := range tries {
		_, err := b.Store.VerifyLoginCode(b.Ctx, try.email, try.code, addr)
		if db.ErrorCode(err) != db.CodeUnauthenticated {
			t.Fatalf("try %d: %v, want UNAUTHENTICATED", i+1, err)
		}
	}
	// Past the limit even the right code is refused, the same way as a
	// stranger's, and before the email is looked up.
	_, errMember := b.Store.VerifyLoginCode(b.Ctx, m.Email, code, addr)
	_, errStranger := b.Store.VerifyLoginCode(b.Ctx, "stranger@example.org", code, addr)
	member, stranger := dbtest.WantCode(t, errMember, db.CodeRateLimited), dbtest.WantCode(t, errStranger, db.CodeRateLimited)
	if diff := cmp.Diff(shown(member), shown(stranger)); diff != "" {
		t.Fatalf("a member's refusal differs from a stranger's (-member +stranger):\n%s", diff)
	}
	if s := member.RetryAfterSeconds; s <= 0 || s > 3600 {
		t.Fatalf("retryAfterSeconds %d, want 1 to 3600", s)
	}
	// Requests for codes are counted apart from tries of them.
	if err := b.Store.RequestLoginCode(b.Ctx, "stranger@example.org", addr); err != nil {
		t.Fatalf("a request from the address: %v", err)
	}
	b.Clock.Advance(time.Hour)
	if _, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, code, addr); db.ErrorCode(err) != db.CodeUnauthenticated {
		t.Fatalf("an hour later, the expired code: %v, want UNAUTHENTICATED", err)
	}
}

func TestRefreshTokenRotatesAndReuseRevokesTheSession(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	sess := b.Session(m.ID)
	next, err := b.Store.RefreshSession(b.Ctx, sess.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if next.RefreshToken == sess.RefreshToken || next.ID != sess.ID {
		t.Fatalf("refresh did not rotate: %+v", next)
	}
	// The old token again: stolen or replayed. The whole session ends.
	_, err = b.Store.RefreshSession(b.Ctx, sess.RefreshToken)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
	_, err = b.Store.RefreshSession(b.Ctx, next.RefreshToken)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
	_, err = b.Store.SessionActor(b.Ctx, db.System, sess.ID, m.ID)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
}

func TestLogoutEndsTheSession(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	sess := b.Session(m.ID)
	if err := b.Store.Logout(b.Ctx, db.Actor{MemberID: m.ID, SessionID: sess.ID, Role: m.Role}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Store.SessionActor(b.Ctx, db.System, sess.ID, m.ID)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
	_, err = b.Store.RefreshSession(b.Ctx, sess.RefreshToken)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
}

func TestSessionsExpire(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	sess := b.Session(m.ID)
	b.Clock.Advance(db.SessionTTL + time.Minute)
	_, err := b.Store.RefreshSession(b.Ctx, sess.RefreshToken)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
}

func TestUnknownRefreshTokenIsRefused(t *testing.T) {
	b := setup(t)
	_, err := b.Store.RefreshSession(b.Ctx, "made-up")
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
}

// wrongCode is a login code of six digits that is not code.
func wrongCode(code string) string {
	last := code[len(code)-1] - '0'
	return code[:len(code)-1] + string(rune('0'+(last+1)%10))
}

// shown is what a client sees of an error.
func shown(e *db.Error) map[string]any {
	return map[string]any{"code": e.Code, "field": e.Field, "message": e.Message, "retryAfterSeconds": e.RetryAfterSeconds}
}
