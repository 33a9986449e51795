package push

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type fixture struct {
	*dbtest.Bundle
	fcm     *fakeFCM
	sender  *FCM
	line    *db.PicketLine
	lineID  string
	shiftID string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	t.Parallel()
	f := &fixture{Bundle: dbtest.Setup(t), fcm: newFakeFCM(t)}
	// Many messages are most easily made as many devices of one member,
	// more than a member may keep in service.
	f.Store.SetLimits(db.Limits{DevicesPerMember: 1000})
	var err error
	if f.sender, err = NewFCM(f.Ctx, f.Clock, "test-project", f.fcm.URL+"/v1", true); err != nil {
		t.Fatal(err)
	}
	f.line = f.Line()
	f.lineID = f.line.ID
	f.shiftID = f.shift(48 * time.Hour).ID
	return f
}

// member adds a member signed in on a session of their own, which
// registering a device needs.
func (f *fixture) member(role db.Role) db.Actor {
	f.T.Helper()
	m := f.Member(role)
	sess, err := f.Store.StartSession(f.Ctx, db.System, m.ID)
	if err != nil {
		f.T.Fatal(err)
	}
	a := f.Actor(m)
	a.SessionID = sess.ID
	return a
}

func (f *fixture) device(a db.Actor, token string) {
	f.T.Helper()
	if _, err := f.Store.RegisterDevice(f.Ctx, a, token, db.PlatformAndroid); err != nil {
		f.T.Fatal(err)
	}
}

// shift creates a shift for one on the fixture's line, starting in `in`.
func (f *fixture) shift(in time.Duration) *db.Shift {
	f.T.Helper()
	return f.ShiftOn(f.line, in, 1)
}

// promotion makes one WAITLIST_PROMOTED notification for waiting's devices.
func (f *fixture) promotion(waiting db.Actor) {
	f.T.Helper()
	holder := f.member(db.RoleMember)
	su, err := f.Store.SignUpForShift(f.Ctx, holder, f.shiftID, "")
	if err != nil {
		f.T.Fatal(err)
	}
	if _, err := f.Store.SignUpForShift(f.Ctx, waiting, f.shiftID, ""); err != nil {
		f.T.Fatal(err)
	}
	if _, err := f.Store.CancelSignup(f.Ctx, holder, su.ID); err != nil {
		f.T.Fatal(err)
	}
}

func (f *fixture) worker(cfg Config) *Worker {
	return NewWorker(f.Store, f.Clock, f.sender, cfg, slog.New(slog.DiscardHandler))
}

// deliver sends one claimed message and records its outcome, as Run does.
func (f *fixture) deliver(w *Worker, m db.PushMessage) {
	f.T.Helper()
	if o, ok := w.deliver(f.Ctx, m); ok {
		if err := f.Store.RecordPush(f.Ctx, db.System, []db.PushOutcome{o}, w.cfg.MaxAttempts); err != nil {
			f.T.Fatal(err)
		}
	}
}

// drain fans out queued announcements, then sends until no message is due.
func (f *fixture) drain(cfg Config) {
	f.T.Helper()
	for {
		n, err := f.Store.FanOutAnnouncements(f.Ctx, db.System)
		if err != nil {
			f.T.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	w := f.worker(cfg)
	for range 50 {
		batch, _, err := f.Store.ClaimPush(f.Ctx, db.System, 100, cfg.Lease, nil)
		if err != nil {
			f.T.Fatal(err)
		}
		if len(batch) == 0 {
			return
		}
		for _, m := range batch {
			f.deliver(w, m)
		}
	}
	f.T.Fatal("the outbox did not drain")
}

func (f *fixture) statuses() map[db.PushStatus]int {
	f.T.Helper()
	c, err := f.Store.PushCounts(f.Ctx, db.System)
	if err != nil {
		f.T.Fatal(err)
	}
	return c
}

func (f *fixture) backlog() db.PushBacklog {
	f.T.Helper()
	b, err := f.Store.PushBacklog(f.Ctx, db.System)
	if err != nil {
		f.T.Fatal(err)
	}
	return b
}

// heard collects the results the worker reports, for a test that sends
// from its own goroutine.
func (w *Worker) heard() *[]Result {
	var got []Result
	w.ObserveResults(func(r Result) { got = append(got, r) })
	return &got
}

// running is a worker running in the background, reporting on its signals.
type running struct {
	*Worker
	stop func()
}

// start runs a worker until the test stops it, or ends.
func (f *fixture) start(cfg Config) *running {
	ctx, cancel := context.WithCancel(f.Ctx)
	done := make(chan struct{})
	w := &running{Worker: f.worker(cfg), stop: func() {
		cancel()
		<-done
	}}
	w.signals = &signals{claimed: make(chan int, 1000), recorded: make(chan int, 1000)}
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	f.T.Cleanup(w.stop)
	return w
}

// idleTimers is how many timers an idle worker waits on: the recorder's
// and the housekeeping's tickers, and the polls of the claim and prepare
// loops. A claim loop waits for its poll only once a claim found nothing.
const idleTimers = 4

// waitIdle waits until every worker given waits for its next poll.
func (f *fixture) waitIdle(workers ...*running) {
	f.T.Helper()
	ctx, cancel := context.WithTimeout(f.Ctx, 20*time.Second)
	defer cancel()
	if err := f.Clock.BlockUntilContext(ctx, idleTimers*len(workers)); err != nil {
		f.T.Fatalf("the workers did not come to wait for their polls: %v", err)
	}
}

// signalled waits for the next signal on ch and returns its count.
func signalled(t *testing.T, ch <-chan int) int {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not get there")
		return 0
	}
}

// drain returns the sum of the counts waiting on ch.
func drain(ch <-chan int) (sum int) {
	for {
		select {
		case n := <-ch:
			sum += n
		default:
			return sum
		}
	}
}

var testConfig = Config{Rate: 1000, Concurrency: 4, MaxAttempts: 3, Lease: time.Minute, BaseBackoff: time.Second, Poll: 10 * time.Millisecond, SendTimeout: 10 * time.Second}

func TestPromotionReachesEveryDeviceOfTheMemberOnly(t *testing.T) {
	f := setup(t)
	waiting, other := f.member(db.RoleMember), f.member(db.RoleMember)
	f.device(waiting, "phone-token")
	f.device(waiting, "tablet-token")
	f.device(other, "other-token")
	f.promotion(waiting)
	f.drain(testConfig)
	got := f.fcm.received()
	if len(got) != 2 {
		t.Fatalf("FCM got %d messages, want 2: %+v", len(got), got)
	}
	tokens := map[string]bool{}
	for _, m := range got {
		tokens[m.Token] = true
		if m.Data["kind"] != "WAITLIST_PROMOTED" || m.Data["event_id"] == "" || m.Data["shift_id"] != f.shiftID {
			t.Fatalf("data %v", m.Data)
		}
		if m.Android.CollapseKey != m.Data["event_id"] || m.APNS.Headers["apns-collapse-id"] != m.Data["event_id"] {
			t.Fatalf("collapse keys %q %q, want the event id %q", m.Android.CollapseKey, m.APNS.Headers["apns-collapse-id"], m.Data["event_id"])
		}
	}
	if got[0].Data["event_id"] != got[1].Data["event_id"] {
		t.Fatal("the member's two devices got different event ids for one event")
	}
	if diff := cmp.Diff(map[string]bool{"phone-token": true, "tablet-token": true}, tokens); diff != "" {
		t.Fatalf("devices reached (-want +got):\n%s", diff)
	}
	if c := f.statuses(); c[db.PushSent] != 2 {
		t.Fatalf("outbox %v", c)
	}
}

func TestFCMErrorsAreHandledAsDocumented(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   db.PushStatus
		device bool // whether the device remains
		// result is what the metrics hear of the send.
		result Result
	}{
		{"an accepted message is sent", http.StatusOK, `{"name":"projects/test/messages/1"}`, db.PushSent, true, Delivered},
		{"unregistered deletes the token", http.StatusNotFound, fcmError(404, "NOT_FOUND", "UNREGISTERED"), db.PushFailed, false, TokenGone},
		{"sender id mismatch deletes the token", http.StatusForbidden, fcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), db.PushFailed, false, TokenGone},
		{"invalid argument fails without retry", http.StatusBadRequest, fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), db.PushFailed, true, Rejected},
		{"quota exceeded retries", http.StatusTooManyRequests, fcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), db.PushPending, true, Retryable},
		{"internal retries", http.StatusInternalServerError, fcmError(500, "INTERNAL", "INTERNAL"), db.PushPending, true, Retryable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			waiting := f.member(db.RoleMember)
			f.device(waiting, "token-1")
			f.fcm.setPlan(func(fcmMessage) (int, string, http.Header) { return c.status, c.body, nil })
			f.promotion(waiting)
			batch, _, err := f.Store.ClaimPush(f.Ctx, db.System, 10, time.Minute, nil)
			if err != nil || len(batch) != 1 {
				t.Fatalf("claim: %v %d", err, len(batch))
			}
			w := f.worker(testConfig)
			heard := w.heard()
			f.deliver(w, batch[0])
			if got := f.statuses(); got[c.want] != 1 {
				t.Fatalf("outbox %v, want one %s", got, c.want)
			}
			if diff := cmp.Diff([]Result{c.result}, *heard); diff != "" {
				t.Errorf("results heard (-want +got):\n%s", diff)
			}
			devices, err := f.Store.MyDevices(f.Ctx, waiting)
			if err != nil {
				t.Fatal(err)
			}
			if (len(devices) == 1) != c.device {
				t.Fatalf("%d devices left", len(devices))
			}
		})
	}
}

func TestRetryHonoursRetryAfterThenDeadLetters(t *testing.T) {
	f := setup(t)
	waiting := f.member(db.RoleMember)
	f.device(waiting, "token-1")
	f.fcm.setPlan(func(fcmMessage) (int, string, http.Header) {
		return http.StatusTooManyRequests, fcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), http.Header{"Retry-After": {"120"}}
	})
	f.promotion(waiting)
	if got := f.backlog(); got != (db.PushBacklog{Pending: 1}) {
		t.Fatalf("backlog before sending %+v, want one pending", got)
	}
	w := f.worker(testConfig)
	heard := w.heard()
	for attempt := 1; attempt <= testConfig.MaxAttempts; attempt++ {
		batch, _, err := f.Store.ClaimPush(f.Ctx, db.System, 10, time.Minute, nil)
		if err != nil || len(batch) != 1 {
			t.Fatalf("attempt %d: claim %v, %d messages", attempt, err, len(batch))
		}
		f.deliver(w, batch[0])
		if attempt < testConfig.MaxAttempts {
			// Not before Retry-After, even though the backoff is shorter.
			f.Clock.Advance(119 * time.Second)
			if early, _, _ := f.Store.ClaimPush(f.Ctx, db.System, 10, time.Minute, nil); len(early) != 0 {
				t.Fatalf("attempt %d: claimed again before Retry-After", attempt)
			}
			f.Clock.Advance(2 * time.Second)
		}
	}
	if got := f.statuses(); got[db.PushDead] != 1 {
		t.Fatalf("after %d attempts the outbox is %v, want one DEAD", testConfig.MaxAttempts, got)
	}
	if got := f.backlog(); got != (db.PushBacklog{Dead: 1}) {
		t.Errorf("backlog after the last attempt %+v, want one dead", got)
	}
	if diff := cmp.Diff([]Result{Retryable, Retryable, Dead}, *heard); diff != "" {
		t.Errorf("results heard (-want +got):\n%s", diff)
	}
}

func TestTwoWorkersNeverSendOneMessageTwice(t *testing.T) {
	f := setup(t)
	waiting := f.member(db.RoleMember)
	want := map[string]int{}
	for i := range 40 {
		token := "token-" + strconv.Itoa(i)
		f.device(waiting, token)
		want[token] = 1
	}
	f.promotion(waiting)
	workers := []*running{f.start(testConfig), f.start(testConfig)}
	// Both claim until they find nothing due, then wait for the next poll.
	f.waitIdle(workers...)
	claimed := 0
	for _, w := range workers {
		claimed += drain(w.signals.claimed)
	}
	f.fcm.waitFor(t, claimed)
	// What they sent is recorded at the recorders' ticks.
	for recorded := 0; recorded < claimed; {
		f.Clock.Advance(recordEvery)
		for _, w := range workers {
			recorded += signalled(t, w.signals.recorded)
		}
	}
	// Once every message is recorded as sent, each worker's next claim
	// finds nothing.
	f.waitIdle(workers...)
	for _, w := range workers {
		claimed += drain(w.signals.claimed)
	}
	f.Clock.Advance(testConfig.Poll)
	for _, w := range workers {
		claimed += signalled(t, w.signals.claimed)
	}
	for _, w := range workers {
		w.stop()
	}
	if claimed != len(want) {
		t.Errorf("the workers claimed %d messages in all, want each of the %d once", claimed, len(want))
	}
	seen := map[string]int{}
	for _, m := range f.fcm.received() {
		seen[m.Token]++
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Fatalf("messages per device (-want +got):\n%s", diff)
	}
}

func TestCrashBetweenSendAndMarkResendsWithTheSameEventID(t *testing.T) {
	f := setup(t)
	waiting := f.member(db.RoleMember)
	f.device(waiting, "token-1")
	f.promotion(waiting)
	// A worker claims and sends, then dies before recording the outcome.
	batch, _, err := f.Store.ClaimPush(f.Ctx, db.System, 10, time.Minute, nil)
	if err != nil || len(batch) != 1 {
		t.Fatalf("claim: %v", err)
	}
	if err := f.sender.Send(f.Ctx, batch[0]); err != nil {
		t.Fatal(err)
	}
	// Its lease runs out; another worker takes the message over.
	f.Clock.Advance(61 * time.Second)
	f.drain(testConfig)
	got := f.fcm.received()
	if len(got) != 2 || got[0].Data["event_id"] != got[1].Data["event_id"] {
		t.Fatalf("got %d sends, event ids %v: the app must be able to drop the repeat", len(got), got)
	}
	if c := f.statuses(); c[db.PushSent] != 1 {
		t.Fatalf("outbox %v", c)
	}
}

func TestRemindersComeTwelveHoursAndOneHourBeforeOnceEach(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	f.device(m, "token-1")
	sh := f.shift(13 * time.Hour)
	if _, err := f.Store.SignUpForShift(f.Ctx, m, sh.ID, ""); err != nil {
		t.Fatal(err)
	}
	remind := func() int {
		n, err := f.Store.ScheduleReminders(f.Ctx, db.System)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := remind(); n != 0 {
		t.Fatalf("%d reminders 13 hours ahead", n)
	}
	f.Clock.Advance(time.Hour + time.Minute)
	if n := remind(); n != 1 {
		t.Fatalf("%d reminders 12 hours ahead, want 1", n)
	}
	if n := remind(); n != 0 {
		t.Fatalf("the 12-hour reminder came twice")
	}
	f.Clock.Advance(11 * time.Hour)
	if n := remind(); n != 1 {
		t.Fatalf("%d reminders 1 hour ahead, want 1", n)
	}
	if n := remind(); n != 0 {
		t.Fatalf("the 1-hour reminder came twice")
	}
	f.drain(testConfig)
	if got := f.fcm.received(); len(got) != 2 || got[0].Data["kind"] != "SHIFT_REMINDER" || got[0].Data["event_id"] == got[1].Data["event_id"] {
		t.Fatalf("reminders sent %+v", got)
	}
}

func TestCancellingASignupWithdrawsItsReminder(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	f.device(m, "token-1")
	sh := f.shift(11 * time.Hour)
	su, err := f.Store.SignUpForShift(f.Ctx, m, sh.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Store.ScheduleReminders(f.Ctx, db.System); err != nil || n != 1 {
		t.Fatalf("reminders %d, %v", n, err)
	}
	if _, err := f.Store.CancelSignup(f.Ctx, m, su.ID); err != nil {
		t.Fatal(err)
	}
	f.drain(testConfig)
	if got := f.fcm.received(); len(got) != 0 {
		t.Fatalf("a reminder for a cancelled sign-up went out: %+v", got)
	}
	if c := f.statuses(); c[db.PushCancelled] != 1 {
		t.Fatalf("outbox %v", c)
	}
}

func TestQuietHoursHoldBackAllButUrgent(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	f.device(m, "token-1")
	hour := f.Clock.Now().UTC().Hour()
	start, end := db.FormatClock(hour*60), db.FormatClock(((hour+2)%24)*60)
	zone := "UTC"
	if _, err := f.Store.UpdateNotificationPreferences(f.Ctx, m, db.PreferencesUpdate{QuietStart: &start, QuietEnd: &end, TimeZone: &zone}); err != nil {
		t.Fatal(err)
	}
	f.promotion(m)
	captain := f.member(db.RoleMember)
	if _, err := f.Store.AssignCaptain(f.Ctx, f.Staff, f.lineID, captain.MemberID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Store.PostAnnouncement(f.Ctx, captain, db.NewAnnouncement{PicketLineID: &f.lineID, Body: "Police at the gate", Urgent: true}); err != nil {
		t.Fatal(err)
	}
	f.drain(testConfig)
	got := f.fcm.received()
	if len(got) != 1 || got[0].Data["kind"] != "URGENT_ANNOUNCEMENT" {
		t.Fatalf("during quiet hours FCM got %+v, want the urgent announcement only", got)
	}
	f.Clock.Advance(2*time.Hour + time.Minute)
	f.drain(testConfig)
	if got := f.fcm.received(); len(got) != 2 || got[1].Data["kind"] != "WAITLIST_PROMOTED" {
		t.Fatalf("after quiet hours FCM got %+v", got)
	}
}

func TestMutedKindsAreNotSent(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	f.device(m, "token-1")
	if _, err := f.Store.UpdateNotificationPreferences(f.Ctx, m, db.PreferencesUpdate{Enabled: []db.NotificationKind{db.NotifyShiftReminder}}); err != nil {
		t.Fatal(err)
	}
	f.promotion(m)
	f.drain(testConfig)
	if got := f.fcm.received(); len(got) != 0 {
		t.Fatalf("a muted kind was sent: %+v", got)
	}
}

func TestRateCapIsNeverExceeded(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	for i := range 30 {
		f.device(m, "token-"+strconv.Itoa(i))
	}
	f.promotion(m)
	cfg := testConfig
	cfg.Rate, cfg.Concurrency = 20, 8
	start := time.Now()
	w := f.start(cfg)
	defer w.stop()
	f.fcm.waitFor(t, 30)
	// The limiter keeps to the wall clock, as FCM counts its quota: 30
	// messages at 20/s with a burst of 2 take at least (30-2)/20 s of it.
	if elapsed := time.Since(start); elapsed < 1300*time.Millisecond {
		t.Fatalf("30 messages went out in %v, faster than 20 per second allows", elapsed)
	}
}

func TestDevicesUnusedForSixtyDaysArePurged(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	f.device(m, "old-phone")
	f.device(m, "new-phone")
	f.Clock.Advance(59 * 24 * time.Hour)
	f.device(m, "new-phone") // the app registers again at start
	f.Clock.Advance(2 * 24 * time.Hour)
	n, err := f.Store.PurgeStaleDevices(f.Ctx, db.System)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want the one device unused for 61 days", n, err)
	}
	left, err := f.Store.MyDevices(f.Ctx, m)
	if err != nil || len(left) != 1 || left[0].Token != "new-phone" {
		t.Fatalf("devices left %+v, %v", left, err)
	}
}

func TestRemindersSurviveARestart(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	f.device(m, "token-1")
	sh := f.shift(30 * time.Minute)
	if _, err := f.Store.SignUpForShift(f.Ctx, m, sh.ID, ""); err != nil {
		t.Fatal(err)
	}
	// The first process scans and queues the reminder, then dies before
	// sending it; a new process with a new worker sends it, once.
	if n, err := f.Store.ScheduleReminders(f.Ctx, db.System); err != nil || n != 1 {
		t.Fatalf("scheduled %d, %v", n, err)
	}
	restarted := db.NewStore(f.Pool, f.Clock, dbtest.Pepper)
	if n, err := restarted.ScheduleReminders(f.Ctx, db.System); err != nil || n != 0 {
		t.Fatalf("the restarted process scheduled %d again, %v", n, err)
	}
	f.Store = restarted
	f.drain(testConfig)
	if got := f.fcm.received(); len(got) != 1 || got[0].Data["kind"] != "SHIFT_REMINDER" {
		t.Fatalf("after the restart FCM got %+v", got)
	}
}

func TestUrgentAnnouncementFansOutToEachMemberOnce(t *testing.T) {
	f := setup(t)
	sh := f.ShiftOn(f.line, 24*time.Hour, 100)
	const members = 45
	for i := range members {
		m := f.member(db.RoleMember)
		f.device(m, "token-"+strconv.Itoa(i))
		f.SignUp(m, sh)
	}
	captain := f.member(db.RoleMember)
	f.device(captain, "captain-token")
	if _, err := f.Store.AssignCaptain(f.Ctx, f.Staff, f.lineID, captain.MemberID); err != nil {
		t.Fatal(err)
	}
	bystander := f.member(db.RoleMember)
	f.device(bystander, "bystander-token")
	// Batches that do not divide the audience evenly.
	f.Store.SetFanOutBatch(7)
	a, err := f.Store.PostAnnouncement(f.Ctx, captain, db.NewAnnouncement{PicketLineID: &f.lineID, Body: "Everyone to the north gate", Urgent: true})
	if err != nil {
		t.Fatal(err)
	}
	var batches, queuedMembers int
	if err := f.Pool.QueryRow(f.Ctx, `SELECT count(*), sum(cardinality(recipients)) FROM announcement_fanout_batches WHERE announcement_id = $1`, a.ID).Scan(&batches, &queuedMembers); err != nil {
		t.Fatal(err)
	}
	if batches != (members+6)/7 || queuedMembers != members {
		t.Fatalf("posting queued %d batches of %d members in all, want %d of %d", batches, queuedMembers, (members+6)/7, members)
	}
	// Posting queues the audience; nobody is told before the fan-out.
	var queued int
	if err := f.Pool.QueryRow(f.Ctx, `SELECT count(*) FROM push_outbox`).Scan(&queued); err != nil || queued != 0 {
		t.Fatalf("%d messages written by the announcement's own transaction (%v)", queued, err)
	}
	// Three replicas fan out at once.
	var wg sync.WaitGroup
	told := make([]int, 3)
	for i := range told {
		wg.Go(func() {
			for {
				n, err := f.Store.FanOutAnnouncements(f.Ctx, db.System)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
				told[i] += n
			}
		})
	}
	wg.Wait()
	if told[0]+told[1]+told[2] != members {
		t.Fatalf("fan-outs told %v members, want %d in all", told, members)
	}
	rows, err := f.Pool.Query(f.Ctx, `
SELECT m.id, (SELECT count(*) FROM member_events e WHERE e.member_id = m.id AND e.announcement_id = $1),
       (SELECT count(*) FROM push_outbox o WHERE o.member_id = m.id AND o.announcement_id = $1)
FROM members m`, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	reached := 0
	for rows.Next() {
		var (
			id             string
			events, pushes int
		)
		if err := rows.Scan(&id, &events, &pushes); err != nil {
			t.Fatal(err)
		}
		switch {
		case id == captain.MemberID || id == bystander.MemberID || id == f.Staff.MemberID:
			if events != 0 || pushes != 0 {
				t.Fatalf("member %s outside the audience got %d events, %d pushes", id, events, pushes)
			}
		case events != 1 || pushes != 1:
			t.Fatalf("member %s got %d events and %d pushes, want one each", id, events, pushes)
		default:
			reached++
		}
	}
	if reached != members {
		t.Fatalf("%d of %d members reached", reached, members)
	}
	var left int
	if err := f.Pool.QueryRow(f.Ctx, `SELECT count(*) FROM announcement_fanout_batches`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d fan-outs left (%v)", left, err)
	}
}

func TestStoppingWorkerRecordsWhatItSentAndReleasesTheRest(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	for i := range 20 {
		f.device(m, "token-"+strconv.Itoa(i))
	}
	f.promotion(m)
	cfg := testConfig
	cfg.Rate, cfg.Concurrency = 10, 2
	w := f.start(cfg)
	f.fcm.waitFor(t, 3)
	w.stop()
	// A send cut off by the stop (at most one per sender) may have reached
	// FCM before it was cancelled; it is released like the unsent ones, and
	// goes out again with the same event id.
	received := len(f.fcm.received())
	c := f.statuses()
	sent := c[db.PushSent]
	if sent == 0 || received < sent || received > sent+cfg.Concurrency || c[db.PushPending] != 20-sent || c[db.PushSending] != 0 {
		t.Fatalf("after stopping with %d of 20 received by FCM the outbox is %v, want those answered SENT and the rest PENDING", received, c)
	}
	// The released messages are due at once and their attempt was not used.
	batch, _, err := f.Store.ClaimPush(f.Ctx, db.System, 100, time.Minute, nil)
	if err != nil || len(batch) != 20-sent {
		t.Fatalf("claimed %d after the stop, want %d (%v)", len(batch), 20-sent, err)
	}
	for _, msg := range batch {
		if msg.Attempts != 1 {
			t.Fatalf("message %d is on attempt %d, want 1", msg.ID, msg.Attempts)
		}
	}
}

func TestExpiredMessagesAndGoneDevicesAreNotSent(t *testing.T) {
	f := setup(t)
	m, other := f.member(db.RoleMember), f.member(db.RoleMember)
	f.device(m, "token-1")
	f.device(other, "token-2")
	f.promotion(other)
	// The device goes as the 60-day purge takes it, which leaves the outbox be.
	if _, err := f.Pool.Exec(f.Ctx, `DELETE FROM devices WHERE token = 'token-2'`); err != nil {
		t.Fatal(err)
	}
	f.shiftID = f.shift(48 * time.Hour).ID
	f.promotion(m)
	// Promotions are about a shift 48 hours ahead: worth sending until it starts.
	f.Clock.Advance(48*time.Hour + time.Minute)
	f.drain(testConfig)
	if got := f.fcm.received(); len(got) != 0 {
		t.Fatalf("sent %+v", got)
	}
	if c := f.statuses(); c[db.PushFailed] != 2 {
		t.Fatalf("outbox %v, want the expired and the deviceless one FAILED", c)
	}
}

func TestClaimsPassOverTheDueMessagesInOrderOnce(t *testing.T) {
	f := setup(t)
	m := f.member(db.RoleMember)
	for i := range 3 {
		f.device(m, "token-"+strconv.Itoa(i))
	}
	f.promotion(m) // three ordinary messages; m now holds a spot on the line
	captain := f.member(db.RoleMember)
	if _, err := f.Store.AssignCaptain(f.Ctx, f.Staff, f.lineID, captain.MemberID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Store.PostAnnouncement(f.Ctx, captain, db.NewAnnouncement{PicketLineID: &f.lineID, Body: "To the gate", Urgent: true}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Store.FanOutAnnouncements(f.Ctx, db.System); err != nil || n != 1 {
		t.Fatalf("fan-out told %d, %v", n, err)
	}
	// Two at a time, each claim going on after the last. After the first
	// claim one of its messages is put back, due before the position the
	// claims have reached: going on from there passes it by, as it passes
	// by every message already taken, and the next pass picks it up.
	first, after, err := f.Store.ClaimPush(f.Ctx, db.System, 2, time.Minute, nil)
	if err != nil || len(first) != 2 || after == nil {
		t.Fatalf("first claim: %d messages, next %v, %v", len(first), after, err)
	}
	back := first[0]
	if err := f.Store.RecordPush(f.Ctx, db.System, []db.PushOutcome{{ID: back.ID, Result: db.PushPostponed, At: f.Clock.Now().Add(-time.Hour)}}, testConfig.MaxAttempts); err != nil {
		t.Fatal(err)
	}
	got := first[1:]
	for claims := 2; ; claims++ {
		batch, next, err := f.Store.ClaimPush(f.Ctx, db.System, 2, time.Minute, after)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, batch...)
		if next == nil {
			break
		}
		if claims > 4 {
			t.Fatalf("claim %d still has more after %d messages", claims, len(got))
		}
		after = next
	}
	seen := map[int64]bool{}
	for i, msg := range got {
		if msg.ID == back.ID || seen[msg.ID] {
			t.Fatalf("message %d claimed again within one pass", msg.ID)
		}
		seen[msg.ID] = true
		if msg.Urgent != (i < 2) {
			t.Fatalf("claim order %v: want the urgent messages first", got)
		}
	}
	if len(got) != 5 {
		t.Fatalf("one pass claimed %d messages, want the 5 not put back", len(got))
	}
	if batch, next, err := f.Store.ClaimPush(f.Ctx, db.System, 2, time.Minute, nil); err != nil || len(batch) != 1 || batch[0].ID != back.ID || next != nil {
		t.Fatalf("the next pass claimed %v (next %v, %v), want only the message put back", batch, next, err)
	}
	// Caught up: a new pass finds nothing due.
	if batch, next, err := f.Store.ClaimPush(f.Ctx, db.System, 2, time.Minute, nil); err != nil || len(batch) != 0 || next != nil {
		t.Fatalf("a new pass claimed %d (next %v, %v)", len(batch), next, err)
	}
}
