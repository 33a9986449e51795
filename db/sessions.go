package db

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"
)

// Login and session lifetimes.
const (
	LoginCodeTTL         = 10 * time.Minute
	LoginCodeMaxAttempts = 5
	SessionTTL           = 30 * 24 * time.Hour
)

// LoginCodeEmailLimit limits asking for login codes per email, members and
// strangers alike, so the limit reveals nothing. The per-address limits are
// the store's Limits.LoginPerAddressPerHour.
var LoginCodeEmailLimit = Limit{Max: 5, Window: 15 * time.Minute}

// Session is a signed-in member's session with its current refresh token.
type Session struct {
	ID           string
	Member       *Member
	RefreshToken string
}

func errBadLogin() *Error {
	return &Error{Code: CodeUnauthenticated, Message: "the code is wrong or has expired; ask for a new one"}
}

func errBadRefresh() *Error {
	return &Error{Code: CodeUnauthenticated, Message: "the session has ended; sign in again"}
}

func (s *Store) codeHash(memberID, code string) []byte {
	mac := hmac.New(sha256.New, s.pepper)
	fmt.Fprintf(mac, "%s\x00%s", memberID, code)
	return mac.Sum(nil)
}

func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func newLoginCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

func newRefreshToken() string {
	return rand.Text() + rand.Text()
}

const insertLoginRequestSQL = `INSERT INTO login_requests (sealed_email, requested_at) VALUES ($1, $2)`

// RequestLoginCode asks for a login code for email: it counts the request
// against the limits and queues it, sealed, for the mail worker, which
// makes the code and its email after the commit if the email is a member's
// (see ResolveLoginRequests). Members and strangers alike get the same
// statements and the same answer, so neither what it says nor how long it
// takes tells anybody which it was; the code itself never leaves the store
// but through the outbox. clientAddr is the caller's network address, for
// the per-address limit, and is not kept. Like VerifyLoginCode and
// RefreshSession it takes no actor: anyone may ask, signed in or not, and
// the email (the code, the refresh token) is what the use-case checks.
func (s *Store) RequestLoginCode(ctx context.Context, email, clientAddr string) (err error) {
	defer wrap(&err, "RequestLoginCode")
	email, err = NormalizeEmail("email", email)
	if err != nil {
		return err
	}
	sealed := s.sealEmail(email)
	return s.write(ctx, func(tx pgx.Tx, c *changes) error {
		if err := s.hit(ctx, tx, limitKey("login-email", email), LoginCodeEmailLimit); err != nil {
			return err
		}
		if err := s.hit(ctx, tx, limitKey("login-addr", clientAddr), s.limits.loginPerAddress()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertLoginRequestSQL, sealed, s.clock.Now()); err != nil {
			return err
		}
		c.loginEmail = true
		return nil
	})
}

const (
	// The current code is found and its attempt counted in one statement,
	// whether or not there is a code and whatever it turns out to be
	// worth: a wrong code for a member and any code for a stranger then
	// cost the same statements. It returns the attempts made before this
	// one.
	tryLoginCodeSQL = `
WITH current AS (
    SELECT lc.id, lc.code_hash, lc.attempts, m.id AS member_id
    FROM members m
    JOIN login_codes lc ON lc.member_id = m.id
    WHERE m.email = $1 AND lc.used_at IS NULL AND lc.expires_at > $2
    ORDER BY lc.created_at DESC
    LIMIT 1
    FOR UPDATE OF lc
), counted AS (
    UPDATE login_codes lc SET attempts = lc.attempts + 1
    FROM current c
    WHERE lc.id = c.id
)
SELECT id, code_hash, attempts, member_id FROM current`
	useLoginCodeSQL  = `UPDATE login_codes SET used_at = $2 WHERE id = $1`
	insertSessionSQL = `INSERT INTO sessions (member_id, expires_at) VALUES ($1, $2) RETURNING id`
	insertRefreshSQL = `INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)`
)

// VerifyLoginCode exchanges a login code for a new session. Wrong, expired,
// used and unknown codes all fail the same way, and by the same statements,
// whether or not the email is a member's: only the right code does more,
// and it tells the caller nothing the caller did not know. Each try counts
// against the code's attempts even though the call fails. Every try also
// counts against clientAddr, the caller's network address, before the
// email is looked up, so the refusal is the same for members and
// strangers. It takes no actor: the code is the credential.
func (s *Store) VerifyLoginCode(ctx context.Context, email, code, clientAddr string) (sess *Session, err error) {
	defer wrap(&err, "VerifyLoginCode")
	email, err = NormalizeEmail("email", email)
	if err != nil {
		return nil, errBadLogin()
	}
	var wrong bool
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		wrong, sess = false, nil
		if err := s.hit(ctx, tx, limitKey("verify-addr", clientAddr), s.limits.loginPerAddress()); err != nil {
			return err
		}
		var (
			codeID   int64
			hash     []byte
			attempts int
			memberID string
		)
		err := tx.QueryRow(ctx, tryLoginCodeSQL, email, s.clock.Now()).Scan(&codeID, &hash, &attempts, &memberID)
		if errors.Is(err, pgx.ErrNoRows) {
			wrong = true
			return nil
		}
		if err != nil {
			return err
		}
		if attempts >= LoginCodeMaxAttempts || !hmac.Equal(hash, s.codeHash(memberID, code)) {
			wrong = true
			return nil
		}
		if _, err := tx.Exec(ctx, useLoginCodeSQL, codeID, s.clock.Now()); err != nil {
			return err
		}
		sess, err = s.newSession(ctx, tx, memberID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if wrong {
		return nil, errBadLogin()
	}
	return sess, nil
}

func (s *Store) newSession(ctx context.Context, tx pgx.Tx, memberID string) (*Session, error) {
	sess := &Session{RefreshToken: newRefreshToken()}
	if err := tx.QueryRow(ctx, insertSessionSQL, memberID, s.clock.Now().Add(SessionTTL)).Scan(&sess.ID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, insertRefreshSQL, tokenHash(sess.RefreshToken), sess.ID); err != nil {
		return nil, err
	}
	m, err := scanMember(tx.QueryRow(ctx, memberByIDSQL, memberID))
	if err != nil {
		return nil, err
	}
	sess.Member = m
	return sess, nil
}

// StartSession opens a session for a member without a login code. System
// only: it is for operators (the token command), never exposed to clients.
func (s *Store) StartSession(ctx context.Context, actor Actor, memberID string) (sess *Session, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "StartSession")
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		sess, err = s.newSession(ctx, tx, memberID)
		return err
	})
	return sess, err
}

const (
	membersByEmailSQL = `SELECT ` + memberColumns + ` FROM members WHERE email = ANY($1)`
	// The ids are drawn before the insert so that they come back in the
	// order of the list, which RETURNING does not promise.
	insertSessionsSQL = `
WITH wanted AS (
	SELECT w.n, w.member_id, gen_random_uuid() AS id
	FROM unnest($1::uuid[]) WITH ORDINALITY AS w(member_id, n)
), started AS (
	INSERT INTO sessions (id, member_id, expires_at) SELECT id, member_id, $2 FROM wanted
)
SELECT id FROM wanted ORDER BY n`
	insertRefreshTokensSQL = `INSERT INTO refresh_tokens (token_hash, session_id) SELECT * FROM unnest($1::bytea[], $2::uuid[])`
)

// StartSessionsByEmail is StartSession for many members at once, named by
// email, in one transaction: the token command's batch form, for scripts
// and load tests that need many signed-in members. The sessions come back
// in the order of emails, one per entry (an email given twice gets two).
// An email that is no member's starts none of them. System only: the
// token command runs it for an operator.
func (s *Store) StartSessionsByEmail(ctx context.Context, actor Actor, emails []string) (sessions []*Session, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "StartSessionsByEmail")
	wanted := make([]string, len(emails))
	for i, e := range emails {
		if wanted[i], err = NormalizeEmail("emails", e); err != nil {
			return nil, errInput("emails", fmt.Sprintf("email %d of %d is not a valid email address", i+1, len(emails)))
		}
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		sessions = make([]*Session, len(wanted))
		rows, err := tx.Query(ctx, membersByEmailSQL, wanted)
		if err != nil {
			return err
		}
		members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Member, error) { return scanMember(r) })
		if err != nil {
			return err
		}
		byEmail := make(map[string]*Member, len(members))
		for _, m := range members {
			byEmail[m.Email] = m
		}
		memberIDs := make([]string, len(wanted))
		for i, e := range wanted {
			m, ok := byEmail[e]
			if !ok {
				return &Error{Code: CodeNotFound, Field: "emails", Message: fmt.Sprintf("email %d of %d is no member's", i+1, len(wanted))}
			}
			memberIDs[i] = m.ID
			sessions[i] = &Session{Member: m, RefreshToken: newRefreshToken()}
		}
		ids, err := queryStrings(ctx, tx, insertSessionsSQL, memberIDs, s.clock.Now().Add(SessionTTL))
		if err != nil {
			return err
		}
		hashes := make([][]byte, len(sessions))
		for i, sess := range sessions {
			sess.ID = ids[i]
			hashes[i] = tokenHash(sess.RefreshToken)
		}
		_, err = tx.Exec(ctx, insertRefreshTokensSQL, hashes, ids)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sessions, nil
}

const (
	refreshTokenSQL = `
SELECT rt.session_id, rt.used_at IS NOT NULL, s.revoked_at IS NOT NULL OR s.expires_at <= $2, s.member_id
FROM refresh_tokens rt
JOIN sessions s ON s.id = rt.session_id
WHERE rt.token_hash = $1
FOR UPDATE OF rt, s`
	useRefreshSQL    = `UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1`
	extendSessionSQL = `UPDATE sessions SET expires_at = $2 WHERE id = $1`
	revokeSessionSQL = `UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`
	sessionActorSQL  = `
SELECT m.role
FROM sessions s
JOIN members m ON m.id = s.member_id
WHERE s.id = $1 AND s.member_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3`
)

// RefreshSession rotates a refresh token: the presented one stops working and
// a new one is returned. A token presented a second time means it leaked (or
// a client is confused): the whole session is revoked. It takes no actor:
// the refresh token is the credential.
func (s *Store) RefreshSession(ctx context.Context, token string) (sess *Session, err error) {
	defer wrap(&err, "RefreshSession")
	var reused bool
	err = s.write(ctx, func(tx pgx.Tx, c *changes) error {
		reused, sess = false, nil
		var (
			sessionID, memberID string
			used, ended         bool
		)
		h := tokenHash(token)
		err := tx.QueryRow(ctx, refreshTokenSQL, h, s.clock.Now()).Scan(&sessionID, &used, &ended, &memberID)
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadRefresh()
		}
		if err != nil {
			return err
		}
		if ended {
			return errBadRefresh()
		}
		now := s.clock.Now()
		if used {
			reused = true
			c.sessions = append(c.sessions, sessionID)
			_, err := tx.Exec(ctx, revokeSessionSQL, sessionID, now)
			return err
		}
		if _, err := tx.Exec(ctx, useRefreshSQL, h, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, extendSessionSQL, sessionID, now.Add(SessionTTL)); err != nil {
			return err
		}
		sess = &Session{ID: sessionID, RefreshToken: newRefreshToken()}
		if _, err := tx.Exec(ctx, insertRefreshSQL, tokenHash(sess.RefreshToken), sessionID); err != nil {
			return err
		}
		sess.Member, err = scanMember(tx.QueryRow(ctx, memberByIDSQL, memberID))
		return err
	})
	if err == nil && reused {
		err = errBadRefresh()
	}
	return sess, err
}

const forgetSessionDevicesSQL = `DELETE FROM devices WHERE session_id = $1 RETURNING token`

// Logout revokes the caller's session and forgets the device it registered,
// so a phone handed on stops receiving the member's notifications.
func (s *Store) Logout(ctx context.Context, actor Actor) (err error) {
	defer wrap(&err, "Logout")
	if err := actor.requireMember(); err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx, c *changes) error {
		if _, err := tx.Exec(ctx, revokeSessionSQL, actor.SessionID, s.clock.Now()); err != nil {
			return err
		}
		c.sessions = append(c.sessions, actor.SessionID)
		tokens, err := queryStrings(ctx, tx, forgetSessionDevicesSQL, actor.SessionID)
		if err != nil {
			return err
		}
		for _, token := range tokens {
			if _, err := tx.Exec(ctx, cancelDevicePushSQL, token, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// SessionActor returns the actor of a live session, checked on every request
// so that logout and role changes take effect at once. System only: the
// authentication middleware asks it before the request has an actor.
func (s *Store) SessionActor(ctx context.Context, actor Actor, sessionID, memberID string) (a Actor, err error) {
	if err := actor.requireSystem(); err != nil {
		return Actor{}, err
	}
	defer wrap(&err, "SessionActor")
	if !validID(sessionID) || !validID(memberID) {
		return Actor{}, errUnauthenticated()
	}
	a = Actor{MemberID: memberID, SessionID: sessionID}
	err = s.pool.QueryRow(ctx, sessionActorSQL, sessionID, memberID, s.clock.Now()).Scan(&a.Role)
	if errors.Is(err, pgx.ErrNoRows) {
		return Actor{}, errUnauthenticated()
	}
	return a, err
}
