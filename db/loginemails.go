package db

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// LoginEmailStatus is where one login email stands; see migration 007.
type LoginEmailStatus string

// The statuses of a login email.
const (
	LoginEmailPending    LoginEmailStatus = "PENDING"
	LoginEmailSending    LoginEmailStatus = "SENDING"
	LoginEmailSent       LoginEmailStatus = "SENT"
	LoginEmailFailed     LoginEmailStatus = "FAILED"
	LoginEmailSuperseded LoginEmailStatus = "SUPERSEDED"
)

// LoginEmail is a login code on its way to a member, as the mail worker
// claims it.
type LoginEmail struct {
	ID       int64
	MemberID string
	// Email is the member's address when the email was claimed.
	Email string
	// Code is the code to send; empty for an email the claim closed.
	Code string
	// Attempts counts this one.
	Attempts  int
	ExpiresAt time.Time
	// Status is SENDING for an email to send, or FAILED for one the claim
	// closed instead (expired before it could be sent, or out of attempts),
	// with LastError saying which.
	Status    LoginEmailStatus
	LastError string
}

// newCodeSeal makes the cipher that seals codes waiting in the outbox, under
// a key of its own derived from the pepper.
func newCodeSeal(pepper []byte) cipher.AEAD {
	mac := hmac.New(sha256.New, pepper)
	mac.Write([]byte("picketline login email seal"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// sealCode seals a member's code; the member id is bound to it, so a sealed
// code moved to another member's row does not open.
func (s *Store) sealCode(memberID, code string) []byte {
	return s.codeSeal.Seal(nil, nil, []byte(code), []byte(memberID))
}

func (s *Store) openCode(memberID string, sealed []byte) (string, error) {
	code, err := s.codeSeal.Open(nil, nil, sealed, []byte(memberID))
	if err != nil {
		return "", errors.New("a sealed login code does not open: was JWT_SECRET changed?")
	}
	return string(code), nil
}

const (
	// Only the newest code works, so an older one still waiting is not sent.
	supersedeLoginEmailsSQL = `
UPDATE login_emails SET status = 'SUPERSEDED', sealed_code = NULL
WHERE member_id = $1 AND status = 'PENDING'`
	insertLoginEmailSQL = `
INSERT INTO login_emails (member_id, sealed_code, next_attempt_at, expires_at, created_at)
VALUES ($1, $2, $3, $4, $3)`
)

// queueLoginEmail puts a member's new code in the outbox in the requesting
// transaction; the mail worker hears of it once that commits.
func (s *Store) queueLoginEmail(ctx context.Context, tx pgx.Tx, c *changes, memberID, code string, now, expires time.Time) error {
	if _, err := tx.Exec(ctx, supersedeLoginEmailsSQL, memberID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertLoginEmailSQL, memberID, s.sealCode(memberID, code), now, expires); err != nil {
		return err
	}
	c.loginEmail = true
	return nil
}

// Claiming takes due emails, oldest first; a claimed email is due again
// when its lease ends, so one claimed by a worker that died goes out from
// another. An email whose code expired, or that used its last attempt
// under a claim that lapsed, is closed as FAILED on the way.
const claimLoginEmailsSQL = `
WITH due AS (
    SELECT id, expires_at <= $1 OR attempts >= $4 AS closing
    FROM login_emails
    WHERE status IN ('PENDING', 'SENDING') AND next_attempt_at <= $1
    ORDER BY next_attempt_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE login_emails e SET
    status = CASE WHEN d.closing THEN 'FAILED' ELSE 'SENDING' END,
    sealed_code = CASE WHEN d.closing THEN NULL ELSE e.sealed_code END,
    last_error = CASE WHEN NOT d.closing THEN e.last_error
                      WHEN e.expires_at <= $1 THEN 'expired before it could be sent'
                      ELSE 'out of attempts' END,
    attempts = CASE WHEN d.closing THEN e.attempts ELSE e.attempts + 1 END,
    next_attempt_at = CASE WHEN d.closing THEN e.next_attempt_at ELSE $2 END
FROM due d, members m
WHERE e.id = d.id AND m.id = e.member_id
RETURNING e.id, e.member_id, m.email, e.sealed_code, e.attempts, e.expires_at, e.status, COALESCE(e.last_error, '')`

// unopenedCodeError is the last error of an email whose code would not
// open.
const unopenedCodeError = "sealed code does not open"

// closeUnopenedLoginEmailsSQL closes the claimed emails whose code would
// not open: nothing can send them.
const closeUnopenedLoginEmailsSQL = `
UPDATE login_emails SET status = 'FAILED', sealed_code = NULL, last_error = $2
WHERE id = ANY ($1)`

// ClaimLoginEmails takes up to limit due login emails for this worker until
// lease ends, with each member's address as it is now and the code opened.
// It returns, besides the emails to send (status SENDING), those it closed
// as FAILED, which the worker reports. Workers on several replicas never
// take the same email (SKIP LOCKED). System only: the mail worker runs it.
func (s *Store) ClaimLoginEmails(ctx context.Context, actor Actor, limit int, lease time.Duration, maxAttempts int) (_ []LoginEmail, err error) {
	if err := actor.requireSystem(); err != nil {
		return nil, err
	}
	defer wrap(&err, "ClaimLoginEmails")
	now := s.clock.Now()
	var out []LoginEmail
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		out = nil
		var unopened []int64
		rows, err := tx.Query(ctx, claimLoginEmailsSQL, now, now.Add(lease), limit, maxAttempts)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e      LoginEmail
				sealed []byte
			)
			if err := rows.Scan(&e.ID, &e.MemberID, &e.Email, &sealed, &e.Attempts, &e.ExpiresAt, &e.Status, &e.LastError); err != nil {
				return err
			}
			if sealed != nil {
				if e.Code, err = s.openCode(e.MemberID, sealed); err != nil {
					// Sealed under another key (JWT_SECRET was changed):
					// closed below rather than failing the claim, which
					// would hand the same row back to every worker and
					// hold up every email queued after it.
					e.Status, e.LastError = LoginEmailFailed, unopenedCodeError
					unopened = append(unopened, e.ID)
				}
			}
			out = append(out, e)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(unopened) > 0 {
			_, err = tx.Exec(ctx, closeUnopenedLoginEmailsSQL, unopened, unopenedCodeError)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LoginEmailResult is what became of a claimed login email.
type LoginEmailResult string

// The results a mail worker records.
const (
	// LoginEmailDelivered: the mail server accepted the message.
	LoginEmailDelivered LoginEmailResult = "DELIVERED"
	// LoginEmailRejected: the mail server refused it for good.
	LoginEmailRejected LoginEmailResult = "REJECTED"
	// LoginEmailRetry: a failure that may pass; another attempt at At, or
	// FAILED once the attempts are used up.
	LoginEmailRetry LoginEmailResult = "RETRY"
	// LoginEmailPostponed: not sent because the worker is stopping; due
	// again at At without using an attempt.
	LoginEmailPostponed LoginEmailResult = "POSTPONED"
)

// LoginEmailOutcome is the result of one claimed login email.
type LoginEmailOutcome struct {
	ID     int64
	Result LoginEmailResult
	// At is when to try again, for LoginEmailRetry and LoginEmailPostponed.
	At time.Time
	// Error is the kind of failure, for LoginEmailRejected and
	// LoginEmailRetry: a few fixed words, never an address.
	Error string
}

// Only an email still claimed is updated: one closed meanwhile keeps its
// status. The code goes with every final status.
const recordLoginEmailSQL = `
WITH o AS (
    SELECT id, CASE WHEN $2 = 'DELIVERED' THEN 'SENT'
                    WHEN $2 = 'REJECTED' OR ($2 = 'RETRY' AND attempts >= $5) THEN 'FAILED'
                    ELSE 'PENDING' END AS status
    FROM login_emails
    WHERE id = $1 AND status = 'SENDING'
    FOR UPDATE
)
UPDATE login_emails e SET
    status = o.status,
    sealed_code = CASE WHEN o.status = 'PENDING' THEN e.sealed_code END,
    next_attempt_at = CASE WHEN o.status = 'PENDING' THEN $3 ELSE e.next_attempt_at END,
    attempts = CASE WHEN $2 = 'POSTPONED' THEN e.attempts - 1 ELSE e.attempts END,
    last_error = CASE WHEN $2 IN ('REJECTED', 'RETRY') THEN left($4, 100) ELSE e.last_error END,
    sent_at = CASE WHEN o.status = 'SENT' THEN $6::timestamptz END
FROM o
WHERE e.id = o.id
RETURNING o.status`

// RecordLoginEmail writes what became of a claimed login email and returns
// its status now: SENT, FAILED (refused, or a retry past maxAttempts) or
// PENDING; empty when the email was no longer claimed. System only: the
// mail worker runs it.
func (s *Store) RecordLoginEmail(ctx context.Context, actor Actor, o LoginEmailOutcome, maxAttempts int) (status LoginEmailStatus, err error) {
	if err := actor.requireSystem(); err != nil {
		return "", err
	}
	defer wrap(&err, "RecordLoginEmail")
	err = s.pool.QueryRow(ctx, recordLoginEmailSQL, o.ID, string(o.Result), o.At, o.Error, maxAttempts, s.clock.Now()).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return status, err
}
