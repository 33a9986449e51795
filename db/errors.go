package db

import (
	"errors"
	"fmt"
)

// Code is a stable error code that clients can act on. The GraphQL layer
// publishes it as extensions.code.
type Code string

// The codes of the API contract.
const (
	CodeUnauthenticated Code = "UNAUTHENTICATED"
	CodeForbidden       Code = "FORBIDDEN"
	CodeNotFound        Code = "NOT_FOUND"
	CodeBadUserInput    Code = "BAD_USER_INPUT"
	CodeShiftClosed     Code = "SHIFT_CLOSED"
	CodeConflict        Code = "CONFLICT"
	CodeRateLimited     Code = "RATE_LIMITED"
	// CodeUnavailable: the database did not finish in time (a statement
	// ran into the statement timeout); nothing was written, and the same
	// request may succeed a moment later.
	CodeUnavailable Code = "UNAVAILABLE"
	CodeInternal    Code = "INTERNAL"
)

// Error is a failure the caller caused or can act on. Any other error
// returned by this package is internal and must not be shown to clients.
type Error struct {
	Code Code
	// Field names the input field at fault, when exactly one is.
	Field   string
	Message string
	// RetryAfterSeconds is set with CodeRateLimited.
	RetryAfterSeconds int
	// cause is the database's own error, for the log, when there is one.
	cause error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Code, e.Message)
	if e.Field != "" {
		msg += " (" + e.Field + ")"
	}
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

// Unwrap returns the database's error behind e, if any.
func (e *Error) Unwrap() error { return e.cause }

// ErrorCode returns the code of err when it is or wraps an *Error, and
// CodeInternal otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func errUnauthenticated() *Error {
	return &Error{Code: CodeUnauthenticated, Message: "sign in first"}
}

func errForbidden(msg string) *Error {
	return &Error{Code: CodeForbidden, Message: msg}
}

func errNotFound(what string) *Error {
	return &Error{Code: CodeNotFound, Message: what + " not found"}
}

func errInput(field, msg string) *Error {
	return &Error{Code: CodeBadUserInput, Field: field, Message: msg}
}

func errShiftClosed(msg string) *Error {
	return &Error{Code: CodeShiftClosed, Message: msg}
}

func errConflict(msg string) *Error {
	return &Error{Code: CodeConflict, Message: msg}
}

// wrap adds where an error came from, pkgsite style:
//
//	defer wrap(&err, "CancelSignup(%s)", id)
//
// A *Error stays findable with errors.As. Every use-case returns through
// it, so it is also where a statement cut short by the statement timeout,
// in whichever statement of the use-case, becomes CodeUnavailable.
func wrap(errp *error, format string, args ...any) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), mapUnavailable(*errp))
	}
}
