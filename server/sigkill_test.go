package main

// The server killed with SIGKILL in the middle of a sign-up storm and a
// push. Nothing runs in a process after SIGKILL, so the server here runs in
// a child process, on a PostgreSQL of the test's own; what it acknowledged
// before it died is checked once another process on the same database has
// finished the work the first left behind.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/auth"
	"github.com/picketline/picketline/server/mail/mailtest"
)

// childServerEnv, set in a process's environment, makes the test binary
// the server: its init runs main before any test does. A test that must
// kill the server runs it so, as a child process, on the code under test
// without linking another binary of it.
const childServerEnv = "PICKETLINE_TEST_CHILD_SERVER"

func init() {
	if os.Getenv(childServerEnv) != "" {
		main()
		os.Exit(0)
	}
}

// serverProcess is `picketline serve` running as a child process.
type serverProcess struct {
	URL    string
	cmd    *exec.Cmd
	log    *logSink
	exited chan struct{}
}

// startProcess runs `picketline serve` in a child process with exactly env,
// and waits until it is ready. It is killed at the end of the test if it
// still runs.
func startProcess(t *testing.T, env map[string]string) *serverProcess {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: exec.Command(bin, "serve"), log: newLogSink(), exited: make(chan struct{})}
	p.cmd.Env = []string{childServerEnv + "=1"}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start the server: %v", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("log of server process %d:\n%s", p.cmd.Process.Pid, p.log.String())
		}
	})
	line, ok := p.log.waitFor(0, waitTimeout, p.exited, listeningPattern.MatchString)
	if !ok {
		t.Fatalf("the server did not log its address; log:\n%s", p.log.String())
	}
	p.URL = "http://" + listeningPattern.FindStringSubmatch(line)[1]
	if _, ok := p.log.waitFor(0, waitTimeout, p.exited, readyPattern.MatchString); !ok {
		t.Fatalf("the server did not become ready; log:\n%s", p.log.String())
	}
	return p
}

// kill sends SIGKILL, which the process cannot catch, and waits until it
// is gone.
func (p *serverProcess) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// speakingTo returns the harness speaking to the process p, with s's kit
// and tokens: the connections of a client that spoke to a process before
// it, all dead, are not reused.
func (s *testServer) speakingTo(p *serverProcess) *testServer {
	c := *s
	c.URL, c.log = p.URL, p.log
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 300
	c.http = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	return &c
}

// processHarness is the harness for a first process on an empty database,
// with the kit on the database the process has migrated.
func processHarness(t *testing.T, p *serverProcess, env map[string]string) *testServer {
	t.Helper()
	tokens, err := auth.NewTokens([]byte(env["JWT_SECRET"]), auth.DefaultTTL, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := (&testServer{DBURL: env["DATABASE_URL"], env: env, tokens: tokens}).speakingTo(p)
	s.bundle = dbtest.SetupWith(t, dbtest.Options{Pool: dbtest.PoolFor(t, s.DBURL), Now: time.Now().UTC().Truncate(time.Second)})
	return s
}

// count is how many messages the fake FCM has taken.
func (f *fcmInbox) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// waitCount waits until the fake FCM has taken n messages.
func (f *fcmInbox) waitCount(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		got, changed := len(f.got), f.changed
		f.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("the fake FCM took %d messages within %v, want %d", got, waitTimeout, n)
		}
	}
}

// messages returns what the fake FCM has taken.
func (f *fcmInbox) messages() []fcmMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// storm is what the clients of a sign-up storm were told.
type storm struct {
	mu sync.Mutex
	// acked holds the sign-ups answered, by id.
	acked map[string]ackedSignup
	// cancelSent and cancelAcked hold the sign-ups a cancellation was sent
	// for, and those it was answered for.
	cancelSent, cancelAcked map[string]bool
	// codesAsked holds the emails whose login code request was answered.
	codesAsked []string
	// unanswered counts requests that got no answer; refused lists the
	// answers that were errors.
	unanswered int
	refused    []string
	// signedUp counts answered sign-ups; reached is closed when it reaches
	// killAfter.
	signedUp  atomic.Int32
	killAfter int32
	reached   chan struct{}
}

func newStorm(killAfter int32) *storm {
	return &storm{acked: map[string]ackedSignup{}, cancelSent: map[string]bool{}, cancelAcked: map[string]bool{}, killAfter: killAfter, reached: make(chan struct{})}
}

type ackedSignup struct {
	MemberID, ShiftID string
	Status            db.SignupStatus
}

// stormJob is one client's work: a member signing up for a shift (and
// maybe cancelling), or someone asking for a login code.
type stormJob struct {
	member *member
	shift  string
	// cancelIf lists the statuses in which the member cancels the sign-up
	// as soon as it is answered.
	cancelIf []db.SignupStatus
	email    string
}

const (
	stormCancel      = `mutation($id: ID!) { cancelSignup(signupId: $id) { id status } }`
	stormRequestCode = `mutation($e: String!) { requestLoginCode(email: $e) }`
)

// signupAnswer is what signUpForShift and cancelSignup answer.
type signupAnswer struct {
	ID     string          `json:"id"`
	Status db.SignupStatus `json:"status"`
}

// call sends one operation and returns its single field's answer, or false
// when there was none; errors answered are kept.
func (st *storm) call(s *testServer, token, query string, vars map[string]any, field string, out any) bool {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	r, err := s.tryPost(token, "application/json", body)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.unanswered++
		return false
	}
	var data map[string]json.RawMessage
	if r.Status != http.StatusOK || len(r.Errors) > 0 || json.Unmarshal(r.Data, &data) != nil || data[field] == nil {
		st.refused = append(st.refused, r.String())
		return false
	}
	return json.Unmarshal(data[field], out) == nil
}

func (st *storm) run(s *testServer, j stormJob) {
	if j.email != "" {
		var ok bool
		if st.call(s, "", stormRequestCode, map[string]any{"e": j.email}, "requestLoginCode", &ok) && ok {
			st.mu.Lock()
			st.codesAsked = append(st.codesAsked, j.email)
			st.mu.Unlock()
		}
		return
	}
	var su signupAnswer
	if !st.call(s, j.member.Token, httpSignUp, map[string]any{"s": j.shift}, "signUpForShift", &su) {
		return
	}
	st.mu.Lock()
	st.acked[su.ID] = ackedSignup{MemberID: j.member.ID, ShiftID: j.shift, Status: su.Status}
	st.mu.Unlock()
	if st.signedUp.Add(1) == st.killAfter {
		close(st.reached)
	}
	if !slices.Contains(j.cancelIf, su.Status) {
		return
	}
	st.mu.Lock()
	st.cancelSent[su.ID] = true
	st.mu.Unlock()
	var cancelled signupAnswer
	if st.call(s, j.member.Token, stormCancel, map[string]any{"id": su.ID}, "cancelSignup", &cancelled) && cancelled.Status == db.SignupCancelled {
		st.mu.Lock()
		st.cancelAcked[su.ID] = true
		st.mu.Unlock()
	}
}

// waitUntil asks done again and again until it holds, failing the test
// after timeout with what done last said.
func waitUntil(t *testing.T, timeout time.Duration, done func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := done()
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("not done within %v: %s", timeout, state)
		}
	}
}

// A server killed with SIGKILL, mid-way through a storm of sign-ups and
// cancellations on small shifts, an urgent announcement going out to 300
// phones and login emails on their way, loses nothing it acknowledged:
// another server started on the same database finishes its work.
func TestSIGKILLMidStormLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	const (
		audienceSize   = 150 // members the urgent announcement reaches, two phones each
		stormSize      = 240 // members signing up in the storm, one phone each
		stormShifts    = 4
		stormCapacity  = 5
		codeRequesters = 30 // a third before the storm, the rest during it
		// The server is killed once this many sign-ups were answered: a
		// quarter in, with clients' requests in flight.
		killAfter = stormSize / 4
	)
	pg := dbtest.StartCluster(t)
	fcm := newFCMInbox(t)
	mt := startMailServer(t)
	// Each email takes a while, so that several are on their way when the
	// server dies.
	mt.DelayData(300 * time.Millisecond)
	env := testEnv(t, pg.URL())
	withSMTP(mt)(env)
	env["FIREBASE_PROJECT_ID"] = "picketline-test"
	env["FCM_ENDPOINT"] = fcm.URL + "/v1"
	// Slow enough that the announcement is still going out when the server
	// dies: three seconds in all.
	env["PUSH_RATE"] = "100"
	// All the code requests come from one address.
	env["RATE_LIMIT_LOGIN_PER_ADDRESS_PER_HOUR"] = "100000"
	first := startProcess(t, env)
	s := processHarness(t, first, env)
	k := s.kit(t)

	phones := func(m *member, n int) {
		for i := range n {
			if _, err := k.Store.RegisterDevice(k.Ctx, m.Actor(), fmt.Sprintf("phone-%d-%s", i, m.ID), db.PlatformAndroid); err != nil {
				t.Fatal(err)
			}
		}
	}
	lineA := k.Line()
	shiftA := k.ShiftOn(lineA, 48*time.Hour, audienceSize)
	captainA := s.captain(t, lineA)
	audience := map[string]bool{}
	for range audienceSize {
		m := s.addMember(t, db.RoleMember)
		k.SignUp(m.Actor(), shiftA)
		phones(m, 2)
		audience[m.ID] = true
	}
	lineB := k.Line()
	captainB := s.captain(t, lineB)
	var shifts []string
	for i := range stormShifts {
		shifts = append(shifts, k.ShiftOn(lineB, 48*time.Hour+time.Duration(i)*8*time.Hour, stormCapacity).ID)
	}
	var jobs []stormJob
	for i := range stormSize {
		m := s.addMember(t, db.RoleMember)
		phones(m, 1)
		// Half of those given a spot give it up at once, promoting the head
		// of the waitlist, and a fifth of those put on the waitlist leave it.
		var cancelIf []db.SignupStatus
		if i%2 == 0 {
			cancelIf = append(cancelIf, db.SignupSignedUp)
		}
		if i%5 == 0 {
			cancelIf = append(cancelIf, db.SignupWaitlisted)
		}
		jobs = append(jobs, stormJob{member: m, shift: shifts[i%stormShifts], cancelIf: cancelIf})
		if i%(stormSize/(codeRequesters-codeRequesters/3)) == 0 {
			jobs = append(jobs, stormJob{email: k.Member(db.RoleMember).Email})
		}
	}

	var ann struct{ PostAnnouncement struct{ ID string } }
	s.do(t, captainA.Token, `mutation($l: ID!) { postAnnouncement(input: {picketLineId: $l, body: "Everyone to the north gate", urgent: true}) { id } }`,
		map[string]any{"l": lineA.ID}, &ann)
	fcm.waitCount(t, 10)
	st := newStorm(killAfter)
	// The mail server keeps its answer to the first email until the server
	// that sent it is dead: that one went out, and its sender never knew.
	held, release := mt.HoldData()
	t.Cleanup(release)
	for range codeRequesters / 3 {
		email := k.Member(db.RoleMember).Email
		s.askForCode(t, email)
		st.codesAsked = append(st.codesAsked, email)
	}
	select {
	case <-held:
	case <-time.After(waitTimeout):
		t.Fatalf("no login email reached the mail server within %v", waitTimeout)
	}

	queue := make(chan stormJob)
	var clients sync.WaitGroup
	for range 32 {
		clients.Go(func() {
			for j := range queue {
				st.run(s, j)
			}
		})
	}
	go func() {
		defer close(queue)
		for _, j := range jobs {
			queue <- j
		}
	}()
	select {
	case <-st.reached:
	case <-time.After(waitTimeout):
		t.Fatalf("the storm had %d sign-ups answered within %v, want %d", st.signedUp.Load(), waitTimeout, killAfter)
	}
	first.kill()
	clients.Wait()
	release()

	pushed := fcm.count()
	var claimedPush, claimedEmails int
	if err := k.Pool.QueryRow(k.Ctx, `SELECT (SELECT count(*) FROM push_outbox WHERE status = 'SENDING'), (SELECT count(*) FROM login_emails WHERE status = 'SENDING')`).
		Scan(&claimedPush, &claimedEmails); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d sign-ups and %d code requests answered and %d requests unanswered, %d messages at FCM and %d claimed, %d emails claimed",
		len(st.acked), len(st.codesAsked), st.unanswered, pushed, claimedPush, claimedEmails)
	switch {
	case pushed >= 2*audienceSize:
		t.Fatalf("all %d messages of the announcement went out before the kill: it must come mid-push", pushed)
	case st.unanswered == 0:
		t.Fatal("every request was answered: the kill must come with requests in flight")
	case claimedEmails == 0:
		t.Fatal("no login email was on its way: the kill must come mid-send")
	case len(st.refused) > 0:
		t.Fatalf("requests refused before the kill: %v", st.refused)
	}
	// Another worker takes over the dead process's claims once their leases
	// run out, a minute or two after it made them; the test brings that
	// moment forward rather than wait for it (the leases running out on
	// their own are the stores' tests, on a fake clock).
	s.sql(t, `UPDATE push_outbox SET claimed_until = now() WHERE status = 'SENDING'`)
	s.sql(t, `UPDATE login_emails SET next_attempt_at = now() WHERE status = 'SENDING'`)

	s = s.speakingTo(startProcess(t, env))
	waitUntil(t, waitTimeout, func() (bool, string) {
		var requests, emails, batches, messages int
		err := k.Pool.QueryRow(k.Ctx, `
SELECT (SELECT count(*) FROM login_requests),
       (SELECT count(*) FROM login_emails WHERE status IN ('PENDING', 'SENDING')),
       (SELECT count(*) FROM announcement_fanout_batches),
       (SELECT count(*) FROM push_outbox WHERE status IN ('PENDING', 'SENDING'))`).Scan(&requests, &emails, &batches, &messages)
		if err != nil {
			t.Fatal(err)
		}
		return requests+emails+batches+messages == 0, fmt.Sprintf("%d login requests and %d emails, %d fan-out batches and %d push messages still to go", requests, emails, batches, messages)
	})

	t.Run("every acknowledged sign-up is there as answered, or as it may have become since", func(t *testing.T) {
		st.checkSignups(t, k)
	})
	t.Run("no shift is over capacity and its counters are its rows", func(t *testing.T) {
		checkShiftCounts(t, k)
	})
	t.Run("waitlist positions run from 1 without gaps", func(t *testing.T) {
		checkWaitlists(t, s, captainB.Token, shifts)
	})
	t.Run("no outbox message is lost and each reached its device with its event id", func(t *testing.T) {
		st.checkOutbox(t, k, fcm, ann.PostAnnouncement.ID, audience)
	})
	t.Run("every login code asked for arrived by email and signs in", func(t *testing.T) {
		checkLoginEmails(t, s, mt, st.codesAsked)
	})
}

// checkSignups finds every sign-up answered with the status it was answered
// with, or one it may have come to since.
func (st *storm) checkSignups(t *testing.T, k *dbtest.Bundle) {
	rows, err := k.Pool.Query(k.Ctx, `SELECT id, member_id, shift_id, status FROM signups WHERE id = ANY($1)`, slices.Collect(maps.Keys(st.acked)))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]ackedSignup{}
	for rows.Next() {
		var (
			id string
			su ackedSignup
		)
		if err := rows.Scan(&id, &su.MemberID, &su.ShiftID, &su.Status); err != nil {
			t.Fatal(err)
		}
		found[id] = su
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, want := range st.acked {
		got, ok := found[id]
		if !ok {
			t.Errorf("sign-up %s, answered %s, is gone", id, want.Status)
			continue
		}
		// A spot is kept, a place on the waitlist may have become a spot,
		// and only its member cancels a sign-up.
		allowed := []db.SignupStatus{want.Status}
		if want.Status == db.SignupWaitlisted {
			allowed = append(allowed, db.SignupSignedUp)
		}
		if st.cancelSent[id] {
			allowed = append(allowed, db.SignupCancelled)
		}
		if st.cancelAcked[id] {
			allowed = []db.SignupStatus{db.SignupCancelled}
		}
		if got.MemberID != want.MemberID || got.ShiftID != want.ShiftID || !slices.Contains(allowed, got.Status) {
			t.Errorf("sign-up %s answered %+v is now %+v, want one of %v", id, want, got, allowed)
		}
	}
}

// checkShiftCounts holds every shift to its capacity, its counters to its
// rows, and its waitlist to a full shift.
func checkShiftCounts(t *testing.T, k *dbtest.Bundle) {
	rows, err := k.Pool.Query(k.Ctx, `
SELECT sh.id, sh.capacity, sh.signed_up_count, sh.waitlist_count,
       count(s.id) FILTER (WHERE s.status = 'SIGNED_UP'), count(s.id) FILTER (WHERE s.status = 'WAITLISTED')
FROM shifts sh LEFT JOIN signups s ON s.shift_id = sh.id
GROUP BY sh.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id                                       string
			capacity, counted, waiting, spots, queue int
		)
		if err := rows.Scan(&id, &capacity, &counted, &waiting, &spots, &queue); err != nil {
			t.Fatal(err)
		}
		if spots > capacity || counted != spots || waiting != queue || (queue > 0 && spots < capacity) {
			t.Errorf("shift %s of capacity %d counts %d signed up and %d waiting, and holds %d spots and %d waiting: over capacity, miscounted, or a spot free while members wait",
				id, capacity, counted, waiting, spots, queue)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkWaitlists reads each shift's sign-ups as its captain does, and
// wants the waitlist numbered 1, 2, 3... in its order.
func checkWaitlists(t *testing.T, s *testServer, captain string, shifts []string) {
	const q = `query($s: ID!, $first: Int, $after: String) { shift(id: $s) { signups(first: $first, after: $after) {
		edges { cursor node { id status waitlistPosition } } pageInfo { hasNextPage endCursor } } } }`
	type node struct {
		ID               string
		Status           db.SignupStatus
		WaitlistPosition *int
	}
	type page struct {
		Shift struct{ Signups connection[node] }
	}
	for _, sh := range shifts {
		next := 1
		for _, su := range allPages(t, s, captain, q, map[string]any{"s": sh}, 100, func(p *page) connection[node] { return p.Shift.Signups }) {
			if su.Status != db.SignupWaitlisted {
				continue
			}
			if su.WaitlistPosition == nil || *su.WaitlistPosition != next {
				t.Errorf("shift %s: sign-up %s waits at position %v, want %d", sh, su.ID, su.WaitlistPosition, next)
			}
			next++
		}
	}
}

// checkOutbox wants every outbox message sent and taken by the fake FCM,
// every device to have heard of each thing in one event however often it
// heard, the announcement queued for its whole audience, and a promotion
// message for every promotion of a sign-up answered as waiting.
func (st *storm) checkOutbox(t *testing.T, k *dbtest.Bundle, fcm *fcmInbox, announcement string, audience map[string]bool) {
	type queued struct {
		EventID, MemberID, Token, Kind, Subject string
		Status                                  db.PushStatus
	}
	rows, err := k.Pool.Query(k.Ctx, `SELECT event_id::text, member_id, device_token, kind, COALESCE(announcement_id::text, signup_id::text, ''), status FROM push_outbox`)
	if err != nil {
		t.Fatal(err)
	}
	var outbox []queued
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.EventID, &q.MemberID, &q.Token, &q.Kind, &q.Subject, &q.Status); err != nil {
			t.Fatal(err)
		}
		outbox = append(outbox, q)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// What the fake FCM took, by device and event, and the events each
	// device heard of each thing in.
	type delivery struct{ Token, EventID string }
	type subject struct{ Token, Kind, Subject string }
	delivered := map[delivery]int{}
	events := map[subject]map[string]bool{}
	for _, m := range fcm.messages() {
		delivered[delivery{m.Token, m.Data["event_id"]}]++
		key := subject{m.Token, m.Data["kind"], m.Data["announcement_id"] + m.Data["signup_id"]}
		if events[key] == nil {
			events[key] = map[string]bool{}
		}
		events[key][m.Data["event_id"]] = true
	}
	for key, ids := range events {
		if len(ids) != 1 {
			t.Errorf("%s heard of %s %s in %d events, want one: repeats must carry the same event id", key.Token, key.Kind, key.Subject, len(ids))
		}
	}
	announced := map[string][]string{} // member: the event ids of their messages
	promoted := map[string]int{}       // sign-up: its promotion messages
	for _, q := range outbox {
		if q.Status != db.PushSent {
			t.Errorf("message %+v is %s, want SENT: the fake FCM takes every message", q, q.Status)
		}
		if delivered[delivery{q.Token, q.EventID}] == 0 {
			t.Errorf("message %+v never reached its device", q)
		}
		switch db.NotificationKind(q.Kind) {
		case db.NotifyUrgentAnnouncement:
			if q.Subject != announcement {
				t.Errorf("message %+v tells of another announcement than %s", q, announcement)
			}
			announced[q.MemberID] = append(announced[q.MemberID], q.EventID)
		case db.NotifyWaitlistPromoted:
			promoted[q.Subject]++
		}
	}
	seen := map[string]bool{}
	for m := range audience {
		ids := announced[m]
		if len(ids) != 2 || ids[0] != ids[1] || seen[ids[0]] {
			t.Errorf("member %s has the announcement queued as %v, want one event id of their own for their two phones", m, ids)
			continue
		}
		seen[ids[0]] = true
	}
	if len(announced) != len(audience) {
		t.Errorf("the announcement was queued for %d members, want its %d", len(announced), len(audience))
	}
	for id, su := range st.acked {
		if su.Status != db.SignupWaitlisted || st.cancelSent[id] || promoted[id] == 1 {
			continue
		}
		var now db.SignupStatus
		if err := k.Pool.QueryRow(k.Ctx, `SELECT status FROM signups WHERE id = $1`, id).Scan(&now); err != nil {
			t.Fatal(err)
		}
		if now == db.SignupSignedUp {
			t.Errorf("sign-up %s was promoted and has %d promotion messages, want one for its phone", id, promoted[id])
		}
	}
	repeats := 0
	for _, n := range delivered {
		repeats += n - 1
	}
	t.Logf("%d messages in the outbox, %d of them promotions; %d repeated at FCM", len(outbox), len(promoted), repeats)
}

// checkLoginEmails wants every login email sent, and each email address
// that asked for a code to have received one code, however many times,
// that signs in.
func checkLoginEmails(t *testing.T, s *testServer, mt *mailtest.Server, asked []string) {
	var unsent int
	if err := s.bundle.Pool.QueryRow(context.Background(), `SELECT count(*) FROM login_emails WHERE status <> 'SENT'`).Scan(&unsent); err != nil {
		t.Fatal(err)
	}
	if unsent > 0 {
		t.Errorf("%d login emails did not go out", unsent)
	}
	codes := map[string]map[string]bool{}
	for _, msg := range mt.Received() {
		if codes[msg.To[0]] == nil {
			codes[msg.To[0]] = map[string]bool{}
		}
		codes[msg.To[0]][emailedCodePattern.FindString(msg.Text)] = true
	}
	for _, email := range asked {
		if len(codes[email]) != 1 {
			t.Errorf("%s got emails with the codes %v, want one code, at least once", email, codes[email])
			continue
		}
		for code := range codes[email] {
			s.signInWith(t, email, code)
		}
	}
}
