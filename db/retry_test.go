package db_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// lineCounter counts the wake-ups the store sends for lines.
type lineCounter struct {
	db.NoNotifier
	mu    sync.Mutex
	woken int
}

func (n *lineCounter) LinesChanged(...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.woken++
}

// failSignUps makes the next n inserts of a sign-up in the bundle's
// database fail with code, as PostgreSQL fails a transaction it aborts. The
// count lives in a sequence, which a rollback does not undo.
func failSignUps(t *testing.T, b *dbtest.Bundle, n int, code string) {
	t.Helper()
	for _, stmt := range []string{
		`CREATE SEQUENCE forced_failures`,
		`CREATE FUNCTION force_failure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('forced_failures') <= ` + strconv.Itoa(n) + ` THEN
        RAISE EXCEPTION 'forced by the test' USING ERRCODE = '` + code + `';
    END IF;
    RETURN NEW;
END $$`,
		`CREATE TRIGGER force_failure AFTER INSERT ON signups FOR EACH ROW EXECUTE FUNCTION force_failure()`,
	} {
		if _, err := b.Pool.Exec(b.Ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// wantOneSignup checks that sh holds exactly one sign-up, counted once,
// and that its line's events count only one attempt's.
func wantOneSignup(t *testing.T, b *dbtest.Bundle, sh *db.Shift, eventsBefore int64) {
	t.Helper()
	var rows int
	var events, seq int64
	if err := b.Pool.QueryRow(b.Ctx, `
SELECT (SELECT count(*) FROM signups WHERE shift_id = $1),
       (SELECT count(*) FROM line_events WHERE picket_line_id = $2),
       (SELECT event_seq FROM picket_lines WHERE id = $2)`, sh.ID, sh.PicketLineID).Scan(&rows, &events, &seq); err != nil {
		t.Fatal(err)
	}
	if got := b.ReloadShift(sh.ID).SignedUpCount; rows != 1 || got != 1 {
		t.Errorf("%d sign-ups, %d counted; want one of each", rows, got)
	}
	if events != seq || events != eventsBefore+1 {
		t.Errorf("%d line events numbered up to %d after %d; want one more, numbered without a gap", events, seq, eventsBefore)
	}
}

func lineEventCount(t *testing.T, b *dbtest.Bundle, lineID string) int64 {
	t.Helper()
	var n int64
	if err := b.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM line_events WHERE picket_line_id = $1`, lineID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUseCasesRetryWholeTransactionsPostgreSQLAborts(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"40001", "40P01"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			b := dbtest.Setup(t)
			sh := b.Shift(5)
			before := lineEventCount(t, b, sh.PicketLineID)
			n := &lineCounter{}
			b.Store.SetNotifier(n)
			failSignUps(t, b, 3, code)
			su, err := b.Store.SignUpForShift(b.Ctx, b.NewMember(), sh.ID, "")
			if err != nil || su.Status != db.SignupSignedUp {
				t.Fatalf("sign-up after three aborted attempts: %+v, %v", su, err)
			}
			wantOneSignup(t, b, sh, before)
			if n.woken != 1 {
				t.Errorf("the lines were woken %d times, want once, after the commit", n.woken)
			}
		})
	}
	t.Run("gives up after its attempts, writing nothing", func(t *testing.T) {
		t.Parallel()
		b := dbtest.Setup(t)
		sh := b.Shift(5)
		before := lineEventCount(t, b, sh.PicketLineID)
		n := &lineCounter{}
		b.Store.SetNotifier(n)
		failSignUps(t, b, 1000, "40001")
		if _, err := b.Store.SignUpForShift(b.Ctx, b.NewMember(), sh.ID, ""); err == nil {
			t.Fatal("a sign-up whose every attempt was aborted succeeded")
		}
		if got := b.ReloadShift(sh.ID).SignedUpCount; got != 0 || lineEventCount(t, b, sh.PicketLineID) != before || n.woken != 0 {
			t.Errorf("after giving up: %d counted, events %d (before %d), woken %d; want nothing", got, lineEventCount(t, b, sh.PicketLineID), before, n.woken)
		}
	})
}

// TestASignUpCaughtInARealDeadlockIsRetried makes PostgreSQL find a real
// deadlock: the test holds the line's row and then reaches for the shift's,
// which the sign-up holds while it waits for the line's. The sign-up's
// backend, waiting longer, is the one PostgreSQL aborts; the sign-up runs
// again once the test lets go, and is written once.
func TestASignUpCaughtInARealDeadlockIsRetried(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	sh := b.Shift(5)
	before := lineEventCount(t, b, sh.PicketLineID)
	holder, err := b.Pool.Begin(b.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(context.Background())
	// The test's backend checks for a deadlock only long after the
	// sign-up's does: the sign-up is the one aborted.
	if _, err := holder.Exec(b.Ctx, `SET LOCAL deadlock_timeout = '60s'`); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(b.Ctx, `SELECT 1 FROM picket_lines WHERE id = $1 FOR UPDATE`, sh.PicketLineID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var su *db.Signup
	go func() {
		var err error
		su, err = b.Store.SignUpForShift(b.Ctx, b.NewMember(), sh.ID, "")
		done <- err
	}()
	// The sign-up holds the shift and waits for the line. Reaching for
	// the shift closes the circle: this returns only once PostgreSQL has
	// aborted the sign-up's transaction to break it.
	b.WaitForLockWait()
	if _, err := holder.Exec(b.Ctx, `SELECT 1 FROM shifts WHERE id = $1 FOR UPDATE`, sh.ID); err != nil {
		t.Fatalf("the test's side of the deadlock was aborted instead: %v", err)
	}
	if err := holder.Commit(b.Ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || su.Status != db.SignupSignedUp {
		t.Fatalf("the sign-up caught in the deadlock: %+v, %v", su, err)
	}
	wantOneSignup(t, b, sh, before)
}
