package db_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

func TestLoginCodeSignsInOnce(t *testing.T) {
	b := setup(t)
	m := b.member(db.RoleMember)
	lc, err := b.store.RequestLoginCode(b.ctx, "  "+m.Email+" ", "192.0.2.1")
	mustNot(t, err)
	if lc == nil || len(lc.Code) != 6 {
		t.Fatalf("login code %+v", lc)
	}
	sess, err := b.store.VerifyLoginCode(b.ctx, m.Email, lc.Code)
	mustNot(t, err)
	if sess.Member.ID != m.ID || sess.RefreshToken == "" || sess.ID == "" {
		t.Fatalf("session %+v", sess)
	}
	actor, err := b.store.SessionActor(b.ctx, sess.ID, m.ID)
	mustNot(t, err)
	if actor.MemberID != m.ID || actor.Role != db.RoleMember {
		t.Fatalf("actor %+v", actor)
	}
	_, err = b.store.VerifyLoginCode(b.ctx, m.Email, lc.Code)
	wantCode(t, err, db.CodeUnauthenticated)
}

func TestLoginCodeIsStoredHashed(t *testing.T) {
	b := setup(t)
	m := b.member(db.RoleMember)
	lc, err := b.store.RequestLoginCode(b.ctx, m.Email, "192.0.2.1")
	mustNot(t, err)
	var stored []byte
	if err := b.store.Pool().QueryRow(b.ctx, `SELECT code_hash FROM login_codes WHERE member_id = $1`, m.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(lc.Code)) || len(stored) != 32 {
		t.Fatalf("stored code is not a hash: %x", stored)
	}
}

func TestLoginCodeExpiresAfterTenMinutes(t *testing.T) {
	b := setup(t)
	m := b.member(db.RoleMember)
	lc, err := b.store.RequestLoginCode(b.ctx, m.Email, "192.0.2.1")
	mustNot(t, err)
	b.clock.Advance(10*time.Minute + time.Second)
	_, err = b.store.VerifyLoginCode(b.ctx, m.Email, lc.Code)
	wantCode(t, err, db.CodeUnauthenticated)
}

func TestLoginCodeAllowsFiveAttempts(t *testing.T) {
	b := setup(t)
	m := b.member(db.RoleMember)
	lc, err := b.store.RequestLoginCode(b.ctx, m.Email, "192.0.2.1")
	mustNot(t, err)
	wrong := "000000"
	if lc.Code == wrong {
		wrong = "111111"
	}
	for range 5 {
		_, err := b.store.VerifyLoginCode(b.ctx, m.Email, wrong)
		wantCode(t, err, db.CodeUnauthenticated)
	}
	_, err = b.store.VerifyLoginCode(b.ctx, m.Email, lc.Code)
	wantCode(t, err, db.CodeUnauthenticated)
}

func TestOnlyTheNewestLoginCodeWorks(t *testing.T) {
	b := setup(t)
	m := b.member(db.RoleMember)
	old, err := b.store.RequestLoginCode(b.ctx, m.Email, "192.0.2.1")
	mustNot(t, err)
	fresh, err := b.store.RequestLoginCode(b.ctx, m.Email, "192.0.2.1")
	mustNot(t, err)
	if old.Code != fresh.Code {
		_, err = b.store.VerifyLoginCode(b.ctx, m.Email, old.Code)
		wantCode(t, err, db.CodeUnauthenticated)
	}
	_, err = b.store.VerifyLoginCode(b.ctx, m.Email, fresh.Code)
	mustNot(t, err)
}

func TestLoginCodeRequestRevealsNothingForStrangers(t *testing.T) {
	b := setup(t)
	lc, err := b.store.RequestLoginCode(b.ctx, "stranger@example.org", "192.0.2.1")
	mustNot(t, err)
	if lc != nil {
		t.Fatal("a code was made for an email that is not a member's")
	}
}

func TestLoginCodeRequestsAreRateLimited(t *testing.T) {
	b := setup(t)
	for _, email := range []string{b.member(db.RoleMember).Email, "stranger@example.org"} {
		for i := range db.LoginCodeEmailLimit.Max {
			_, err := b.store.RequestLoginCode(b.ctx, email, "192.0.2.1")
			if err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
		}
		_, err := b.store.RequestLoginCode(b.ctx, email, "192.0.2.1")
		wantCode(t, err, db.CodeRateLimited)
		var de *db.Error
		errorsAs(err, &de)
		if de.RetryAfterSeconds <= 0 || de.RetryAfterSeconds > int(db.LoginCodeEmailLimit.Window.Seconds()) {
			t.Fatalf("retryAfterSeconds %d", de.RetryAfterSeconds)
		}
	}
	b.clock.Advance(db.LoginCodeEmailLimit.Window)
	_, err := b.store.RequestLoginCode(b.ctx, "stranger@example.org", "192.0.2.1")
	mustNot(t, err)
}

func TestLoginCodeRequestsAreRateLimitedPerAddress(t *testing.T) {
	b := setup(t)
	for i := range db.LoginCodeAddressLimit.Max {
		_, err := b.store.RequestLoginCode(b.ctx, "someone"+string(rune('a'+i%26))+string(rune('a'+i/26))+"@example.org", "198.51.100.7")
		mustNot(t, err)
	}
	_, err := b.store.RequestLoginCode(b.ctx, "last@example.org", "198.51.100.7")
	wantCode(t, err, db.CodeRateLimited)
	_, err = b.store.RequestLoginCode(b.ctx, "last@example.org", "198.51.100.8")
	mustNot(t, err)
}

func TestRefreshTokenRotatesAndReuseRevokesTheSession(t *testing.T) {
	b := setup(t)
	m := b.member(db.RoleMember)
	sess, err := b.store.StartSession(b.ctx, m.ID)
	mustNot(t, err)
	next, err := b.store.RefreshSession(b.ctx, sess.RefreshToken)
	mustNot(t, err)
	if next.RefreshToken == sess.RefreshToken || next.ID != sess.ID {
		t.Fatalf("refresh did not rotate: %+v", next)
	}
	// The old token again: stolen or replayed. The whole session ends.
	_, err = b.store.RefreshSession(b.ctx, sess.RefreshToken)
	wantCode(t, err, db.CodeUnauthenticated)
	_, err = b.store.RefreshSession(b.ctx, next.RefreshToken)
	wantCode(t, err, db.CodeUnauthenticated)
	_, err = b.store.SessionActor(b.ctx, sess.ID, m.ID)
	wantCode(t, err, db.CodeUnauthenticated)
}

func TestLogoutEndsTheSession(t *testing.T) {
	b := setup(t)
	m := b.member(db.RoleMember)
	sess, err := b.store.StartSession(b.ctx, m.ID)
	mustNot(t, err)
	mustNot(t, b.store.Logout(b.ctx, db.Actor{MemberID: m.ID, SessionID: sess.ID, Role: m.Role}))
	_, err = b.store.SessionActor(b.ctx, sess.ID, m.ID)
	wantCode(t, err, db.CodeUnauthenticated)
	_, err = b.store.RefreshSession(b.ctx, sess.RefreshToken)
	wantCode(t, err, db.CodeUnauthenticated)
}

func TestSessionsExpire(t *testing.T) {
	b := setup(t)
	m := b.member(db.RoleMember)
	sess, err := b.store.StartSession(b.ctx, m.ID)
	mustNot(t, err)
	b.clock.Advance(db.SessionTTL + time.Minute)
	_, err = b.store.RefreshSession(b.ctx, sess.RefreshToken)
	wantCode(t, err, db.CodeUnauthenticated)
}

func TestUnknownRefreshTokenIsRefused(t *testing.T) {
	b := setup(t)
	_, err := b.store.RefreshSession(b.ctx, "made-up")
	wantCode(t, err, db.CodeUnauthenticated)
}
