package db

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Page sizes of every list that pages (openShifts, jobActions,
// JobAction.picketLines, Shift.signups, myShifts): `first` is
// DefaultPageSize when not given and at most MaxPageSize.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// MaxCursorLength bounds the cursors the paging lists give: the longest,
// a picket line's, carries its name of up to 200 characters.
const MaxCursorLength = 1200

// PageQuery asks for one page of a list: First items after the item whose
// cursor is After ("" for the first page).
type PageQuery struct {
	First int
	After string
}

// Page is one page of a list, in the list's order.
type Page[T any] struct {
	Items       []T
	HasNextPage bool
}

// size is the page size q asks for, or BAD_USER_INPUT on `first`.
func (q PageQuery) size() (int, error) {
	switch {
	case q.First == 0:
		return DefaultPageSize, nil
	case q.First < 0 || q.First > MaxPageSize:
		return 0, errInput("first", "must be between 1 and "+strconv.Itoa(MaxPageSize))
	}
	return q.First, nil
}

// collectPage reads the first+1 rows a page query asked for into a page:
// the extra row only tells that there is a next page.
func collectPage[T any](rows pgx.Rows, err error, first int, scan func(pgx.Row) (*T, error)) (*Page[*T], error) {
	items, err := collect(rows, err, scan)
	if err != nil {
		return nil, err
	}
	if len(items) > first {
		return &Page[*T]{Items: items[:first], HasNextPage: true}, nil
	}
	return &Page[*T]{Items: items}, nil
}

// A cursor is the sort key of an item, its parts joined by "|" (the last
// part is always an id, and no other part may hold a "|" but the first),
// base64url encoded so clients treat it as opaque.
func encodeCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "|")))
}

// decodeCursor splits a cursor into n parts, the last an id, or answers
// BAD_USER_INPUT on `after`: a cursor not made by this list is the
// client's mistake.
func decodeCursor(c string, n int) ([]string, error) {
	bad := errBadCursor()
	if len(c) > MaxCursorLength {
		return nil, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad
	}
	s := string(raw)
	parts := make([]string, n)
	for i := n - 1; i > 0; i-- {
		j := strings.LastIndexByte(s, '|')
		if j < 0 {
			return nil, bad
		}
		s, parts[i] = s[:j], s[j+1:]
	}
	parts[0] = s
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || !validID(parts[n-1]) {
		return nil, bad
	}
	return parts, nil
}

func errBadCursor() *Error { return errInput("after", "not a cursor from this list") }

func formatCursorTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// timePage reads a page query of a list ordered by a time and an id: its
// size, and its cursor as SQL arguments (both nil for the first page).
func (q PageQuery) timePage() (first int, afterTime *time.Time, afterID *string, err error) {
	if first, err = q.size(); err != nil || q.After == "" {
		return first, nil, nil, err
	}
	parts, err := decodeCursor(q.After, 2)
	if err != nil {
		return 0, nil, nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return 0, nil, nil, errBadCursor()
	}
	return first, &t, &parts[1], nil
}
