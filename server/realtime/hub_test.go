package realtime

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// recordingDropper counts how often a subscription's connection was cut.
type recordingDropper struct{ drops atomic.Int32 }

func (d *recordingDropper) Drop(string) { d.drops.Add(1) }

type fixture struct {
	ctx    context.Context
	store  *db.Store
	hub    *Hub
	staff  db.Actor
	lineID string
	shift  *db.Shift
}

func setup(t *testing.T) *fixture {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store := db.NewStore(dbtest.NewPool(t), nil, []byte("pepper"))
	hub := NewHub(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	store.SetNotifier(hubNotifier{hub})
	go hub.Run(ctx)
	f := &fixture{ctx: ctx, store: store, hub: hub}
	coordinator, err := store.AddMember(ctx, db.NewMember{Name: "Dana", Email: "dana@example.org", Role: db.RoleCoordinator})
	if err != nil {
		t.Fatal(err)
	}
	f.staff = db.Actor{MemberID: coordinator.ID, Role: db.RoleCoordinator}
	ja, err := store.CreateJobAction(ctx, f.staff, db.NewJobAction{Name: "Strike", Kind: db.KindStrike, Employer: "E", StartsAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	line, err := store.CreatePicketLine(ctx, f.staff, db.NewPicketLine{JobActionID: ja.ID, Name: "Gate", Address: "1 Main", Latitude: 1, Longitude: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.lineID = line.ID
	start := time.Now().Add(24 * time.Hour)
	if f.shift, err = store.CreateShift(ctx, f.staff, db.NewShift{PicketLineID: line.ID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 10}); err != nil {
		t.Fatal(err)
	}
	return f
}

// hubNotifier wakes the hub directly, as the Notifier does in-process.
type hubNotifier struct{ hub *Hub }

func (n hubNotifier) LinesChanged(ids ...string)   { n.hub.WakeLines(ids...) }
func (n hubNotifier) MembersChanged(ids ...string) { n.hub.WakeMembers(ids...) }
func (n hubNotifier) PushQueued()                  {}

// changeLine makes n changes to the line, each one event.
func (f *fixture) changeLine(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		capacity := 11 + i
		if _, err := f.store.UpdateShift(f.ctx, f.staff, db.ShiftUpdate{ID: f.shift.ID, Capacity: &capacity}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSlowSubscriberIsCutOffWithoutSlowingOthers(t *testing.T) {
	f := setup(t)
	slowDropper, fastDropper := &recordingDropper{}, &recordingDropper{}
	slowCtx, cancelSlow := context.WithCancel(WithDropper(f.ctx, slowDropper))
	defer cancelSlow()
	slow := f.hub.LineEvents(slowCtx, f.lineID, 0)
	fast := f.hub.LineEvents(WithDropper(f.ctx, fastDropper), f.lineID, 0)

	const changes = SubscriberBuffer + 50
	received := make(chan int64, changes+10)
	go func() {
		for e := range fast {
			received <- e.Seq
		}
		close(received)
	}()
	f.changeLine(t, changes)

	// The subscriber that reads gets every event, in order.
	var want int64 = 1
	deadline := time.After(30 * time.Second)
	for want <= changes {
		select {
		case seq, ok := <-received:
			if !ok {
				t.Fatalf("the reading subscriber was cut off after seq %d", want-1)
			}
			if seq != want {
				t.Fatalf("got seq %d, want %d", seq, want)
			}
			want++
		case <-deadline:
			t.Fatalf("the reading subscriber got %d of %d events", want-1, changes)
		}
	}
	// The one that never read filled its buffer and was dropped: its
	// channel is closed after the buffered events, and its connection cut.
	n := 0
	for range slow {
		n++
	}
	if n != SubscriberBuffer {
		t.Fatalf("the slow subscriber had %d events buffered, want %d", n, SubscriberBuffer)
	}
	if slowDropper.drops.Load() != 1 || fastDropper.drops.Load() != 0 {
		t.Fatalf("drops: slow %d, fast %d", slowDropper.drops.Load(), fastDropper.drops.Load())
	}
}

func TestResumeReplaysFromTheCursorThenFollowsLive(t *testing.T) {
	f := setup(t)
	f.changeLine(t, 5) // the line now has seq 1..5 (creation) + 5 more
	line, err := f.store.PicketLinesByIDs(f.ctx, f.staff, []string{f.lineID})
	if err != nil {
		t.Fatal(err)
	}
	latest := line[f.lineID].EventSeq
	ch := f.hub.LineEvents(f.ctx, f.lineID, latest-3)
	f.changeLine(t, 2)
	for want := latest - 2; want <= latest+2; want++ {
		select {
		case e := <-ch:
			if e.Seq != want {
				t.Fatalf("got seq %d, want %d", e.Seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %d", want)
		}
	}
}

func TestPurgedCursorAsksForResync(t *testing.T) {
	f := setup(t)
	f.changeLine(t, 3)
	if _, err := f.store.Pool().Exec(f.ctx, `DELETE FROM line_events WHERE picket_line_id = $1 AND seq <= 3`, f.lineID); err != nil {
		t.Fatal(err)
	}
	ch := f.hub.LineEvents(f.ctx, f.lineID, 1)
	select {
	case e := <-ch:
		if e.Kind != db.LineResyncRequired || e.Seq != 3 {
			t.Fatalf("first event %+v, want RESYNC_REQUIRED at seq 3", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no resync event")
	}
	if e := <-ch; e.Seq != 4 {
		t.Fatalf("after the resync: seq %d, want 4", e.Seq)
	}
}

func TestNoSubscriberLeftRetiresTheTopic(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(f.ctx)
	ch := f.hub.LineEvents(ctx, f.lineID, 0)
	cancel()
	for range ch {
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.hub.mu.Lock()
		n := len(f.hub.lines)
		f.hub.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d line topics left after the last subscriber went", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMemberEventsSkipAPurgedGap(t *testing.T) {
	f := setup(t)
	m, err := f.store.AddMember(f.ctx, db.NewMember{Name: "Wen", Email: "wen@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	a := db.Actor{MemberID: m.ID, Role: db.RoleMember}
	// Three cancelled shifts the member held: three personal events.
	for range 3 {
		start := time.Now().Add(48 * time.Hour)
		sh, err := f.store.CreateShift(f.ctx, f.staff, db.NewShift{PicketLineID: f.lineID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.SignUpForShift(f.ctx, a, sh.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.CancelShift(f.ctx, f.staff, sh.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.Pool().Exec(f.ctx, `DELETE FROM member_events WHERE member_id = $1 AND seq <= 2`, m.ID); err != nil {
		t.Fatal(err)
	}
	ch := f.hub.MemberEvents(f.ctx, m.ID, 0)
	select {
	case e := <-ch:
		if e.Seq != 3 || e.Kind != db.MemberShiftCancelled {
			t.Fatalf("first event %+v, want the third cancellation", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a subscriber behind a purged gap got nothing")
	}
}
