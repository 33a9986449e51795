package dbtest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/picketline/picketline/db"
)

// Epoch is where a bundle's fake clock starts: a Monday morning, so that
// shifts a day or a week ahead fall on ordinary working days.
var Epoch = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// Pepper keys the login-code hashes of every test store.
var Pepper = []byte("test pepper")

// Bundle is what a test needs (River's setup-bundle shape): a store on a
// database of its own, the fake clock the store runs on, a coordinator to
// set things up with, and factories for the rest. Every factory fails the
// test on error, so a test reads as the rule it checks.
type Bundle struct {
	T     testing.TB
	Ctx   context.Context
	Pool  *pgxpool.Pool
	Store *db.Store
	Clock *clockwork.FakeClock
	// Staff is a coordinator: it may create job actions, lines and shifts.
	Staff db.Actor
}

// Options changes what Setup builds.
type Options struct {
	// Pool is the database to use; a fresh one when nil.
	Pool *pgxpool.Pool
	// Now is where the clock starts; Epoch when zero.
	Now time.Time
}

// Setup returns a bundle on a fresh database. It does not call t.Parallel:
// that stays the test's own choice.
func Setup(tb testing.TB) *Bundle {
	tb.Helper()
	return SetupWith(tb, Options{})
}

// SetupWith is Setup with options.
func SetupWith(tb testing.TB, o Options) *Bundle {
	tb.Helper()
	if o.Pool == nil {
		o.Pool = NewPool(tb)
	}
	if o.Now.IsZero() {
		o.Now = Epoch
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	clock := NewClock(o.Now)
	b := &Bundle{T: tb, Ctx: ctx, Pool: o.Pool, Store: db.NewStore(o.Pool, clock, Pepper), Clock: clock}
	b.Staff = b.Actor(b.Member(db.RoleCoordinator))
	return b
}

// For returns the bundle with its factories failing tb, for subtests that
// share their parent's setup: a factory must fail the test it runs in.
func (b *Bundle) For(tb testing.TB) *Bundle {
	c := *b
	c.T = tb
	return &c
}

var seq atomic.Int64

// Member adds a member with a unique name, email and phone.
func (b *Bundle) Member(role db.Role) *db.Member {
	b.T.Helper()
	n := seq.Add(1)
	m, err := b.Store.AddMember(b.Ctx, db.System, db.NewMember{
		Name:  fmt.Sprintf("Member %d", n),
		Email: fmt.Sprintf("member%d@example.org", n),
		Phone: fmt.Sprintf("+1 780 555 %04d", n%10000),
		Role:  role,
	})
	if err != nil {
		b.T.Fatalf("add member: %v", err)
	}
	return m
}

// Actor is m as a caller, on a session that the store never checks (only
// the HTTP layer turns tokens into sessions).
func (b *Bundle) Actor(m *db.Member) db.Actor {
	return db.Actor{MemberID: m.ID, Role: m.Role, SessionID: "00000000-0000-0000-0000-000000000000"}
}

// NewMember adds an ordinary member and returns it as a caller.
func (b *Bundle) NewMember() db.Actor { return b.Actor(b.Member(db.RoleMember)) }

// JobAction creates a strike that started at the clock's now.
func (b *Bundle) JobAction() *db.JobAction {
	b.T.Helper()
	ja, err := b.Store.CreateJobAction(b.Ctx, b.Staff, db.NewJobAction{Name: "Health Care Strike", Kind: db.KindStrike, Employer: "Chinook Regional Health", StartsAt: b.Clock.Now()})
	if err != nil {
		b.T.Fatalf("create job action: %v", err)
	}
	return ja
}

// LineOf creates a picket line of job action ja.
func (b *Bundle) LineOf(ja *db.JobAction) *db.PicketLine {
	b.T.Helper()
	l, err := b.Store.CreatePicketLine(b.Ctx, b.Staff, db.NewPicketLine{JobActionID: ja.ID, Name: "Main Gate", Address: "10240 Kingsway NW, Edmonton", Latitude: 53.55, Longitude: -113.49})
	if err != nil {
		b.T.Fatalf("create line: %v", err)
	}
	return l
}

// Line creates a picket line of a new job action.
func (b *Bundle) Line() *db.PicketLine {
	b.T.Helper()
	return b.LineOf(b.JobAction())
}

// ShiftOn creates a shift on line starting in `in` from the clock's now,
// lasting 4 hours.
func (b *Bundle) ShiftOn(line *db.PicketLine, in time.Duration, capacity int) *db.Shift {
	b.T.Helper()
	start := b.Clock.Now().Add(in)
	sh, err := b.Store.CreateShift(b.Ctx, b.Staff, db.NewShift{PicketLineID: line.ID, StartsAt: start, EndsAt: start.Add(4 * time.Hour), Capacity: capacity})
	if err != nil {
		b.T.Fatalf("create shift: %v", err)
	}
	return sh
}

// Shift creates a shift a day ahead on a new line.
func (b *Bundle) Shift(capacity int) *db.Shift {
	b.T.Helper()
	return b.ShiftOn(b.Line(), 24*time.Hour, capacity)
}

// CaptainOf adds a member and makes them captain of line.
func (b *Bundle) CaptainOf(line *db.PicketLine) db.Actor {
	b.T.Helper()
	a := b.NewMember()
	b.MakeCaptain(a, line)
	return a
}

// MakeCaptain makes a, a member already, captain of line.
func (b *Bundle) MakeCaptain(a db.Actor, line *db.PicketLine) {
	b.T.Helper()
	if _, err := b.Store.AssignCaptain(b.Ctx, b.Staff, line.ID, a.MemberID); err != nil {
		b.T.Fatalf("assign captain: %v", err)
	}
}

// SignUp signs a up for sh.
func (b *Bundle) SignUp(a db.Actor, sh *db.Shift) *db.Signup {
	b.T.Helper()
	su, err := b.Store.SignUpForShift(b.Ctx, a, sh.ID, "")
	if err != nil {
		b.T.Fatalf("sign up: %v", err)
	}
	return su
}

// Session starts a session for the member, as signing in does.
func (b *Bundle) Session(memberID string) *db.Session {
	b.T.Helper()
	sess, err := b.Store.StartSession(b.Ctx, db.System, memberID)
	if err != nil {
		b.T.Fatalf("start session: %v", err)
	}
	return sess
}

// ReloadShift reads a shift again, as staff sees it.
func (b *Bundle) ReloadShift(id string) *db.Shift {
	b.T.Helper()
	m, err := b.Store.ShiftsByIDs(b.Ctx, b.Staff, []string{id})
	if err != nil || m[id] == nil {
		b.T.Fatalf("load shift %s: %v", id, err)
	}
	return m[id]
}

// WantCode fails the test unless err carries code. It returns the
// *db.Error, for a test to check its field or retry time; nil for an
// internal error that is not one.
func WantCode(tb testing.TB, err error, code db.Code) *db.Error {
	tb.Helper()
	if got := db.ErrorCode(err); got != code || err == nil {
		tb.Fatalf("got error %v (code %s), want code %s", err, got, code)
	}
	var de *db.Error
	errors.As(err, &de)
	return de
}
