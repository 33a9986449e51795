package db_test

import (
	"bytes"
	"testing"
	"time"

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
	sess, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, code)
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
	_, err = b.Store.VerifyLoginCode(b.Ctx, m.Email, code)
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
	_, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, code)
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
		_, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, wrong)
		dbtest.WantCode(t, err, db.CodeUnauthenticated)
	}
	_, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, code)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
}

func TestOnlyTheNewestLoginCodeWorks(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	old := requestCode(t, b, m.Email)
	fresh := requestCode(t, b, m.Email)
	if old != fresh {
		_, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, old)
		dbtest.WantCode(t, err, db.CodeUnauthenticated)
	}
	if _, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, fresh); err != nil {
		t.Fatal(err)
	}
}

func TestLoginCodeRequestRevealsNothingForStrangers(t *testing.T) {
	b := setup(t)
	if err := b.Store.RequestLoginCode(b.Ctx, "stranger@example.org", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	var codes, emails int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT (SELECT count(*) FROM login_codes), (SELECT count(*) FROM login_emails)`).Scan(&codes, &emails); err != nil {
		t.Fatal(err)
	}
	if codes != 0 || emails != 0 {
		t.Fatalf("an email that is no member's made %d codes and %d emails, want none", codes, emails)
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
	for i := range db.LoginCodeAddressLimit.Max {
		err := b.Store.RequestLoginCode(b.Ctx, "someone"+string(rune('a'+i%26))+string(rune('a'+i/26))+"@example.org", "198.51.100.7")
		if err != nil {
			t.Fatal(err)
		}
	}
	err := b.Store.RequestLoginCode(b.Ctx, "last@example.org", "198.51.100.7")
	dbtest.WantCode(t, err, db.CodeRateLimited)
	err = b.Store.RequestLoginCode(b.Ctx, "last@example.org", "198.51.100.8")
	if err != nil {
		t.Fatal(err)
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
