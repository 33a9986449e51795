package dbtest

import "time"

// lockWaitSQL finds a backend of the bundle's database waiting for a lock.
const lockWaitSQL = `
SELECT EXISTS (SELECT 1 FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock')`

// WaitForLockWait returns once a statement on the bundle's database waits
// for a lock, as one does behind a row the test holds locked. PostgreSQL
// tells no one when a backend starts to wait, and the waiting request
// shows nothing before it ends: pg_stat_activity is the only place to see
// it, so this looks there every few milliseconds, for at most ten seconds.
func (b *Bundle) WaitForLockWait() {
	b.T.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		if err := b.Pool.QueryRow(b.Ctx, lockWaitSQL).Scan(&waiting); err != nil {
			b.T.Fatal(err)
		}
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			b.T.Fatal("no statement came to wait for a lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
