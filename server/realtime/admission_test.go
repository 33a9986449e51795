package realtime

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// TestRefreshKeepsOnlyOpenConnectionsCounting: a replica's refresh keeps
// its open connections counting past the window, while a closed one whose
// row was never deleted (Run was not there to do it) goes stale.
func TestRefreshKeepsOnlyOpenConnectionsCounting(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	a := NewAdmission(b.Store, b.Clock, slog.New(slog.DiscardHandler), 20, 5*time.Second)
	member := b.NewMember()
	member.SessionID = b.Session(member.MemberID).ID
	connect := func() *admission {
		t.Helper()
		adm := &admission{owner: a}
		if !a.begin(adm) {
			t.Fatal("handshake refused")
		}
		if _, err := a.Admit(context.WithValue(b.Ctx, admissionKey{}, adm), member.SessionID, member.MemberID); err != nil {
			t.Fatal(err)
		}
		return adm
	}
	open, closed := connect(), connect()
	a.release(closed, false)
	b.Clock.Advance(db.ConnectionRefreshInterval)
	if err := a.refresh(b.Ctx); err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(db.ConnectionStaleAfter - db.ConnectionRefreshInterval + time.Second)
	limit := b.Store.Limits().WSConnectionsPerMember
	for i := range limit - 1 {
		if _, _, err := b.Store.AdmitSession(b.Ctx, db.System, member.SessionID, member.MemberID, "00000000-0000-4000-8000-000000000002"); err != nil {
			t.Fatalf("connection %d besides the open one: %v", i+1, err)
		}
	}
	_, _, err := b.Store.AdmitSession(b.Ctx, db.System, member.SessionID, member.MemberID, "00000000-0000-4000-8000-000000000002")
	dbtest.WantCode(t, err, db.CodeRateLimited)
	if a.pending[""] != 0 || open.pending {
		t.Fatalf("admitted connections still count as handshakes: %v", a.pending)
	}
}
