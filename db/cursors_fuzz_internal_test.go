package db

import (
	"strings"
	"testing"
	"time"
)

// FuzzEventCursor reads any string as an event cursor: it is refused with
// BAD_USER_INPUT on after, or it names a sequence number whose own cursor
// reads back the same, and a cursor of one stream never reads in another.
func FuzzEventCursor(f *testing.F) {
	for _, seed := range []string{LineCursor(0), LineCursor(42), MemberCursor(7), "", "bGluZTo", "bGluZTotMQ", "line:5", "bGluZTo5OTk5OTk5OTk5OTk5OTk5OTk5OQ"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, c string) {
		seq, err := ParseLineCursor(c)
		if err != nil {
			if de, ok := err.(*Error); !ok || de.Code != CodeBadUserInput || de.Field != "after" {
				t.Fatalf("cursor %q refused with %v, want BAD_USER_INPUT on after", c, err)
			}
			return
		}
		if seq < 0 {
			t.Fatalf("cursor %q names the negative sequence number %d", c, seq)
		}
		if again, err := ParseLineCursor(LineCursor(seq)); err != nil || again != seq {
			t.Fatalf("cursor %q: %d does not read back from its own cursor (%d, %v)", c, seq, again, err)
		}
		if _, err := ParseMemberCursor(c); err == nil {
			t.Fatalf("line cursor %q reads as a member cursor too", c)
		}
	})
}

// FuzzPageCursor reads any string as a cursor of the sign-up pages, the
// one with the most parts: it is refused with BAD_USER_INPUT on after, or
// its parts make a cursor that reads back the same.
func FuzzPageCursor(f *testing.F) {
	at := time.Date(2026, 12, 4, 6, 0, 0, 123, time.UTC)
	f.Add(ShiftSignupCursor(&Signup{ID: "5d0c7c44-5a6e-4bd5-9d56-2f1e1b0b9a01", CreatedAt: at, waitlistSeq: 3}))
	f.Add(encodeCursor("a|b", formatCursorTime(at), "5d0c7c44-5a6e-4bd5-9d56-2f1e1b0b9a01"))
	f.Add(encodeCursor("-1", formatCursorTime(at), "5d0c7c44-5a6e-4bd5-9d56-2f1e1b0b9a01"))
	f.Add("")
	f.Add(strings.Repeat("A", MaxCursorLength+1))
	f.Fuzz(func(t *testing.T, c string) {
		key, err := parseShiftSignupCursor(c)
		if err != nil {
			if de, ok := err.(*Error); !ok || de.Code != CodeBadUserInput || de.Field != "after" {
				t.Fatalf("cursor %q refused with %v, want BAD_USER_INPUT on after", c, err)
			}
			return
		}
		if key == nil {
			if c != "" {
				t.Fatalf("cursor %q reads as no cursor", c)
			}
			return
		}
		if !validID(key.id) || key.waitlistSeq < 0 {
			t.Fatalf("cursor %q reads as %+v", c, key)
		}
		again, err := parseShiftSignupCursor(ShiftSignupCursor(&Signup{ID: key.id, CreatedAt: key.createdAt, waitlistSeq: key.waitlistSeq}))
		if err != nil || again.id != key.id || again.waitlistSeq != key.waitlistSeq || !again.createdAt.Equal(key.createdAt) {
			t.Fatalf("cursor %q: %+v does not read back from its own cursor (%+v, %v)", c, key, again, err)
		}
	})
}
