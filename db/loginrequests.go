package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// loginRequestSeal is what a sealed email in the login request queue is
// bound to: no other value the store seals (codes are bound to their
// member's id) opens as one.
const loginRequestSeal = "picketline login request"

// sealEmail seals an email asked for a code, for the login request queue.
func (s *Store) sealEmail(email string) []byte {
	return s.codeSeal.Seal(nil, nil, []byte(email), []byte(loginRequestSeal))
}

func (s *Store) openEmail(sealed []byte) (string, error) {
	email, err := s.codeSeal.Open(nil, nil, sealed, []byte(loginRequestSeal))
	if err != nil {
		return "", errors.New("a sealed login request does not open: was JWT_SECRET changed?")
	}
	return string(email), nil
}

// LoginRequestsResolved is what one ResolveLoginRequests did.
type LoginRequestsResolved struct {
	// Taken counts the requests taken from the queue, dropped ones
	// included.
	Taken int
	// Dropped lists the requests whose email would not open (sealed under
	// another secret), which were deleted unresolved.
	Dropped []int64
}

const (
	// Requests go oldest first; workers on several replicas never take
	// the same one (SKIP LOCKED). Taking one deletes it, so a request is
	// resolved once, with the transaction that resolves it.
	takeLoginRequestSQL = `
DELETE FROM login_requests WHERE id = (
    SELECT id FROM login_requests ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, sealed_email, requested_at`
	// The member's row is locked so that two requests of one member are
	// resolved one after the other, and the second sees the first's code.
	lockMemberByEmailSQL = `SELECT id FROM members WHERE email = $1 FOR NO KEY UPDATE`
	newerLoginCodeSQL    = `SELECT EXISTS (SELECT 1 FROM login_codes WHERE member_id = $1 AND created_at > $2)`
	retireLoginCodesSQL  = `UPDATE login_codes SET used_at = $2 WHERE member_id = $1 AND used_at IS NULL`
	insertLoginCodeSQL   = `INSERT INTO login_codes (member_id, code_hash, expires_at, created_at) VALUES ($1, $2, $3, $4)`
)

// ResolveLoginRequests takes up to limit requests for login codes from the
// queue RequestLoginCode fills, each in a transaction of its own: a
// member's request makes the member's new code, which alone works from
// then on, and queues the email that carries it; a stranger's, and one
// asked for too long ago for its code to be of use, are deleted and make
// nothing. A request whose email does not open is deleted alone, and
// reported, rather than handed back to every worker. System only: the
// mail worker runs it.
func (s *Store) ResolveLoginRequests(ctx context.Context, actor Actor, limit int) (out LoginRequestsResolved, err error) {
	if err := actor.requireSystem(); err != nil {
		return LoginRequestsResolved{}, err
	}
	defer wrap(&err, "ResolveLoginRequests")
	for out.Taken < limit {
		var (
			taken   bool
			dropped int64
		)
		err := s.write(ctx, func(tx pgx.Tx, c *changes) error {
			taken, dropped = false, 0
			var (
				id          int64
				sealed      []byte
				requestedAt time.Time
			)
			err := tx.QueryRow(ctx, takeLoginRequestSQL).Scan(&id, &sealed, &requestedAt)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			taken = true
			email, err := s.openEmail(sealed)
			if err != nil {
				dropped = id
				return nil
			}
			return s.issueLoginCode(ctx, tx, c, email, requestedAt)
		})
		if err != nil {
			return out, err
		}
		if !taken {
			return out, nil
		}
		out.Taken++
		if dropped != 0 {
			out.Dropped = append(out.Dropped, dropped)
		}
	}
	return out, nil
}

// issueLoginCode makes a member's code for a request made at requestedAt
// and queues its email; for an email that is no member's it does nothing.
func (s *Store) issueLoginCode(ctx context.Context, tx pgx.Tx, c *changes, email string, requestedAt time.Time) error {
	now := s.clock.Now()
	// The code's ten minutes run from the request: one resolved late does
	// not outlive them.
	expires := requestedAt.Add(LoginCodeTTL)
	if !expires.After(now) {
		return nil
	}
	var memberID string
	err := tx.QueryRow(ctx, lockMemberByEmailSQL, email).Scan(&memberID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	// Requests resolved out of order (by the workers of two replicas) still
	// leave the newest request's code the only one: an older request
	// resolved after a newer one makes nothing.
	var newer bool
	if err := tx.QueryRow(ctx, newerLoginCodeSQL, memberID, requestedAt).Scan(&newer); err != nil || newer {
		return err
	}
	code, err := newLoginCode()
	if err != nil {
		return err
	}
	// Only the newest code works, so a leaked older message is useless.
	if _, err := tx.Exec(ctx, retireLoginCodesSQL, memberID, now); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertLoginCodeSQL, memberID, s.codeHash(memberID, code), expires, requestedAt); err != nil {
		return err
	}
	return s.queueLoginEmail(ctx, tx, c, memberID, code, now, expires)
}
