package realtime

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// recordingDropper is a viewer with no member that counts how often its
// connection was cut, and says so on dropped.
type recordingDropper struct {
	drops   atomic.Int32
	dropped chan struct{}
}

func (d *recordingDropper) Actor() db.Actor { return db.Actor{} }

func newDropper() *recordingDropper { return &recordingDropper{dropped: make(chan struct{}, 1)} }

// Drop is called under the hub's lock: it must not block.
func (d *recordingDropper) Drop(string) {
	d.drops.Add(1)
	select {
	case d.dropped <- struct{}{}:
	default:
	}
}

type fixture struct {
	*dbtest.Bundle
	hub   *Hub
	line  *db.PicketLine
	shift *db.Shift
}

// runTimers is how many timers a running hub waits on at all times: its
// poll. One more means a retry is due.
const runTimers = 1

// setup returns a fixture whose hub runs.
func setup(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, nil)
	go f.hub.Run(f.Ctx)
	return f
}

// newFixture returns a line with a shift, on pool (a fresh database when
// nil), and a hub on the bundle's clock that does not run: the test drives
// its rounds (dispatchLines) itself.
func newFixture(t *testing.T, pool *pgxpool.Pool) *fixture {
	t.Helper()
	t.Parallel()
	b := dbtest.SetupWith(t, dbtest.Options{Pool: pool})
	f := &fixture{Bundle: b, hub: NewHub(b.Store, b.Clock, slog.New(slog.DiscardHandler))}
	b.Store.SetNotifier(hubNotifier{hub: f.hub})
	f.line, f.shift = f.addLine()
	return f
}

// addLine creates a picket line with a shift a day ahead.
func (f *fixture) addLine() (*db.PicketLine, *db.Shift) {
	f.T.Helper()
	line := f.Line()
	return line, f.ShiftOn(line, 24*time.Hour, 10)
}

// hubNotifier wakes the hub directly, as the Notifier does in-process.
type hubNotifier struct {
	db.NoNotifier
	hub *Hub
}

func (n hubNotifier) LinesChanged(ids ...string)   { n.hub.WakeLines(ids...) }
func (n hubNotifier) MembersChanged(ids ...string) { n.hub.WakeMembers(ids...) }

// retrying is closed once the running hub waits for a retry on the clock,
// beside its standing timers; cancel stops watching.
func (f *fixture) retrying() (_ <-chan struct{}, cancel context.CancelFunc) {
	ctx, cancel := context.WithCancel(f.Ctx)
	retrying := make(chan struct{})
	go func() {
		if f.Clock.BlockUntilContext(ctx, runTimers+1) == nil {
			close(retrying)
		}
	}()
	return retrying, cancel
}

// next returns the next event on ch, and false once ch is closed. Events a
// subscriber had no room for come with a retry: whenever nothing waits on
// ch while the running hub waits for a retry, the clock moves on to it.
func next[E any](t *testing.T, f *fixture, ch <-chan E) (E, bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		retrying, cancel := f.retrying()
		select {
		case e, ok := <-ch:
			cancel()
			return e, ok
		case <-retrying:
			cancel()
			select {
			case e, ok := <-ch:
				return e, ok
			default:
				f.Clock.Advance(retryDelay)
			}
		case <-deadline:
			cancel()
			t.Fatal("no event within 30 seconds")
		}
	}
}

// idle lets d go by on the clock, one retry at a time, while the test
// reads nothing: the running hub offers a subscriber with more due what it
// has room for at each retry, as it would while a reader pauses. It fails
// the test if the subscriber is cut off meanwhile.
func (f *fixture) idle(t *testing.T, d time.Duration, cut <-chan struct{}) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for waited := time.Duration(0); waited < d; waited += retryDelay {
		retrying, cancel := f.retrying()
		select {
		case <-retrying:
		case <-cut:
			t.Fatalf("cut off %v into a pause of %v", waited, d)
		case <-deadline:
			t.Fatal("the hub is not retrying anyone")
		}
		cancel()
		f.Clock.Advance(retryDelay)
	}
}

// keepRetrying moves the clock on to every retry the running hub waits
// for, until the test ends: time goes by for subscribers whose buffers are
// full, one retry at a time.
func (f *fixture) keepRetrying(t *testing.T) {
	ctx, cancel := context.WithCancel(f.Ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f.Clock.BlockUntilContext(ctx, runTimers+1) == nil {
			f.Clock.Advance(retryDelay)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

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
		if _, err := f.Store.UpdateShift(f.Ctx, f.Staff, db.ShiftUpdate{ID: shift.ID, Capacity: &capacity}); err != nil {
			t.Fatal(err)
		}
	}
}

// latest returns the sequence number of a line's latest event.
func (f *fixture) latest(t *testing.T, lineID string) int64 {
	t.Helper()
	lines, err := f.Store.PicketLinesByIDs(f.Ctx, f.Staff, []string{lineID})
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
		line, shift := f.line, f.shift
		if i > 0 {
			line, shift = f.addLine()
		}
		from := f.latest(t, line.ID)
		lines = append(lines, followedLine{shift: shift, ch: f.hub.LineEvents(f.Ctx, line.ID, from), from: from})
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
	slowDropper, fastDropper := newDropper(), newDropper()
	slow := f.hub.LineEvents(WithViewer(f.Ctx, slowDropper), f.line.ID, 0)
	fast := f.hub.LineEvents(WithViewer(f.Ctx, fastDropper), f.line.ID, 0)

	const changes = SubscriberBuffer + 50
	received := make(chan int64, 2*changes)
	go func() {
		for e := range fast {
			received <- e.Seq
		}
		close(received)
	}()
	f.changeLine(t, changes)
	latest := f.latest(t, f.line.ID)
	// The subscriber that never reads fills its buffer; from then on time
	// goes by from one retry of the line to the next.
	f.keepRetrying(t)

	// The subscriber that reads gets every event, in order.
	deadline := time.After(30 * time.Second)
	for want := int64(1); want <= latest; want++ {
		select {
		case seq, ok := <-received:
			if !ok {
				t.Fatalf("the reading subscriber was cut off after seq %d", want-1)
			}
			if seq != want {
				t.Fatalf("got seq %d, want %d", seq, want)
			}
		case <-deadline:
			t.Fatalf("the reading subscriber got %d of %d events", want-1, latest)
		}
	}
	// The one that never read, taking nothing for the stall limit, was
	// dropped: its connection cut, its channel closed after the buffered
	// events.
	select {
	case <-slowDropper.dropped:
	case <-deadline:
		t.Fatal("the subscriber that never reads was not cut off")
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
	const changes = 4*SubscriberBuffer + 10
	f.changeLine(t, changes)
	dropper := newDropper()
	// Catching up takes longer than the stall limit: the reader pauses for
	// half of it after every buffer's worth, while the hub fills its buffer
	// again and finds no room. But it keeps making room, so it is waited
	// for.
	ch := f.hub.LineEvents(WithViewer(f.Ctx, dropper), f.line.ID, 0)
	latest := f.latest(t, f.line.ID)
	for want := int64(1); want <= latest; want++ {
		e, ok := next(t, f, ch)
		if !ok {
			t.Fatalf("cut off after seq %d of %d", want-1, latest)
		}
		if e.Seq != want {
			t.Fatalf("got seq %d, want %d", e.Seq, want)
		}
		if want%SubscriberBuffer == 0 && latest-want >= SubscriberBuffer {
			f.idle(t, stallLimit/2, dropper.dropped)
		}
	}
	if n := dropper.drops.Load(); n != 0 {
		t.Fatalf("dropped %d times while catching up", n)
	}
}

func TestMemberFarBehindCatchesUpWithoutBeingCutOff(t *testing.T) {
	f := setup(t)
	member := f.NewMember()
	const shifts = SubscriberBuffer + 20
	for i := range shifts {
		sh := f.ShiftOn(f.line, 48*time.Hour+time.Duration(i)*5*time.Hour, 1)
		f.SignUp(member, sh)
		if _, err := f.Store.CancelShift(f.Ctx, f.Staff, sh.ID); err != nil {
			t.Fatal(err)
		}
	}
	dropper := newDropper()
	ch := f.hub.MemberEvents(WithViewer(f.Ctx, dropper), member.MemberID, 0)
	for want := int64(1); want <= shifts; want++ {
		e, ok := next(t, f, ch)
		if !ok {
			t.Fatalf("cut off after seq %d of %d", want-1, shifts)
		}
		if e.Seq != want || e.Kind != db.MemberShiftCancelled {
			t.Fatalf("got %d %s, want %d SHIFT_CANCELLED", e.Seq, e.Kind, want)
		}
	}
	if n := dropper.drops.Load(); n != 0 {
		t.Fatalf("dropped %d times while catching up", n)
	}
}

func TestResumeReplaysFromTheCursorThenFollowsLive(t *testing.T) {
	f := setup(t)
	f.changeLine(t, 5) // the line's creation events, then 5 more
	latest := f.latest(t, f.line.ID)
	ch := f.hub.LineEvents(f.Ctx, f.line.ID, latest-3)
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
	if _, err := f.Pool.Exec(f.Ctx, `DELETE FROM line_events WHERE picket_line_id = $1 AND seq <= 3`, f.line.ID); err != nil {
		t.Fatal(err)
	}
	ch := f.hub.LineEvents(f.Ctx, f.line.ID, 1)
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
	ctx, cancel := context.WithCancel(f.Ctx)
	ch := f.hub.LineEvents(ctx, f.line.ID, 0)
	cancel()
	for range ch {
	}
	// The channel closed under the hub's lock, in the step that forgot the
	// line.
	f.hub.mu.Lock()
	n := len(f.hub.lines)
	f.hub.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d lines followed after the last subscriber went", n)
	}
}

func TestMemberEventsSkipAPurgedGap(t *testing.T) {
	f := setup(t)
	a := f.NewMember()
	// Three cancelled shifts the member held: three personal events.
	for range 3 {
		sh := f.ShiftOn(f.line, 48*time.Hour, 1)
		f.SignUp(a, sh)
		if _, err := f.Store.CancelShift(f.Ctx, f.Staff, sh.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Pool.Exec(f.Ctx, `DELETE FROM member_events WHERE member_id = $1 AND seq <= 2`, a.MemberID); err != nil {
		t.Fatal(err)
	}
	ch := f.hub.MemberEvents(f.Ctx, a.MemberID, 0)
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
	f.hub.dispatchLines(f.Ctx) // the subscriptions' own round: nothing new yet
	for _, l := range lines {
		f.changeShift(t, l.shift, 3)
	}

	counter.n.Store(0)
	f.hub.dispatchLines(f.Ctx)
	if n := counter.n.Load(); n != 1 {
		t.Fatalf("one round over %d woken lines sent %d statements, want 1", len(lines), n)
	}
	for i, l := range lines {
		if diff := cmp.Diff(seqRange(l.from+1, l.from+3), seqsOf(t, buffered(l.ch))); diff != "" {
			t.Fatalf("line %d: seqs (-want +got):\n%s", i, diff)
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
				if _, err := f.Store.UpdateShift(f.Ctx, f.Staff, db.ShiftUpdate{ID: l.shift.ID, Capacity: &capacity}); err != nil {
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
	f := newFixture(t, nil)
	f.hub.pageSize = 3
	f.changeLine(t, 8)
	behindLatest := f.latest(t, f.line.ID)
	behind := f.hub.LineEvents(f.Ctx, f.line.ID, 0)
	otherLine, otherShift := f.addLine()
	otherNext := f.latest(t, otherLine.ID) + 1
	other := f.hub.LineEvents(f.Ctx, otherLine.ID, otherNext-1)

	var caughtUp []int64
	for round := 1; int64(len(caughtUp)) < behindLatest; round++ {
		if round > 10 {
			t.Fatalf("after %d rounds the subscriber behind has seqs %v of 1..%d", round-1, caughtUp, behindLatest)
		}
		f.changeShift(t, otherShift, 1)
		f.hub.dispatchLines(f.Ctx)
		got := seqsOf(t, buffered(behind))
		if diff := cmp.Diff(seqRange(int64(len(caughtUp))+1, min(int64(len(caughtUp)+f.hub.pageSize), behindLatest)), got); diff != "" {
			t.Fatalf("round %d: the subscriber behind did not get the next page: seqs (-want +got):\n%s", round, diff)
		}
		caughtUp = append(caughtUp, got...)
		if diff := cmp.Diff([]int64{otherNext}, seqsOf(t, buffered(other))); diff != "" {
			t.Fatalf("round %d: the other line's subscriber: seqs (-want +got):\n%s", round, diff)
		}
		otherNext++
	}
}

func TestPurgedEventsAskForResyncInABatchedRead(t *testing.T) {
	f := newFixture(t, nil)
	f.changeLine(t, 4)
	gapLatest := f.latest(t, f.line.ID)
	goneLine, goneShift := f.addLine()
	goneID := goneLine.ID
	f.changeShift(t, goneShift, 2)
	goneLatest := f.latest(t, goneID)
	intactLine, intactShift := f.addLine()
	intactID := intactLine.ID
	f.changeShift(t, intactShift, 2)
	intactLatest := f.latest(t, intactID)
	// Purge seq 2 and 3 of the first line and every event of the second.
	if _, err := f.Pool.Exec(f.Ctx, `DELETE FROM line_events WHERE (picket_line_id = $1 AND seq IN (2, 3)) OR picket_line_id = $2`, f.line.ID, goneID); err != nil {
		t.Fatal(err)
	}
	gap := f.hub.LineEvents(f.Ctx, f.line.ID, 1)
	gone := f.hub.LineEvents(f.Ctx, goneID, 0)
	intact := f.hub.LineEvents(f.Ctx, intactID, 0)
	f.hub.dispatchLines(f.Ctx)

	got := buffered(gap)
	if len(got) == 0 || got[0].Kind != db.LineResyncRequired || got[0].Seq != 3 {
		t.Fatalf("behind a purged gap: got %v, want RESYNC_REQUIRED at seq 3 first", got)
	}
	if diff := cmp.Diff(seqRange(4, gapLatest), seqsOf(t, got[1:])); diff != "" {
		t.Fatalf("after the resync: seqs (-want +got):\n%s", diff)
	}
	got = buffered(gone)
	if len(got) != 1 || got[0].Kind != db.LineResyncRequired || got[0].Seq != goneLatest {
		t.Fatalf("with every event purged: got %v, want only RESYNC_REQUIRED at seq %d", got, goneLatest)
	}
	if diff := cmp.Diff(seqRange(1, intactLatest), seqsOf(t, buffered(intact))); diff != "" {
		t.Fatalf("on the intact line: seqs (-want +got):\n%s", diff)
	}
}

// A subscriber that arrives from further back while a round reads its line
// must not take the round's page, which starts after its cursor, for a
// purge.
func TestSubscriberJoiningDuringARoundGetsNoFalseResync(t *testing.T) {
	f := newFixture(t, nil)
	f.changeLine(t, 2)
	latest := f.latest(t, f.line.ID)
	live := f.hub.LineEvents(f.Ctx, f.line.ID, latest)
	cursors := f.hub.takeDirtyLines()
	replaying := f.hub.LineEvents(f.Ctx, f.line.ID, 0)
	f.changeLine(t, 1)
	pages, err := f.Store.LineEventsAfter(f.Ctx, db.System, cursors, f.hub.pageSize)
	if err != nil {
		t.Fatal(err)
	}
	f.hub.handOut(pages)
	if diff := cmp.Diff([]int64{latest + 1}, seqsOf(t, buffered(live))); diff != "" {
		t.Fatalf("the live subscriber: seqs (-want +got):\n%s", diff)
	}
	if got := seqsOf(t, buffered(replaying)); len(got) != 0 {
		t.Fatalf("the subscriber that joined mid-round got seqs %v from a page after its cursor", got)
	}
	f.hub.dispatchLines(f.Ctx)
	if diff := cmp.Diff(seqRange(1, latest+1), seqsOf(t, buffered(replaying))); diff != "" {
		t.Fatalf("next round, the subscriber that joined: seqs (-want +got):\n%s", diff)
	}
}

func TestLineFollowedByACapitalisedIDIsWoken(t *testing.T) {
	f := newFixture(t, nil)
	latest := f.latest(t, f.line.ID)
	ch := f.hub.LineEvents(f.Ctx, strings.ToUpper(f.line.ID), latest)
	f.hub.dispatchLines(f.Ctx) // the subscription's own round
	f.changeLine(t, 1)
	f.hub.dispatchLines(f.Ctx)
	if diff := cmp.Diff([]int64{latest + 1}, seqsOf(t, buffered(ch))); diff != "" {
		t.Fatalf("the round after the change, a subscriber that wrote the line id in capitals: seqs (-want +got):\n%s", diff)
	}
}

// A subscriber far behind with a full buffer must not hold back the others
// of its line: they are read from where they stand.
func TestFullSubscriberFarBehindDoesNotHoldBackLiveOnes(t *testing.T) {
	f := newFixture(t, nil)
	f.hub.pageSize = 10
	f.changeLine(t, SubscriberBuffer+20)
	latest := f.latest(t, f.line.ID)
	behind := f.hub.LineEvents(f.Ctx, f.line.ID, 0)
	live := f.hub.LineEvents(f.Ctx, f.line.ID, latest)
	for range SubscriberBuffer/f.hub.pageSize + 1 {
		f.hub.dispatchLines(f.Ctx)
	}
	if n := len(behind); n != SubscriberBuffer {
		t.Fatalf("the subscriber behind has %d events buffered, want a full buffer of %d", n, SubscriberBuffer)
	}
	// While it has no room it is not read for (re-reading its full page
	// round after round would only spin): the line is read from where the
	// live subscriber stands.
	f.hub.WakeLines(f.line.ID)
	if diff := cmp.Diff([]db.LineRead{{LineID: f.line.ID, After: latest}}, f.hub.takeDirtyLines()); diff != "" {
		t.Fatalf("reads planned (-want +got):\n%s", diff)
	}
	f.changeLine(t, 1)
	f.hub.dispatchLines(f.Ctx)
	if diff := cmp.Diff([]int64{latest + 1}, seqsOf(t, buffered(live))); diff != "" {
		t.Fatalf("the live subscriber in the round after the change: seqs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(seqRange(1, SubscriberBuffer), seqsOf(t, buffered(behind))); diff != "" {
		t.Fatalf("the subscriber behind, waiting for room: seqs (-want +got):\n%s", diff)
	}
}

// Each woken member gets a page of its own: a read of many members is not
// cut short for those after the first page's worth.
func TestMemberReadPagesEachMemberOnItsOwn(t *testing.T) {
	f := newFixture(t, nil)
	f.hub.pageSize = 3
	shifts := make([]*db.Shift, 4)
	for i := range shifts {
		shifts[i] = f.ShiftOn(f.line, 72*time.Hour+time.Duration(i)*5*time.Hour, 10)
	}
	// Six members on the first shift; the first of them on all four.
	members := make([]db.Actor, 6)
	for i := range members {
		members[i] = f.NewMember()
		on := shifts[:1]
		if i == 0 {
			on = shifts
		}
		for _, sh := range on {
			f.SignUp(members[i], sh)
		}
	}
	chans := make([]<-chan *db.MemberEvent, len(members))
	for i, m := range members {
		chans[i] = f.hub.MemberEvents(f.Ctx, m.MemberID, 0)
	}
	f.hub.dispatchMembers(f.Ctx) // the subscriptions' own round: nothing yet
	for _, sh := range shifts {
		if _, err := f.Store.CancelShift(f.Ctx, f.Staff, sh.ID); err != nil {
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
	f.hub.dispatchMembers(f.Ctx)
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
	f.hub.dispatchMembers(f.Ctx)
	if n := count(chans[0]); n != len(shifts)-f.hub.pageSize {
		t.Fatalf("after the second round the first member got %d more events, want %d", n, len(shifts)-f.hub.pageSize)
	}
}

func TestLineWokenUnderACapitalisedIDIsRead(t *testing.T) {
	f := newFixture(t, nil)
	latest := f.latest(t, f.line.ID)
	ch := f.hub.LineEvents(f.Ctx, f.line.ID, latest)
	f.hub.dispatchLines(f.Ctx) // the subscription's own round
	if _, err := f.Pool.Exec(f.Ctx, `
WITH next AS (UPDATE picket_lines SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq)
INSERT INTO line_events (picket_line_id, seq, kind, occurred_at) SELECT $1, event_seq, 'CAPTAIN_CHANGED', now() FROM next`, f.line.ID); err != nil {
		t.Fatal(err)
	}
	f.hub.WakeLines(strings.ToUpper(f.line.ID))
	f.hub.dispatchLines(f.Ctx)
	if diff := cmp.Diff([]int64{latest + 1}, seqsOf(t, buffered(ch))); diff != "" {
		t.Fatalf("a wake-up naming the line in capitals: seqs (-want +got):\n%s", diff)
	}
}
