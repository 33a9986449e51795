package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// wsOperation runs a query or mutation on a websocket and returns its
// answer.
func wsOperation(c *wsClient, id, query string, vars map[string]any) *gqlResponse {
	c.t.Helper()
	c.subscribe(id, query, vars)
	m := c.next()
	if m.Type != "next" || m.ID != id {
		c.t.Fatalf("got %s %s, want next for %s", m.Type, m.Payload, id)
	}
	var r gqlResponse
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		c.t.Fatal(err)
	}
	r.Body = m.Payload
	if m := c.next(); m.Type != "complete" {
		c.t.Fatalf("got %s %s, want complete", m.Type, m.Payload)
	}
	return &r
}

// renames is a mutation operation of n fields, each setting the caller's
// name: the last one's name stays, so what ran shows in the name.
func renames(names ...string) string {
	var b strings.Builder
	b.WriteString("mutation {")
	for i, n := range names {
		fmt.Fprintf(&b, ` r%d: updateMyContact(input: {name: %q}) { name }`, i, n)
	}
	b.WriteString(" }")
	return b.String()
}

// errMinuteTurned abandons a run of inOneMinute.
var errMinuteTurned = errors.New("a minute boundary passed")

// minuteRun is one run of inOneMinute.
type minuteRun struct {
	t     *testing.T
	start time.Time
	// turned is closed when the minute ends.
	turned chan struct{}
}

func (r *minuteRun) over() bool { return !time.Now().Truncate(time.Minute).Equal(r.start) }

// expect fails the test unless ok, or abandons the run if a minute
// boundary has passed since it began.
func (r *minuteRun) expect(ok bool, format string, args ...any) {
	r.t.Helper()
	switch {
	case r.over():
		panic(errMinuteTurned)
	case !ok:
		r.t.Fatalf(format, args...)
	}
}

// waitLog waits for a line of s's log after mark that holds text.
func (r *minuteRun) waitLog(s *testServer, mark int, text string) {
	r.t.Helper()
	_, ok := s.log.waitFor(mark, waitTimeout, r.turned, func(l string) bool { return strings.Contains(l, text) })
	r.expect(ok, "no log line %q within %v; log so far:\n%s", text, waitTimeout, s.log.String())
}

// inOneMinute runs try until a run stays within one wall-clock minute, the
// window of the member mutation limit on a server on the wall clock, so
// that a boundary falling inside cannot fail a test that counts up to the
// limit. A failed expectation fails the test only when no boundary has
// passed since the run began; otherwise the run is abandoned and another
// begins, with the fresh member that try makes.
func inOneMinute(t *testing.T, try func(r *minuteRun)) {
	t.Helper()
	for range 3 {
		r := &minuteRun{t: t, start: time.Now().Truncate(time.Minute), turned: make(chan struct{})}
		timer := time.AfterFunc(time.Until(r.start.Add(time.Minute)), func() { close(r.turned) })
		ok := completed(func() { try(r) })
		timer.Stop()
		if ok && !r.over() {
			return
		}
	}
	t.Fatalf("every run crossed a minute boundary")
}

// completed runs f and reports whether it ran to its end rather than
// being abandoned with errMinuteTurned.
func completed(f func()) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != errMinuteTurned {
				panic(p)
			}
			ok = false
		}
	}()
	f()
	return true
}

// limited reports whether r is a refusal by the member mutation limit,
// with the seconds left in the minute, and nothing of the operation ran.
func limited(r *gqlResponse) bool {
	if r.Code() != "RATE_LIMITED" || r.HasData() {
		return false
	}
	s := r.Errors[0].Extensions.RetryAfterSeconds
	return s >= 1 && s <= 60
}

// myName is the caller's name as the server has it.
func (s *testServer) myName(t *testing.T, token string) string {
	t.Helper()
	var out struct{ Me struct{ Name string } }
	s.do(t, token, `{ me { name } }`, nil, &out)
	return out.Me.Name
}

func TestMemberMutationLimitRefusesAtTheThresholdOverHTTPAndWebsockets(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["RATE_LIMIT_MEMBER_PER_MINUTE"] = "4" })
	inOneMinute(t, func(run *minuteRun) {
		m := s.addMember(t, db.RoleMember)
		ws := s.dialWS(t, nil)
		ws.init(m.Token)
		// Two over HTTP and one over the websocket: each field counts.
		r := s.gql(t, m.Token, renames("one", "two"), nil)
		run.expect(r.Code() == "", "two mutations of four: %s", r)
		r = wsOperation(ws, "1", renames("three"), nil)
		run.expect(r.Code() == "", "the third over a websocket: %s", r)
		// Two more would be five: neither runs.
		r = s.gql(t, m.Token, renames("refused", "refused too"), nil)
		run.expect(limited(r), "two mutations with one left: got %s, want RATE_LIMITED", r)
		run.expect(s.myName(t, m.Token) == "three", "a refused operation ran")
		r = wsOperation(ws, "2", renames("four"), nil)
		run.expect(r.Code() == "", "the fourth: %s", r)
		r = wsOperation(ws, "3", renames("five"), nil)
		run.expect(limited(r), "the fifth over a websocket: got %s, want RATE_LIMITED", r)
		r = s.gql(t, m.Token, renames("five"), nil)
		run.expect(limited(r), "the fifth over HTTP: got %s, want RATE_LIMITED", r)
		run.expect(s.myName(t, m.Token) == "four", "a refused operation ran")
		// Queries, the mutations open to strangers, and other members are
		// not held by the member's count.
		r = s.gql(t, m.Token, `mutation($e: String!) { requestLoginCode(email: $e) }`, map[string]any{"e": m.Email})
		run.expect(r.Code() == "", "requestLoginCode past the member's limit: %s", r)
		other := s.addMember(t, db.RoleMember)
		r = s.gql(t, other.Token, renames("a", "b", "c", "d"), nil)
		run.expect(r.Code() == "", "another member: %s", r)
	})
}

func TestMemberMutationLimitZeroIsOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["RATE_LIMIT_MEMBER_PER_MINUTE"] = "0" })
	m := s.addMember(t, db.RoleMember)
	names := make([]string, maxRootFields)
	for i := range names {
		names[i] = fmt.Sprintf("name %d", i)
	}
	// More than the default limit, well within a minute.
	for range db.DefaultMutationsPerMinute/maxRootFields + 1 {
		s.do(t, m.Token, renames(names...), nil, nil)
	}
}

// TestMemberMutationLimitIsSharedByReplicas: two servers on one database
// share a member's count once each has flushed it, within the tolerance
// MutationLimiter states (each replica may admit, before its next flush,
// what it has not heard of).
func TestMemberMutationLimitIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	limit := func(env map[string]string) {
		env["RATE_LIMIT_MEMBER_PER_MINUTE"] = "6"
		// Each flush that shares counts is logged at debug.
		env["LOG_LEVEL"] = "debug"
	}
	a := startServer(t, limit)
	b := startServerWith(t, a.DBURL, limit)
	inOneMinute(t, func(run *minuteRun) {
		m := a.addMember(t, db.RoleMember)
		// sent runs an operation on one server and waits until that
		// server has shared what it admitted: only this member mutates on
		// these servers, so its next flush is the one.
		sent := func(s *testServer, names ...string) *gqlResponse {
			t.Helper()
			mark := s.log.mark()
			r := s.gql(t, m.Token, renames(names...), nil)
			if r.Code() == "" {
				run.waitLog(s, mark, "shared mutation counts")
			}
			return r
		}
		shared := func(want int) {
			t.Helper()
			var got int
			if err := a.bundle.Pool.QueryRow(a.bundle.Ctx, `SELECT coalesce(sum(mutations), 0) FROM member_mutations WHERE member_id = $1`, m.ID).Scan(&got); err != nil {
				t.Fatal(err)
			}
			run.expect(got == want, "shared count %d, want %d", got, want)
		}
		r := sent(a, "1", "2", "3", "4")
		run.expect(r.Code() == "", "four on A: %s", r)
		shared(4)
		// B has not heard of the member yet: one more is within the
		// tolerance, and B's flush brings back the total.
		r = sent(b, "5")
		run.expect(r.Code() == "", "the fifth on B: %s", r)
		shared(5)
		r = sent(b, "6", "7")
		run.expect(limited(r), "two more on B, knowing of A's four: got %s, want RATE_LIMITED", r)
		r = sent(b, "6")
		run.expect(r.Code() == "", "the sixth on B: %s", r)
		// A last heard of four: one more is within the tolerance, and
		// once A has flushed it, A refuses too.
		r = sent(a, "7")
		run.expect(r.Code() == "", "A before its flush: %s", r)
		shared(7)
		r = sent(a, "8")
		run.expect(limited(r), "A after its flush: got %s, want RATE_LIMITED", r)
		r = sent(b, "8")
		run.expect(limited(r), "B at the limit: got %s, want RATE_LIMITED", r)
	})
}

func TestMemberMutationLimitAdmitsExactlyTheLimitWhenRacing(t *testing.T) {
	t.Parallel()
	const limit, racers = 20, 100
	s := startServer(t, func(env map[string]string) { env["RATE_LIMIT_MEMBER_PER_MINUTE"] = fmt.Sprint(limit) })
	inOneMinute(t, func(run *minuteRun) {
		m := s.addMember(t, db.RoleMember)
		var mu sync.Mutex
		codes := map[string]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				body, _ := json.Marshal(map[string]any{"query": renames(fmt.Sprint(i))})
				r, err := s.tryPost(m.Token, "application/json", body)
				code := "transport error"
				if err == nil && (r.Code() == "" || limited(r)) {
					code = r.Code()
				} else if err == nil {
					code = r.String()
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		run.expect(codes[""] == limit && codes["RATE_LIMITED"] == racers-limit,
			"%d racing mutations of one member, limit %d: answers %v", racers, limit, codes)
	})
}

// TestServerFlushesMutationCountsEverySecondAndOnStop runs the server's
// flush loop on the kit's fake clock: counts are shared each
// db.MutationFlushInterval, and once more when the loop stops.
func TestServerFlushesMutationCountsEverySecondAndOnStop(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	mutations := db.NewMutationLimiter(b.Store, 10)
	member := b.NewMember()
	log := newLogSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		flushMutationsLoop(ctx, mutations, b.Clock, slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	defer func() { cancel(); <-done }()
	shared := func() int {
		t.Helper()
		var n int
		if err := b.Pool.QueryRow(b.Ctx, `SELECT coalesce(sum(mutations), 0) FROM member_mutations WHERE member_id = $1`, member.MemberID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := b.Clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := mutations.Admit(member, 3); err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(db.MutationFlushInterval)
	log.waitAfter(t, 0, waitTimeout, func(l string) bool { return strings.Contains(l, `"msg":"shared mutation counts","members":1`) })
	if got := shared(); got != 3 {
		t.Fatalf("shared count after a flush %d, want 3", got)
	}
	// Admitted after the last tick, and still shared when the server stops.
	if err := mutations.Admit(member, 2); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if got := shared(); got != 5 {
		t.Fatalf("shared count after the loop stopped %d, want 5", got)
	}
}
