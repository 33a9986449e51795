package db_test

import (
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestUrgentPushesAreLimitedPerPoster(t *testing.T) {
	b := setup(t)
	line := b.Line()
	limit := b.Store.Limits().UrgentPerHour
	announce := func(poster db.Actor, urgent bool) error {
		_, err := b.Store.PostAnnouncement(b.Ctx, poster, db.NewAnnouncement{PicketLineID: &line.ID, Body: "Bring water", Urgent: urgent})
		return err
	}
	// Each call is for a shift of its own, so the limit per shift is not
	// the one that refuses.
	callForCoverage := func(poster db.Actor) error {
		_, err := b.Store.CallForCoverage(b.Ctx, poster, b.ShiftOn(line, 24*time.Hour, 2).ID, "")
		return err
	}
	wantLimited := func(what string, err error) {
		t.Helper()
		de := dbtest.WantCode(t, err, db.CodeRateLimited)
		if de.RetryAfterSeconds <= 0 || de.RetryAfterSeconds > 3600 {
			t.Fatalf("%s: retryAfterSeconds %d, want 1 to 3600", what, de.RetryAfterSeconds)
		}
	}
	// Captains and coordinators alike; the second is not held back by the
	// first one's count.
	for _, poster := range []struct {
		name  string
		actor db.Actor
	}{{"captain", b.CaptainOf(line)}, {"coordinator", b.Staff}} {
		for i := range limit {
			var err error
			if i%2 == 0 {
				err = announce(poster.actor, true)
			} else {
				err = callForCoverage(poster.actor)
			}
			if err != nil {
				t.Fatalf("%s's urgent push %d: %v", poster.name, i+1, err)
			}
		}
		wantLimited(poster.name+"'s urgent announcement past the limit", announce(poster.actor, true))
		wantLimited(poster.name+"'s coverage call past the limit", callForCoverage(poster.actor))
		if err := announce(poster.actor, false); err != nil {
			t.Fatalf("%s's ordinary announcement: %v", poster.name, err)
		}
	}
	b.Clock.Advance(time.Hour)
	if err := announce(b.Staff, true); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
}
