package db_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// Two replicas' names, as each process makes its own at start.
const (
	replicaA = "00000000-0000-4000-8000-00000000000a"
	replicaB = "00000000-0000-4000-8000-00000000000b"
)

// admit opens n connections of a on replica, failing the test unless all
// are admitted, and returns their ids.
func admit(t *testing.T, b *dbtest.Bundle, a db.Actor, replica string, n int) []db.ConnectionID {
	t.Helper()
	var ids []db.ConnectionID
	for range n {
		_, id, err := b.Store.AdmitSession(b.Ctx, db.System, a.SessionID, a.MemberID, replica)
		if err != nil {
			t.Fatalf("connection %d of %d on %s: %v", len(ids)+1, n, replica, err)
		}
		ids = append(ids, id)
	}
	return ids
}

// connectionRefused opens a connection of a on replica that must be refused.
func connectionRefused(t *testing.T, b *dbtest.Bundle, a db.Actor, replica string) {
	t.Helper()
	_, _, err := b.Store.AdmitSession(b.Ctx, db.System, a.SessionID, a.MemberID, replica)
	dbtest.WantCode(t, err, db.CodeRateLimited)
}

func TestConnectionsPerMemberAreCappedAcrossReplicas(t *testing.T) {
	b := setup(t)
	limit := b.Store.Limits().WSConnectionsPerMember
	m := sessionActor(b, b.Member(db.RoleMember))
	onA := admit(t, b, m, replicaA, limit/2)
	admit(t, b, m, replicaB, limit-limit/2)
	connectionRefused(t, b, m, replicaA)
	connectionRefused(t, b, m, replicaB)
	// Another member's connections are their own.
	admit(t, b, sessionActor(b, b.Member(db.RoleMember)), replicaA, limit)
	// One closing frees one slot, on any replica.
	if err := b.Store.EndConnections(b.Ctx, db.System, onA[:1]); err != nil {
		t.Fatal(err)
	}
	admit(t, b, m, replicaB, 1)
	connectionRefused(t, b, m, replicaB)
}

func TestConnectionsPerMemberHoldUnderConcurrentAdmissions(t *testing.T) {
	b := setup(t)
	limit := b.Store.Limits().WSConnectionsPerMember
	m := sessionActor(b, b.Member(db.RoleMember))
	const tries = 200
	var admitted, limited atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tries {
		wg.Go(func() {
			<-start
			replica := replicaA
			if i%2 == 1 {
				replica = replicaB
			}
			_, _, err := b.Store.AdmitSession(b.Ctx, db.System, m.SessionID, m.MemberID, replica)
			switch {
			case err == nil:
				admitted.Add(1)
			case db.ErrorCode(err) == db.CodeRateLimited:
				limited.Add(1)
			default:
				t.Errorf("admission: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if admitted.Load() != int64(limit) || limited.Load() != tries-int64(limit) {
		t.Fatalf("%d admitted and %d refused of %d at once, want %d admitted", admitted.Load(), limited.Load(), tries, limit)
	}
}

func TestStaleReplicasConnectionsStopCounting(t *testing.T) {
	b := setup(t)
	limit := b.Store.Limits().WSConnectionsPerMember
	m := sessionActor(b, b.Member(db.RoleMember))
	// Replica A admits the member's whole allowance, then refreshes only
	// half of it, one interval later, and then dies.
	onA := admit(t, b, m, replicaA, limit)
	b.Clock.Advance(db.ConnectionRefreshInterval)
	if err := b.Store.RefreshConnections(b.Ctx, db.System, onA[:limit/2]); err != nil {
		t.Fatal(err)
	}
	// Up to the end of the window, every row counts.
	b.Clock.Advance(db.ConnectionStaleAfter - db.ConnectionRefreshInterval)
	connectionRefused(t, b, m, replicaB)
	// Past it, the rows left unrefreshed no longer do; the refreshed ones
	// still count until their own window ends.
	b.Clock.Advance(time.Second)
	admit(t, b, m, replicaB, limit-limit/2)
	connectionRefused(t, b, m, replicaB)
	b.Clock.Advance(db.ConnectionRefreshInterval)
	admit(t, b, m, replicaB, limit/2)
	connectionRefused(t, b, m, replicaB)
}

func TestReplicaShutdownFreesItsConnections(t *testing.T) {
	b := setup(t)
	limit := b.Store.Limits().WSConnectionsPerMember
	m, other := sessionActor(b, b.Member(db.RoleMember)), sessionActor(b, b.Member(db.RoleMember))
	admit(t, b, m, replicaA, limit-3)
	admit(t, b, m, replicaB, 3)
	admit(t, b, other, replicaB, 1)
	if err := b.Store.EndReplicaConnections(b.Ctx, db.System, replicaA); err != nil {
		t.Fatal(err)
	}
	admit(t, b, m, replicaB, limit-3)
	connectionRefused(t, b, m, replicaB)
	// Replica B's connections of another member stay counted.
	admit(t, b, other, replicaB, limit-1)
	connectionRefused(t, b, other, replicaB)
}

func TestAdmissionChecksTheSessionInTheSameRoundTrip(t *testing.T) {
	b := setup(t)
	m := sessionActor(b, b.Member(db.RoleCoordinator))
	got, _, err := b.Store.AdmitSession(b.Ctx, db.System, m.SessionID, m.MemberID, replicaA)
	if err != nil || got != m {
		t.Fatalf("a live session admitted as %+v, %v; want %+v", got, err, m)
	}
	other := sessionActor(b, b.Member(db.RoleMember))
	// Another member's session under this member's id, and one logged out.
	_, _, err = b.Store.AdmitSession(b.Ctx, db.System, other.SessionID, m.MemberID, replicaA)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
	if err := b.Store.Logout(b.Ctx, other); err != nil {
		t.Fatal(err)
	}
	_, _, err = b.Store.AdmitSession(b.Ctx, db.System, other.SessionID, other.MemberID, replicaA)
	dbtest.WantCode(t, err, db.CodeUnauthenticated)
	var rows int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM ws_connections`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("%d connections counted, want only the live session's", rows)
	}
}
