package db_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// bundle is what a domain test needs: a store on its own database, a clock
// it can move, and factories.
type bundle struct {
	t     *testing.T
	ctx   context.Context
	store *db.Store
	clock *dbtest.Clock
	staff db.Actor
}

var seq atomic.Int64

func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	pool := dbtest.NewPool(t)
	clock := dbtest.NewClock(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	b := &bundle{t: t, ctx: context.Background(), store: db.NewStore(pool, clock, []byte("test pepper")), clock: clock}
	b.staff = b.actor(b.member(db.RoleCoordinator))
	return b
}

func (b *bundle) member(role db.Role) *db.Member {
	b.t.Helper()
	n := seq.Add(1)
	m, err := b.store.AddMember(b.ctx, db.NewMember{
		Name:  fmt.Sprintf("Member %d", n),
		Email: fmt.Sprintf("member%d@example.org", n),
		Phone: fmt.Sprintf("+1 780 555 %04d", n%10000),
		Role:  role,
	})
	if err != nil {
		b.t.Fatalf("add member: %v", err)
	}
	return m
}

func (b *bundle) actor(m *db.Member) db.Actor {
	return db.Actor{MemberID: m.ID, Role: m.Role, SessionID: "00000000-0000-0000-0000-000000000000"}
}

func (b *bundle) newMember() db.Actor { return b.actor(b.member(db.RoleMember)) }

func (b *bundle) jobAction() *db.JobAction {
	b.t.Helper()
	ja, err := b.store.CreateJobAction(b.ctx, b.staff, db.NewJobAction{Name: "Health Care Strike", Kind: db.KindStrike, Employer: "Chinook Regional Health", StartsAt: b.clock.Now()})
	if err != nil {
		b.t.Fatalf("create job action: %v", err)
	}
	return ja
}

func (b *bundle) line() *db.PicketLine {
	b.t.Helper()
	l, err := b.store.CreatePicketLine(b.ctx, b.staff, db.NewPicketLine{JobActionID: b.jobAction().ID, Name: "Main Gate", Address: "10240 Kingsway NW, Edmonton", Latitude: 53.55, Longitude: -113.49})
	if err != nil {
		b.t.Fatalf("create line: %v", err)
	}
	return l
}

// shiftOn creates a shift on line starting in `in` from now, lasting 4 hours.
func (b *bundle) shiftOn(line *db.PicketLine, in time.Duration, capacity int) *db.Shift {
	b.t.Helper()
	start := b.clock.Now().Add(in)
	sh, err := b.store.CreateShift(b.ctx, b.staff, db.NewShift{PicketLineID: line.ID, StartsAt: start, EndsAt: start.Add(4 * time.Hour), Capacity: capacity})
	if err != nil {
		b.t.Fatalf("create shift: %v", err)
	}
	return sh
}

func (b *bundle) shift(capacity int) *db.Shift { return b.shiftOn(b.line(), 24*time.Hour, capacity) }

func (b *bundle) captainOf(line *db.PicketLine) db.Actor {
	b.t.Helper()
	a := b.newMember()
	if _, err := b.store.AssignCaptain(b.ctx, b.staff, line.ID, a.MemberID); err != nil {
		b.t.Fatalf("assign captain: %v", err)
	}
	return a
}

func (b *bundle) signUp(a db.Actor, sh *db.Shift) *db.Signup {
	b.t.Helper()
	su, err := b.store.SignUpForShift(b.ctx, a, sh.ID, "")
	if err != nil {
		b.t.Fatalf("sign up: %v", err)
	}
	return su
}

func (b *bundle) reloadShift(id string) *db.Shift {
	b.t.Helper()
	m, err := b.store.ShiftsByIDs(b.ctx, b.staff, []string{id})
	if err != nil || m[id] == nil {
		b.t.Fatalf("load shift %s: %v", id, err)
	}
	return m[id]
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code db.Code) {
	t.Helper()
	if got := db.ErrorCode(err); got != code || err == nil {
		t.Fatalf("got error %v (code %s), want code %s", err, got, code)
	}
}

func mustNot(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		var de *db.Error
		if errors.As(err, &de) {
			t.Fatalf("unexpected %s: %s", de.Code, de.Message)
		}
		t.Fatalf("unexpected error: %v", err)
	}
}
