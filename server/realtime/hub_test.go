package realtime

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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

// setup returns a fixture whose hub runs.
func setup(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, dbtest.NewPool(t))
	go f.hub.Run(f.ctx)
	return f
}

// newFixture returns a line with a shift, and a hub that does not run: the
// test drives its rounds (dispatchLines) itself.
func newFixture(t *testing.T, pool *pgxpool.Pool) *fixture {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store := db.NewStore(pool, nil, []byte("pepper"))
	hub := NewHub(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hub.stallLimit = 300 * time.Millisecond
	store.SetNotifier(hubNotifier{hub})
	f := &fixture{ctx: ctx, store: store, hub: hub}
	coordinator, err := store.AddMember(ctx, db.System, db.NewMember{Name: "Dana", Email: "dana@example.org", Role: db.RoleCoordinator})
	if err != nil {
		t.Fatal(err)
	}
	f.staff = db.Actor{MemberID: coordinator.ID, Role: db.RoleCoordinator}
	f.lineID, f.shift = f.addLine(t)
	return f
}

// addLine creates a picket line with one shift.
func (f *fixture) addLine(t *testing.T) (string, *db.Shift) {
	t.Helper()
	ja, err := f.store.CreateJobAction(f.ctx, f.staff, db.NewJobAction{Name: "Strike", Kind: db.KindStrike, Employer: "E", StartsAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	line, err := f.store.CreatePicketLine(f.ctx, f.staff, db.NewPicketLine{JobActionID: ja.ID, Name: "Gate", Address: "1 Main", Latitude: 1, Longitude: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(24 * time.Hour)
	shift, err := f.store.CreateShift(f.ctx, f.staff, db.NewShift{PicketLineID: line.ID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 10})
	if err != nil {
		t.Fatal(err)
	}
	return line.ID, shift
}

// hubNotifier wakes the hub directly, as the Notifier does in-process.
type hubNotifier struct{ hub *Hub }

func (n hubNotifier) LinesChanged(ids ...string)   { n.hub.WakeLines(ids...) }
func (n hubNotifier) MembersChanged(ids ...string) { n.hub.WakeMembers(ids...) }
func (n hubNotifier) PushQueued()                  {}

// changeLine makes n changes to the fixture's line, each one event.
func (f *fixture) changeLine(t *testing.T, n int) {
	t.Helper()
	f.changeShift(t, f.shift, n)
}

// changeShift makes n changes to a shift, each one event on its line.
func (f *fixture) changeShift(t *testing.T, shift *db.Shift, n int) {
	t.Helper()
	for i := range n {
		capacity := 11 + i
		if _, err := f.store.UpdateShift(f.ctx, f.staff, db.ShiftUpdate{ID: shift.ID, Capacity: &capacity}); err != nil {
			t.Fatal(err)
		}
	}
}

// latest returns the sequence number of a line's latest event.
func (f *fixture) latest(t *testing.T, lineID string) int64 {
	t.Helper()
	lines, err := f.store.PicketLinesByIDs(f.ctx, f.staff, []string{lineID})
	if err != nil {
		t.Fatal(err)
	}
	return lines[lineID].EventSeq
}

// followedLine is a line with one subscription from its latest event on.
type followedLine struct {
	shift *db.Shift
	ch    <-chan *db.LineEvent
	from  int64
}

// followLines subscribes to the fixture's line and n-1 new ones.
func (f *fixture) followLines(t *testing.T, n int) []followedLine {
	t.Helper()
	var lines []followedLine
	for i := range n {
		id, shift := f.lineID, f.shift
		if i > 0 {
			id, shift = f.addLine(t)
		}
		from := f.latest(t, id)
		lines = append(lines, followedLine{shift: shift, ch: f.hub.LineEvents(f.ctx, id, from), from: from})
	}
	return lines
}

// queryCounter counts the statements sent to PostgreSQL.
type queryCounter struct{ n atomic.Int32 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countedPool returns a pool on a fresh database whose statements c counts.
func countedPool(t *testing.T, c *queryCounter) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = c
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// buffered returns the events waiting in a subscription's buffer, without
// waiting for more.
func buffered(ch <-chan *db.LineEvent) []*db.LineEvent {
	var got []*db.LineEvent
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, e)
		default:
			return got
		}
	}
}

// seqRange returns from, from+1, ..., to.
func seqRange(from, to int64) []int64 {
	var seqs []int64
	for s := from; s <= to; s++ {
		seqs = append(seqs, s)
	}
	return seqs
}

// seqsOf returns the events' sequence numbers, and fails the test on any
// event that is not a stored one.
func seqsOf(t *testing.T, events []*db.LineEvent) []int64 {
	t.Helper()
	seqs := make([]int64, len(events))
	for i, e := range events {
		if e.Kind == db.LineResyncRequired {
			t.Fatalf("unexpected RESYNC_REQUIRED at seq %d", e.Seq)
		}
		seqs[i] = e.Seq
	}
	return seqs
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
	// The one that never read filled its buffer and, taking nothing for the
	// stall limit, was dropped: its connection cut, its channel closed after
	// the buffered events.
	for slowDropper.drops.Load() == 0 {
		select {
		case <-deadline:
			t.Fatal("the subscriber that never reads was not cut off")
		case <-time.After(10 * time.Millisecond):
		}
	}
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

func TestSubscriberFarBehindCatchesUpWithoutBeingCutOff(t *testing.T) {
	f := setup(t)
	const changes = 3*SubscriberBuffer + 10
	f.changeLine(t, changes)
	dropper := &recordingDropper{}
	// Catching up takes longer than the stall limit, but the reader keeps
	// making room, so it is waited for.
	ch := f.hub.LineEvents(WithDropper(f.ctx, dropper), f.lineID, 0)
	latest := f.latest(t, f.lineID)
	deadline := time.After(30 * time.Second)
	for want := int64(1); want <= latest; want++ {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("cut off after seq %d of %d", want-1, latest)
			}
			if e.Seq != want {
				t.Fatalf("got seq %d, want %d", e.Seq, want)
			}
			if want%SubscriberBuffer == 0 {
				time.Sleep(f.hub.stallLimit / 2)
			}
		case <-deadline:
			t.Fatalf("got %d of %d events", want-1, latest)
		}
	}
	if n := dropper.drops.Load(); n != 0 {
		t.Fatalf("dropped %d times while catching up", n)
	}
}

func TestMemberFarBehindCatchesUpWithoutBeingCutOff(t *testing.T) {
	f := setup(t)
	m, err := f.store.AddMember(f.ctx, db.System, db.NewMember{Name: "Ana", Email: "ana@example.org", Role: db.RoleMember})
	if err != nil {
		t.Fatal(err)
	}
	member := db.Actor{MemberID: m.ID, Role: db.RoleMember}
	start := time.Now().Add(48 * time.Hour)
	const shifts = SubscriberBuffer + 20
	for i := range shifts {
		at := start.Add(time.Duration(i) * 3 * time.Hour)
		sh, err := f.store.CreateShift(f.ctx, f.staff, db.NewShift{PicketLineID: f.lineID, StartsAt: at, EndsAt: at.Add(time.Hour), Capacity: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.SignUpForShift(f.ctx, member, sh.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.CancelShift(f.ctx, f.staff, sh.ID); err != nil {
			t.Fatal(err)
		}
	}
	dropper := &recordingDropper{}
	ch := f.hub.MemberEvents(WithDropper(f.ctx, dropper), m.ID, 0)
	deadline := time.After(30 * time.Second)
	for want := int64(1); want <= shifts; want++ {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("cut off after seq %d of %d", want-1, shifts)
			}
			if e.Seq != want || e.Kind != db.MemberShiftCancelled {
				t.Fatalf("got %d %s, want %d SHIFT_CANCELLED", e.Seq, e.Kind, want)
			}
		case <-deadline:
			t.Fatalf("got %d of %d events", want-1, shifts)
		}
	}
	if n := dropper.drops.Load(); n != 0 {
		t.Fatalf("dropped %d times while catching up", n)
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

func TestNoSubscriberLeftForgetsTheLine(t *testing.T) {
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
			t.Fatalf("%d lines followed after the last subscriber went", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMemberEventsSkipAPurgedGap(t *testing.T) {
	f := setup(t)
	m, err := f.store.AddMember(f.ctx, db.System, db.NewMember{Name: "Wen", Email: "wen@example.org"})
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

func TestOneReadServesEveryWokenLine(t *testing.T) {
	counter := &queryCounter{}
	f := newFixture(t, countedPool(t, counter))
	lines := f.followLines(t, 8)
	f.hub.dispatchLines(f.ctx) // the subscriptions' own round: nothing new yet
	for _, l := range lines {
		f.changeShift(t, l.shift, 3)
	}

	counter.n.Store(0)
	f.hub.dispatchLines(f.ctx)
	if n := counter.n.Load(); n != 1 {
		t.Fatalf("one round over %d woken lines sent %d statements, want 1", len(lines), n)
	}
	for i, l := range lines {
		if got, want := seqsOf(t, buffered(l.ch)), seqRange(l.from+1, l.from+3); !slices.Equal(got, want) {
			t.Fatalf("line %d: got seqs %v, want %v", i, got, want)
		}
	}
}

func TestManyLinesChangedTogetherEachGetTheirEventsInOrder(t *testing.T) {
	f := setup(t)
	const lines, changes = 6, 20
	followers := f.followLines(t, lines)
	var wg sync.WaitGroup
	errs := make(chan error, lines*changes)
	for _, l := range followers {
		wg.Go(func() {
			for i := range changes {
				capacity := 11 + i
				if _, err := f.store.UpdateShift(f.ctx, f.staff, db.ShiftUpdate{ID: l.shift.ID, Capacity: &capacity}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for i, l := range followers {
		for want := l.from + 1; want <= l.from+changes; want++ {
			select {
			case e := <-l.ch:
				if e.Seq != want || e.Kind == db.LineResyncRequired {
					t.Fatalf("line %d: got %s at seq %d, want seq %d", i, e.Kind, e.Seq, want)
				}
			case <-deadline:
				t.Fatalf("line %d: no event %d", i, want)
			}
		}
	}
}

func TestSubscriberPagesBehindCatchesUpInOrderWhileOtherLinesAreServed(t *testing.T) {
	f := newFixture(t, dbtest.NewPool(t))
	f.hub.pageSize = 3
	f.changeLine(t, 8)
	behindLatest := f.latest(t, f.lineID)
	behind := f.hub.LineEvents(f.ctx, f.lineID, 0)
	otherID, otherShift := f.addLine(t)
	otherNext := f.latest(t, otherID) + 1
	other := f.hub.LineEvents(f.ctx, otherID, otherNext-1)

	var caughtUp []int64
	for round := 1; int64(len(caughtUp)) < behindLatest; round++ {
		if round > 10 {
			t.Fatalf("after %d rounds the subscriber behind has seqs %v of 1..%d", round-1, caughtUp, behindLatest)
		}
		f.changeShift(t, otherShift, 1)
		f.hub.dispatchLines(f.ctx)
		got := seqsOf(t, buffered(behind))
		if want := seqRange(int64(len(caughtUp))+1, min(int64(len(caughtUp)+f.hub.pageSize), behindLatest)); !slices.Equal(got, want) {
			t.Fatalf("round %d: the subscriber behind got seqs %v, want the next page %v", round, got, want)
		}
		caughtUp = append(caughtUp, got...)
		if got, want := seqsOf(t, buffered(other)), []int64{otherNext}; !slices.Equal(got, want) {
			t.Fatalf("round %d: the other line's subscriber got seqs %v, want %v", round, got, want)
		}
		otherNext++
	}
}

func TestPurgedEventsAskForResyncInABatchedRead(t *testing.T) {
	f := newFixture(t, dbtest.NewPool(t))
	f.changeLine(t, 4)
	gapLatest := f.latest(t, f.lineID)
	goneID, goneShift := f.addLine(t)
	f.changeShift(t, goneShift, 2)
	goneLatest := f.latest(t, goneID)
	intactID, intactShift := f.addLine(t)
	f.changeShift(t, intactShift, 2)
	intactLatest := f.latest(t, intactID)
	// Purge seq 2 and 3 of the first line and every event of the second.
	if _, err := f.store.Pool().Exec(f.ctx, `DELETE FROM line_events WHERE (picket_line_id = $1 AND seq IN (2, 3)) OR picket_line_id = $2`, f.lineID, goneID); err != nil {
		t.Fatal(err)
	}
	gap := f.hub.LineEvents(f.ctx, f.lineID, 1)
	gone := f.hub.LineEvents(f.ctx, goneID, 0)
	intact := f.hub.LineEvents(f.ctx, intactID, 0)
	f.hub.dispatchLines(f.ctx)

	got := buffered(gap)
	if len(got) == 0 || got[0].Kind != db.LineResyncRequired || got[0].Seq != 3 {
		t.Fatalf("behind a purged gap: got %v, want RESYNC_REQUIRED at seq 3 first", got)
	}
	if got, want := seqsOf(t, got[1:]), seqRange(4, gapLatest); !slices.Equal(got, want) {
		t.Fatalf("after the resync: got seqs %v, want %v", got, want)
	}
	got = buffered(gone)
	if len(got) != 1 || got[0].Kind != db.LineResyncRequired || got[0].Seq != goneLatest {
		t.Fatalf("with every event purged: got %v, want only RESYNC_REQUIRED at seq %d", got, goneLatest)
	}
	if got, want := seqsOf(t, buffered(intact)), seqRange(1, intactLatest); !slices.Equal(got, want) {
		t.Fatalf("on the intact line: got seqs %v, want %v", got, want)
	}
}

// A subscriber that arrives from further back while a round reads its line
// must not take the round's page, which starts after its cursor, for a
// purge.
func TestSubscriberJoiningDuringARoundGetsNoFalseResync(t *testing.T) {
	f := newFixture(t, dbtest.NewPool(t))
	f.changeLine(t, 2)
	latest := f.latest(t, f.lineID)
	live := f.hub.LineEvents(f.ctx, f.lineID, latest)
	cursors := f.hub.takeDirtyLines()
	replaying := f.hub.LineEvents(f.ctx, f.lineID, 0)
	f.changeLine(t, 1)
	pages, err := f.store.LineEventsAfter(f.ctx, db.System, cursors, f.hub.pageSize)
	if err != nil {
		t.Fatal(err)
	}
	f.hub.handOut(pages)
	if got, want := seqsOf(t, buffered(live)), []int64{latest + 1}; !slices.Equal(got, want) {
		t.Fatalf("the live subscriber got seqs %v, want %v", got, want)
	}
	if got := seqsOf(t, buffered(replaying)); len(got) != 0 {
		t.Fatalf("the subscriber that joined mid-round got seqs %v from a page after its cursor", got)
	}
	f.hub.dispatchLines(f.ctx)
	if got, want := seqsOf(t, buffered(replaying)), seqRange(1, latest+1); !slices.Equal(got, want) {
		t.Fatalf("next round, the subscriber that joined got seqs %v, want %v", got, want)
	}
}

func TestLineFollowedByACapitalisedIDIsWoken(t *testing.T) {
	f := newFixture(t, dbtest.NewPool(t))
	latest := f.latest(t, f.lineID)
	ch := f.hub.LineEvents(f.ctx, strings.ToUpper(f.lineID), latest)
	f.hub.dispatchLines(f.ctx) // the subscription's own round
	f.changeLine(t, 1)
	f.hub.dispatchLines(f.ctx)
	if got, want := seqsOf(t, buffered(ch)), []int64{latest + 1}; !slices.Equal(got, want) {
		t.Fatalf("the round after the change gave a subscriber that wrote the line id in capitals seqs %v, want %v", got, want)
	}
}

// A subscriber far behind with a full buffer must not hold back the others
// of its line: they are read from where they stand.
func TestFullSubscriberFarBehindDoesNotHoldBackLiveOnes(t *testing.T) {
	f := newFixture(t, dbtest.NewPool(t))
	f.hub.pageSize, f.hub.stallLimit = 10, time.Minute
	f.changeLine(t, SubscriberBuffer+20)
	latest := f.latest(t, f.lineID)
	behind := f.hub.LineEvents(f.ctx, f.lineID, 0)
	live := f.hub.LineEvents(f.ctx, f.lineID, latest)
	for range SubscriberBuffer/f.hub.pageSize + 1 {
		f.hub.dispatchLines(f.ctx)
	}
	if n := len(behind); n != SubscriberBuffer {
		t.Fatalf("the subscriber behind has %d events buffered, want a full buffer of %d", n, SubscriberBuffer)
	}
	// While it has no room it is not read for (re-reading its full page
	// round after round would only spin): the line is read from where the
	// live subscriber stands.
	f.hub.WakeLines(f.lineID)
	if got, want := f.hub.takeDirtyLines(), []db.LineRead{{LineID: f.lineID, After: latest}}; !slices.Equal(got, want) {
		t.Fatalf("reads planned %v, want only %v", got, want)
	}
	f.changeLine(t, 1)
	f.hub.dispatchLines(f.ctx)
	if got, want := seqsOf(t, buffered(live)), []int64{latest + 1}; !slices.Equal(got, want) {
		t.Fatalf("the live subscriber got seqs %v in the round after the change, want %v", got, want)
	}
	if got, want := seqsOf(t, buffered(behind)), seqRange(1, SubscriberBuffer); !slices.Equal(got, want) {
		t.Fatalf("the subscriber behind got seqs %v, want %v and to wait for room", got, want)
	}
}

// Each woken member gets a page of its own: a read of many members is not
// cut short for those after the first page's worth.
func TestMemberReadPagesEachMemberOnItsOwn(t *testing.T) {
	f := newFixture(t, dbtest.NewPool(t))
	f.hub.pageSize = 3
	start := time.Now().Add(72 * time.Hour)
	shifts := make([]*db.Shift, 4)
	for i := range shifts {
		at := start.Add(time.Duration(i) * 3 * time.Hour)
		sh, err := f.store.CreateShift(f.ctx, f.staff, db.NewShift{PicketLineID: f.lineID, StartsAt: at, EndsAt: at.Add(time.Hour), Capacity: 10})
		if err != nil {
			t.Fatal(err)
		}
		shifts[i] = sh
	}
	// Six members on the first shift; the first of them on all four.
	members := make([]db.Actor, 6)
	for i := range members {
		m, err := f.store.AddMember(f.ctx, db.System, db.NewMember{Name: "M", Email: "m" + strconv.Itoa(i) + "@example.org", Role: db.RoleMember})
		if err != nil {
			t.Fatal(err)
		}
		members[i] = db.Actor{MemberID: m.ID, Role: db.RoleMember}
		on := shifts[:1]
		if i == 0 {
			on = shifts
		}
		for _, sh := range on {
			if _, err := f.store.SignUpForShift(f.ctx, members[i], sh.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	chans := make([]<-chan *db.MemberEvent, len(members))
	for i, m := range members {
		chans[i] = f.hub.MemberEvents(f.ctx, m.MemberID, 0)
	}
	f.hub.dispatchMembers(f.ctx) // the subscriptions' own round: nothing yet
	for _, sh := range shifts {
		if _, err := f.store.CancelShift(f.ctx, f.staff, sh.ID); err != nil {
			t.Fatal(err)
		}
	}
	count := func(ch <-chan *db.MemberEvent) (n int) {
		for {
			select {
			case <-ch:
				n++
			default:
				return n
			}
		}
	}
	f.hub.dispatchMembers(f.ctx)
	for i, ch := range chans {
		want := 1
		if i == 0 {
			want = f.hub.pageSize
		}
		if n := count(ch); n != want {
			t.Fatalf("after one round member %d got %d events, want %d", i, n, want)
		}
	}
	// The member whose page was full is read again next round.
	f.hub.dispatchMembers(f.ctx)
	if n := count(chans[0]); n != len(shifts)-f.hub.pageSize {
		t.Fatalf("after the second round the first member got %d more events, want %d", n, len(shifts)-f.hub.pageSize)
	}
}

func TestLineWokenUnderACapitalisedIDIsRead(t *testing.T) {
	f := newFixture(t, dbtest.NewPool(t))
	latest := f.latest(t, f.lineID)
	ch := f.hub.LineEvents(f.ctx, f.lineID, latest)
	f.hub.dispatchLines(f.ctx) // the subscription's own round
	if _, err := f.store.Pool().Exec(f.ctx, `
WITH next AS (UPDATE picket_lines SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq)
INSERT INTO line_events (picket_line_id, seq, kind, occurred_at) SELECT $1, event_seq, 'CAPTAIN_CHANGED', now() FROM next`, f.lineID); err != nil {
		t.Fatal(err)
	}
	f.hub.WakeLines(strings.ToUpper(f.lineID))
	f.hub.dispatchLines(f.ctx)
	if got, want := seqsOf(t, buffered(ch)), []int64{latest + 1}; !slices.Equal(got, want) {
		t.Fatalf("a wake-up naming the line in capitals gave seqs %v, want %v", got, want)
	}
}
