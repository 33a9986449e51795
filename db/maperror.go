package db

import (
	"errors"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// violation is a constraint as one statement breaks it. The same constraint
// can mean different things to different callers: the overlap constraint
// tells a member signing up that they already hold a shift at that time,
// and a captain moving a shift that the move would double-book someone else.
type violation struct {
	statement  string
	constraint string
}

// constraintErrors says what each violation a caller can cause means to
// them. A violation not listed here is a fault of ours and stays internal.
var constraintErrors = map[violation]*Error{
	{insertMemberSQL, "members_email_key"}:       {Code: CodeConflict, Field: "email", Message: "a member with this email already exists"},
	{updateContactSQL, "members_email_key"}:      {Code: CodeConflict, Field: "email", Message: "another member uses this email"},
	{insertSignupSQL, "signups_no_overlap"}:      errConflict("you already hold a shift at that time"),
	{insertSignupSQL, "signups_idempotency_key"}: errKeyUsedForAnotherShift(),
	{moveSignupsSQL, "signups_no_overlap"}:       errConflict("the new times overlap another shift of a member signed up for this one"),
}

// mapError returns the *Error that err, returned by running statement,
// means to the caller when it violated a constraint of constraintErrors,
// and err unchanged otherwise (nil included).
func mapError(err error, statement string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.ConstraintName == "" {
		return err
	}
	e, ok := constraintErrors[violation{statement, pgErr.ConstraintName}]
	if !ok {
		return err
	}
	// A copy, so that no caller can change the table's answer.
	mapped := *e
	return &mapped
}

// queryCanceled is PostgreSQL's query_canceled: the statement timeout
// fired, or an operator cancelled the statement.
const queryCanceled = "57014"

// mapUnavailable returns CodeUnavailable for an error that says the
// database gave up on a statement or cannot be reached (it is restarting,
// failing over, or gone from the network), and err unchanged otherwise:
// the app retries in a moment rather than show an internal error. A client
// that goes away cancels its context instead, which pgx reports as
// context.Canceled and never as query_canceled, so the two stay apart:
// nobody is told to retry a request they abandoned.
func mapUnavailable(err error) error {
	switch {
	case isPgCode(err, queryCanceled):
		return &Error{Code: CodeUnavailable, Message: "the database is busy; try again in a moment", cause: err}
	case unreachable(err):
		return &Error{Code: CodeUnavailable, Message: "the database is unavailable; try again in a moment", cause: err}
	}
	return err
}

// unreachable reports whether err says the database could not be reached
// or dropped the connection: a failed connect, a connection the server
// ended as it shut down or could not yet accept, a connection exception
// (SQLSTATE class 08), or the network giving way under a statement.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || slices.Contains([]string{"57P01", "57P02", "57P03"}, pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isPgCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
