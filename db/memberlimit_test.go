package db_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// admitted counts n mutations of actor, failing the test if they are
// refused.
func admitted(t *testing.T, l *db.MutationLimiter, actor db.Actor, n int) {
	t.Helper()
	if err := l.Admit(actor, n); err != nil {
		t.Fatalf("%d mutations refused: %v", n, err)
	}
}

// refused checks that n mutations of actor are refused, with the seconds
// left in the window.
func refused(t *testing.T, l *db.MutationLimiter, actor db.Actor, n, retryAfter int) {
	t.Helper()
	if de := dbtest.WantCode(t, l.Admit(actor, n), db.CodeRateLimited); de.RetryAfterSeconds != retryAfter {
		t.Fatalf("retryAfterSeconds %d, want %d", de.RetryAfterSeconds, retryAfter)
	}
}

func flush(t *testing.T, b *dbtest.Bundle, l *db.MutationLimiter) {
	t.Helper()
	if _, err := l.FlushMutationCounts(b.Ctx, db.System); err != nil {
		t.Fatal(err)
	}
}

// sharedCount is a member's count in member_mutations, in the window
// standing at the bundle's clock.
func sharedCount(t *testing.T, b *dbtest.Bundle, memberID string) int {
	t.Helper()
	var n int
	err := b.Pool.QueryRow(b.Ctx, `SELECT coalesce(sum(mutations), 0) FROM member_mutations WHERE member_id = $1 AND window_start = $2`,
		memberID, b.Clock.Now().Truncate(db.MutationWindow)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMutationLimitRefusesPastTheLimitAndCountsNothingRefused(t *testing.T) {
	b := setup(t)
	l := db.NewMutationLimiter(b.Store, 3)
	member, other := b.NewMember(), b.NewMember()
	b.Clock.Advance(20 * time.Second)
	admitted(t, l, member, 2)
	// An operation of two mutations with one left runs none of them.
	refused(t, l, member, 2, 40)
	admitted(t, l, member, 1)
	refused(t, l, member, 1, 40)
	// Each member has a count of their own; anonymous callers none here.
	admitted(t, l, other, 3)
	for range 10 {
		admitted(t, l, db.Actor{}, 1)
	}
	flush(t, b, l)
	if got := sharedCount(t, b, member.MemberID); got != 3 {
		t.Fatalf("shared count %d, want the 3 admitted", got)
	}
}

func TestMutationLimitWindowRollsOverOnTheStoresClock(t *testing.T) {
	b := setup(t)
	l := db.NewMutationLimiter(b.Store, 2)
	member := b.NewMember()
	b.Clock.Advance(59 * time.Second)
	admitted(t, l, member, 2)
	refused(t, l, member, 1, 1)
	b.Clock.Advance(999 * time.Millisecond)
	refused(t, l, member, 1, 1)
	b.Clock.Advance(time.Millisecond)
	admitted(t, l, member, 2)
	refused(t, l, member, 1, 60)
	// A window that ended before a flush is not written: nobody counts
	// in it any more.
	b.Clock.Advance(time.Minute)
	flush(t, b, l)
	var rows int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM member_mutations`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d windows written (%v), want none", rows, err)
	}
}

func TestMutationLimitOffIsNil(t *testing.T) {
	t.Parallel()
	if l := db.NewMutationLimiter(nil, 0); l != nil {
		t.Fatalf("a limit of 0 made a limiter")
	}
}

// TestMutationLimitIsSharedAcrossReplicas: two limiters on one database,
// as two replicas are, share their counts at each flush, within the
// tolerance MutationLimiter states.
func TestMutationLimitIsSharedAcrossReplicas(t *testing.T) {
	b := setup(t)
	a := db.NewMutationLimiter(b.Store, 5)
	other := db.NewMutationLimiter(db.NewStore(b.Pool, b.Clock, dbtest.Pepper), 5)
	member := b.NewMember()
	admitted(t, a, member, 3)
	flush(t, b, a)
	// The other replica has not heard of the member: until its flush it
	// counts only what it admits itself.
	admitted(t, other, member, 2)
	flush(t, b, other)
	refused(t, other, member, 1, 60)
	// The first replica last heard 3; it admits one more before its flush
	// tells it of the other's two (the tolerance), then refuses too.
	admitted(t, a, member, 1)
	flush(t, b, a)
	refused(t, a, member, 1, 60)
	if got := sharedCount(t, b, member.MemberID); got != 6 {
		t.Fatalf("shared count %d, want 6", got)
	}
}

// TestMutationLimitAdmitsExactlyTheLimitOnOneReplica races many
// operations of one member on one replica, with flushes of two replicas
// going on meanwhile (two at once on the first), all adding to other
// members' rows: exactly the limit is admitted, and the shared count says
// so.
func TestMutationLimitAdmitsExactlyTheLimitOnOneReplica(t *testing.T) {
	b := setup(t)
	const limit = 50
	l := db.NewMutationLimiter(b.Store, limit)
	other := db.NewMutationLimiter(db.NewStore(b.Pool, b.Clock, dbtest.Pepper), limit)
	member := b.NewMember()
	var crowd []db.Actor
	for range 5 {
		crowd = append(crowd, b.NewMember())
	}
	var ok atomic.Int64
	var admits, flushes sync.WaitGroup
	start, done := make(chan struct{}), make(chan struct{})
	for range 4 * limit {
		admits.Go(func() {
			<-start
			if l.Admit(member, 1) == nil {
				ok.Add(1)
			}
		})
	}
	for _, replica := range []*db.MutationLimiter{l, l, other} {
		flushes.Go(func() {
			<-start
			for {
				for _, m := range crowd {
					replica.Admit(m, 1)
				}
				if _, err := replica.FlushMutationCounts(b.Ctx, db.System); err != nil {
					t.Error(err)
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		})
	}
	close(start)
	admits.Wait()
	close(done)
	flushes.Wait()
	if got := ok.Load(); got != limit {
		t.Fatalf("%d of %d racing mutations admitted, want %d", got, 4*limit, limit)
	}
	flush(t, b, l)
	if got := sharedCount(t, b, member.MemberID); got != limit {
		t.Fatalf("shared count %d, want the %d admitted", got, limit)
	}
}

func TestFailedFlushKeepsItsCountsForTheNext(t *testing.T) {
	b := setup(t)
	l := db.NewMutationLimiter(b.Store, 10)
	member := b.NewMember()
	admitted(t, l, member, 4)
	cancelled, cancel := context.WithCancel(b.Ctx)
	cancel()
	if _, err := l.FlushMutationCounts(cancelled, db.System); err == nil {
		t.Fatal("a flush without a database succeeded")
	}
	admitted(t, l, member, 6)
	refused(t, l, member, 1, 60)
	flush(t, b, l)
	if diff := cmp.Diff(10, sharedCount(t, b, member.MemberID)); diff != "" {
		t.Fatalf("shared count (-want +got):\n%s", diff)
	}
}
