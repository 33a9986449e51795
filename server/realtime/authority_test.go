package realtime

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// testViewer is a subscriber's connection with a fixed member.
type testViewer struct{ actor db.Actor }

func (v testViewer) Actor() db.Actor { return v.actor }
func (testViewer) Drop(string)       {}

// governed is a fixture whose hub and authority run, on the fake clock. The
// store tells the hub of new events only: the authority hears of changed
// rights solely through the line's stream and its own periodic check.
func governed(t *testing.T) (*fixture, *Authority, *Conns) {
	t.Helper()
	f := newFixture(t, nil)
	conns := NewConns(f.Clock)
	a := NewAuthority(f.Store, f.hub, conns, f.Clock, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(f.Ctx)
	t.Cleanup(cancel)
	go f.hub.Run(ctx)
	go a.Run(ctx)
	// The hub's poll and the authority's check.
	if err := f.Clock.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	return f, a, conns
}

// watcher subscribes to the fixture's line as actor and returns its events
// and the error it ends with.
func (f *fixture) watcher(actor db.Actor) (<-chan *db.LineEvent, <-chan *gqlerror.Error) {
	ended := make(chan *gqlerror.Error, 1)
	ctx := context.WithValue(WithViewer(f.Ctx, testViewer{actor}), endKey{}, func(err *gqlerror.Error) { ended <- err })
	latest, err := f.Store.WatchLine(f.Ctx, actor, f.line.ID)
	if err != nil {
		f.T.Fatalf("watch line: %v", err)
	}
	return f.hub.LineEvents(ctx, f.line.ID, latest), ended
}

// onSession is a member of the fixture's store on a real session.
func (f *fixture) onSession(role db.Role) db.Actor {
	a := f.Actor(f.Member(role))
	a.SessionID = f.Session(a.MemberID).ID
	return a
}

func (f *fixture) announce(body string) {
	f.T.Helper()
	if _, err := f.Store.PostAnnouncement(f.Ctx, f.Staff, db.NewAnnouncement{PicketLineID: &f.line.ID, Body: body}); err != nil {
		f.T.Fatalf("announce: %v", err)
	}
}

// untilEnd reads events until the subscription ends, and fails if one of
// kind refused arrives first or it does not end with FORBIDDEN.
func untilEnd(t *testing.T, events <-chan *db.LineEvent, ended <-chan *gqlerror.Error, refused db.LineEventKind) []db.LineEventKind {
	t.Helper()
	var kinds []db.LineEventKind
	for {
		select {
		case e, ok := <-events:
			if !ok {
				select {
				case err := <-ended:
					if err.Extensions["code"] != string(db.CodeForbidden) {
						t.Fatalf("ended with %v, want FORBIDDEN", err)
					}
				default:
					t.Fatal("the subscription ended with no error")
				}
				return kinds
			}
			if e.Kind == refused {
				t.Fatalf("delivered %s after the right to the line ended (events so far %v)", e.Kind, kinds)
			}
			kinds = append(kinds, e.Kind)
		case <-time.After(10 * time.Second):
			t.Fatalf("the subscription did not end; events %v", kinds)
		}
	}
}

func TestAnEventThatRevokesHoldsItsMembersSubscriptionUntilChecked(t *testing.T) {
	f, _, _ := governed(t)
	m := f.onSession(db.RoleMember)
	su := f.SignUp(m, f.shift)
	events, ended := f.watcher(m)
	if _, err := f.Store.CancelSignup(f.Ctx, m, su.ID); err != nil {
		t.Fatal(err)
	}
	f.announce("Where the picket moves next")
	kinds := untilEnd(t, events, ended, db.LineAnnouncement)
	if len(kinds) != 1 || kinds[0] != db.LineSignupChanged {
		t.Errorf("delivered %v, want the member's own cancellation alone", kinds)
	}
}

func TestAnEventThatRevokesOthersDoesNotHoldTheRest(t *testing.T) {
	f, _, _ := governed(t)
	m, stays := f.onSession(db.RoleMember), f.onSession(db.RoleMember)
	su := f.SignUp(m, f.shift)
	f.SignUp(stays, f.shift)
	events, _ := f.watcher(stays)
	if _, err := f.Store.CancelSignup(f.Ctx, m, su.ID); err != nil {
		t.Fatal(err)
	}
	f.announce("Still here")
	for {
		select {
		case e := <-events:
			if e.Kind == db.LineAnnouncement {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the announcement never reached a member who kept their sign-up")
		}
	}
}

func TestTheCheckFindsRightsLostWithoutNotice(t *testing.T) {
	f, _, _ := governed(t)
	c := f.onSession(db.RoleCoordinator)
	events, ended := f.watcher(c)
	admin := f.Actor(f.Member(db.RoleAdmin))
	// A role change names no line: with no NOTIFY heard, only the periodic
	// check finds it.
	if _, err := f.Store.SetMemberRole(f.Ctx, admin, c.MemberID, db.RoleMember); err != nil {
		t.Fatal(err)
	}
	f.announce("Before the check")
	select {
	case e := <-events:
		if e.Kind != db.LineAnnouncement {
			t.Fatalf("got %s, want the announcement", e.Kind)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no announcement before the check")
	}
	f.Clock.Advance(CheckInterval)
	untilEnd(t, events, ended, db.LineAnnouncement)
}

func TestTheCheckClosesSocketsWhoseSessionEnded(t *testing.T) {
	f, _, conns := governed(t)
	m := f.onSession(db.RoleMember)
	u := &Upgrader{InitTimeout: 24 * time.Hour, PingInterval: time.Hour, MaxSubscriptions: 1, MaxMessageBytes: 1 << 10, Conns: conns}
	url, accepted, _ := keepAliveServer(t, u, func(c *Conn) { c.Authenticated(m, f.Clock.Now().Add(24*time.Hour)) })
	failed := readAll(dial(t, url, 0, accepted))
	// Logged out with no NOTIFY heard.
	if err := f.Store.Logout(f.Ctx, m); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(CheckInterval)
	if code := closeCode(t, failed); code != CloseForbidden {
		t.Fatalf("closed with %d, want %d", code, CloseForbidden)
	}
}

// TestAFailedCheckIsTriedAgainOnTheNextTick: the database failing a check
// leaves its members held, and the next tick checks them again.
func TestAFailedCheckIsTriedAgainOnTheNextTick(t *testing.T) {
	f := newFixture(t, nil)
	// The authority's store reaches the same database through a pool the
	// test can break; the hub's and the kit's keep working.
	cfg, err := pgxpool.ParseConfig(f.Pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	var broken atomic.Bool
	failed := make(chan struct{}, 1)
	cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) {
		if !broken.Load() {
			return true, nil
		}
		select {
		case failed <- struct{}{}:
		default:
		}
		return true, errors.New("the database is away")
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	a := NewAuthority(db.NewStore(pool, f.Clock, dbtest.Pepper), f.hub, NewConns(f.Clock), f.Clock, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(f.Ctx)
	t.Cleanup(cancel)
	go f.hub.Run(ctx)
	go a.Run(ctx)
	if err := f.Clock.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	m := f.onSession(db.RoleMember)
	su := f.SignUp(m, f.shift)
	events, ended := f.watcher(m)
	broken.Store(true)
	if _, err := f.Store.CancelSignup(f.Ctx, m, su.ID); err != nil {
		t.Fatal(err)
	}
	// The cancellation's event holds the member, and its check fails.
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("no check was tried")
	}
	broken.Store(false)
	f.announce("While the check failed")
	f.Clock.Advance(CheckInterval)
	untilEnd(t, events, ended, db.LineAnnouncement)
}
