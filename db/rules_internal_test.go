package db

import (
	"testing"
	"time"
)

func TestWithinCancelCutoff(t *testing.T) {
	start := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	cases := []struct {
		now    time.Time
		cutoff int
		want   bool
	}{
		{start.Add(-3 * time.Hour), 120, false},
		{start.Add(-2*time.Hour - time.Second), 120, false},
		{start.Add(-2 * time.Hour), 120, true},
		{start.Add(-time.Hour), 120, true},
		{start.Add(time.Hour), 120, true},
		{start.Add(-time.Second), 0, false},
		{start, 0, true},
	}
	for _, c := range cases {
		if got := withinCancelCutoff(c.now, start, c.cutoff); got != c.want {
			t.Errorf("withinCancelCutoff(%v before start, %d min) = %v, want %v", start.Sub(c.now), c.cutoff, got, c.want)
		}
	}
}

func TestSignupClosedReason(t *testing.T) {
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	open := &Shift{StartsAt: now.Add(time.Minute)}
	if r := signupClosedReason(now, open, false); r != "" {
		t.Fatalf("open shift closed: %s", r)
	}
	if signupClosedReason(now, &Shift{StartsAt: now}, false) == "" {
		t.Fatal("a shift starting now takes sign-ups")
	}
	if signupClosedReason(now, open, true) == "" {
		t.Fatal("a shift of an ended job action takes sign-ups")
	}
	if signupClosedReason(now, &Shift{StartsAt: now.Add(time.Hour), CancelledAt: &now}, false) == "" {
		t.Fatal("a cancelled shift takes sign-ups")
	}
}

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{" Ana@Example.ORG ": "ana@example.org", "a.b+c@x.co": "a.b+c@x.co"}
	for in, want := range good {
		got, err := NormalizeEmail("email", in)
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ana", "ana@", "Ana <ana@example.org>", "ana@localhost"} {
		if _, err := NormalizeEmail("email", in); err == nil {
			t.Errorf("NormalizeEmail(%q) accepted", in)
		}
	}
}

func TestSpotsLeft(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		sh   Shift
		want int
	}{
		{Shift{Capacity: 5, SignedUpCount: 2}, 3},
		{Shift{Capacity: 5, SignedUpCount: 5}, 0},
		{Shift{Capacity: 5, CancelledAt: &now}, 0},
	} {
		if got := c.sh.SpotsLeft(); got != c.want {
			t.Errorf("SpotsLeft(%+v) = %d, want %d", c.sh, got, c.want)
		}
	}
}
