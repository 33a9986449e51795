package model

import (
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/picketline/picketline/db"
)

// MarshalTime writes a Time as RFC 3339 in UTC.
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(t.UTC().Format(time.RFC3339Nano)))
	})
}

// UnmarshalTime reads an RFC 3339 Time. A malformed value is the client's
// mistake, so it is BAD_USER_INPUT rather than an internal error.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &db.Error{Code: db.CodeBadUserInput, Message: "must be an RFC 3339 time such as 2026-11-23T06:00:00Z"}
}
