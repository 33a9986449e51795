package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The GraphQL operations the scenarios send.
const (
	signUpMutation = `mutation($s: ID!){ signUpForShift(shiftId:$s){ id status waitlistPosition } }`
	openShiftsQ    = `query { openShifts(first: 20){ edges { node { id startsAt spotsLeft } } pageInfo { hasNextPage endCursor } } }`
	myShiftsQ      = `query { myShifts(first: 20){ edges { node { id status shift { id startsAt } } } pageInfo { hasNextPage endCursor } } }`
)

// codeConflict is the error code of an expected overlap: it counts as a
// completed operation, reported apart.
const codeConflict = "CONFLICT"

// bench holds what every scenario needs.
type bench struct {
	opts   options
	data   *dataset
	pool   *pgxpool.Pool
	server *serverProc
	api    *apiClient
	// bin and env start the server again (ws-restart, push).
	bin string
	env map[string]string
	// mint gets tokens for members seeded later (the websocket scenarios').
	mint minter
	ws   *wsData
	// pg names the PostgreSQL processes whose CPU a scenario that samples
	// its own window counts.
	pg pgProcs
}

// loop runs workers that repeat an operation until a duration is over.
type loop struct {
	workers  int
	kinds    int           // how many kinds of operation op reports (≥ 1)
	duration time.Duration // how long workers start new operations
	interval time.Duration // per worker between starts; 0 runs flat out
}

// op does one operation and says which kind it was and how it ended: ""
// for success, codeConflict, or an error code.
type op func(ctx context.Context, w, i int, rng *rand.Rand) (kind int, code string)

// run runs the loop and returns each kind's recorders and the time until
// the last operation ended. Operations in flight at the end complete.
func (l loop) run(ctx context.Context, f op) ([][]*recorder, time.Duration) {
	kinds := max(l.kinds, 1)
	recs := make([][]*recorder, kinds)
	for k := range recs {
		recs[k] = make([]*recorder, l.workers)
		for w := range recs[k] {
			recs[k][w] = newRecorder()
		}
	}
	start := time.Now()
	deadline := start.Add(l.duration)
	var wg sync.WaitGroup
	for w := range l.workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
			next := start.Add(time.Duration(rng.Int64N(int64(max(l.interval, 1)))))
			for i := 0; ctx.Err() == nil; i++ {
				if l.interval > 0 {
					if wait := time.Until(next); wait > 0 {
						time.Sleep(wait)
					}
					next = maxTime(next.Add(l.interval), time.Now())
				}
				if !time.Now().Before(deadline) {
					return
				}
				t := time.Now()
				kind, code := f(ctx, w, i, rng)
				d := time.Since(t)
				switch r := recs[kind][w]; code {
				case "":
					r.ok(d)
				case codeConflict:
					r.conflict(d)
				default:
					r.fail(code)
				}
			}
		})
	}
	wg.Wait()
	return recs, time.Since(start)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// randomSignUp is the sign-up workload: a random member, a random shift.
func (b *bench) randomSignUp(ctx context.Context, _, _ int, rng *rand.Rand) (int, string) {
	m := b.data.Members[rng.IntN(len(b.data.Members))]
	_, code := b.api.signUp(ctx, m, b.data.ShiftIDs[rng.IntN(len(b.data.ShiftIDs))])
	return 0, code
}

// scenarioReport is what one scenario measured and found.
type scenarioReport struct {
	Name    string    `json:"name"`
	Results []Result  `json:"results"`
	CPU     *CPUSplit `json:"cpu,omitempty"`
	// ServerPeakRSS is the server's VmHWM once the scenario was over.
	ServerPeakRSS string `json:"server_peak_rss"`
	// Checks are the correctness checks of the scenario, with ok set when
	// they held.
	Checks []check `json:"checks,omitempty"`
	// Targets are the scenario's own goals, added to the summary's.
	Targets []target `json:"targets,omitempty"`
	// serverChanged is set when the scenario restarted the server, whose
	// CPU then cannot be split.
	serverChanged bool
}

// check is a verified property of a scenario's outcome.
type check struct {
	What string `json:"what"`
	OK   bool   `json:"ok"`
	Got  string `json:"got"`
}

// result returns the named result, or nil.
func (s *scenarioReport) result(name string) *Result {
	for i := range s.Results {
		if s.Results[i].Name == name {
			return &s.Results[i]
		}
	}
	return nil
}

// bare drives the SQL of SignUpForShift straight through pgx, with no HTTP,
// GraphQL or authentication: the ceiling the API is compared with. It
// removes its sign-ups afterwards.
func (b *bench) bare(ctx context.Context) (*scenarioReport, error) {
	// Open every pool connection first so the run pays for no connects.
	var conns []*pgxpool.Conn
	for range b.pool.Config().MaxConns {
		c, err := b.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	recs, took := loop{workers: b.opts.Concurrency, duration: b.opts.Duration}.run(ctx,
		func(ctx context.Context, _, _ int, rng *rand.Rand) (int, string) {
			m := b.data.Members[rng.IntN(len(b.data.Members))]
			return 0, bareSignUp(ctx, b.pool, m.ID, b.data.ShiftIDs[rng.IntN(len(b.data.ShiftIDs))])
		})
	res := merge("bare", recs[0], took)
	res.Notes = append(res.Notes, fmt.Sprintf("raw pgx, %d workers on a pool of %d", b.opts.Concurrency, b.pool.Config().MaxConns))
	if err := resetSignups(ctx, b.pool); err != nil {
		return nil, err
	}
	return &scenarioReport{Name: "bare", Results: []Result{res}}, nil
}

// bareSignUp is Store.SignUpForShift without an idempotency key: the same
// statements (see signupsql.go) in one transaction, with the same retries
// of serialization failures and deadlocks.
func bareSignUp(ctx context.Context, pool *pgxpool.Pool, memberID, shiftID string) string {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var (
				lineID             string
				capacity, signedUp int
				startsAt, endsAt   time.Time
				cancelledAt        *time.Time
				ended              bool
				key                *string
			)
			err := tx.QueryRow(ctx, lockShiftForSignupSQL, shiftID).Scan(
				&lineID, &capacity, &signedUp, &startsAt, &endsAt, &cancelledAt, &ended)
			if err != nil {
				return err
			}
			var (
				id, priorShift, priorMember, priorStatus string
				priorPosition                            *int
				priorCreated                             time.Time
				sameKey                                  bool
			)
			err = tx.QueryRow(ctx, priorSignupSQL, memberID, shiftID, key).Scan(
				&id, &priorShift, &priorMember, &priorStatus, &priorPosition, &priorCreated, &sameKey)
			if err == nil || !errors.Is(err, pgx.ErrNoRows) {
				return err // the sign-up already held, or a failure
			}
			status := "WAITLISTED"
			if signedUp < capacity {
				status = "SIGNED_UP"
			}
			var waitlist int
			err = tx.QueryRow(ctx, insertSignupSQL, shiftID, memberID, status, startsAt, endsAt, key, time.Now()).Scan(&id, &waitlist)
			if err != nil {
				return err
			}
			kinds := []string{"SIGNUP_CHANGED"}
			if status == "SIGNED_UP" && signedUp+1 == capacity {
				kinds = append(kinds, "SHIFT_FILLED")
			}
			_, err = tx.Exec(ctx, insertLineEventsSQL, lineID, kinds, shiftID, nil, time.Now(), nil)
			return err
		})
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return ""
		case errors.As(err, &pgErr) && pgErr.Code == "23P01":
			return codeConflict
		case errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") && attempt < 5:
			time.Sleep(time.Duration(attempt*attempt) * time.Millisecond)
		case errors.As(err, &pgErr):
			return "SQL_" + pgErr.Code
		case ctx.Err() != nil:
			return "CANCELLED"
		default:
			return "SQL"
		}
	}
}

// signups drives the same workload as bare through the API.
func (b *bench) signups(ctx context.Context) (*scenarioReport, error) {
	b.api.warm(ctx, b.opts.Concurrency)
	recs, took := loop{workers: b.opts.Concurrency, duration: b.opts.Duration}.run(ctx, b.randomSignUp)
	res := merge("signups", recs[0], took)
	res.Notes = append(res.Notes, fmt.Sprintf("%d keep-alive clients", b.opts.Concurrency))
	return &scenarioReport{Name: "signups", Results: []Result{res}}, nil
}

// race has raceMembers members sign up for one fresh shift of capacity
// raceCapacity at the same instant, then checks that exactly capacity got
// a spot and everyone else a distinct waitlist position in order.
func (b *bench) race(ctx context.Context) (*scenarioReport, error) {
	n, capacity, conns := b.opts.RaceMembers, b.opts.RaceCapacity, b.opts.RaceConns
	if n > len(b.data.Members) {
		return nil, fmt.Errorf("race needs %d members, only %d seeded (raise -members)", n, len(b.data.Members))
	}
	if conns <= 0 || conns > n {
		conns = n
	}
	// After every seeded shift, so no racer holds an overlapping one.
	start := b.data.Base.Add((seedDays + 1) * 24 * time.Hour)
	shiftID, err := createShift(ctx, b.pool, b.data.LineIDs[0], start, capacity)
	if err != nil {
		return nil, err
	}
	client := newAPIClient(b.server.URL, conns, true)
	defer client.close()
	client.warm(ctx, conns)

	answers := make([]raceAnswer, n)
	gate := make(chan struct{})
	var ready, wg sync.WaitGroup
	ready.Add(n)
	for i := range n {
		m := b.data.Members[i]
		payload := signupBody(shiftID)
		wg.Go(func() {
			a := &answers[i]
			tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) { a.reused = info.Reused },
			})
			ready.Done()
			<-gate
			t := time.Now()
			var ans signupAnswer
			a.code = client.post(tctx, m.Token, payload, &ans)
			a.took = time.Since(t)
			if su := ans.SignUpForShift; a.code == "" && su != nil {
				a.status, a.id, a.position = su.Status, su.ID, su.WaitlistPosition
			} else if a.code == "" {
				a.code = "NO_DATA"
			}
		})
	}
	ready.Wait()
	released := time.Now()
	close(gate)
	wg.Wait()
	makespan := time.Since(released)

	rec := newRecorder()
	var reused int
	for _, a := range answers {
		if a.reused {
			reused++
		}
		if a.code == "" {
			rec.ok(a.took)
		} else {
			rec.fail(a.code)
		}
	}
	res := merge("race", []*recorder{rec}, makespan)
	res.Notes = append(res.Notes,
		fmt.Sprintf("%d members at once on one shift of capacity %d, over %d connections (%d pre-warmed and reused, %d dialled during the race)",
			n, capacity, conns, reused, n-reused),
		fmt.Sprintf("all answered %.0f ms after release (ops/s = members / that)", ms(makespan)))

	checks, err := b.verifyRace(ctx, shiftID, n, capacity, answers)
	if err != nil {
		return nil, err
	}
	return &scenarioReport{Name: "race", Results: []Result{res}, Checks: checks}, nil
}

// raceAnswer is what the API answered one racer.
type raceAnswer struct {
	status, id string
	position   *int
	code       string
	took       time.Duration
	reused     bool
}

// verifyRace checks the race's outcome in the database and against what
// the API answered each member.
func (b *bench) verifyRace(ctx context.Context, shiftID string, n, capacity int, answers []raceAnswer) ([]check, error) {
	var signed, waitlisted, distinctSeq, distinctMembers, counterSigned, counterWaitlist int
	err := b.pool.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE s.status = 'SIGNED_UP'), count(*) FILTER (WHERE s.status = 'WAITLISTED'),
       count(DISTINCT s.waitlist_seq), count(DISTINCT s.member_id),
       min(sh.signed_up_count), min(sh.waitlist_count)
FROM signups s JOIN shifts sh ON sh.id = s.shift_id
WHERE s.shift_id = $1`, shiftID).Scan(&signed, &waitlisted, &distinctSeq, &distinctMembers, &counterSigned, &counterWaitlist)
	if err != nil {
		return nil, err
	}
	rank := map[string]int{}
	rows, err := b.pool.Query(ctx, `
SELECT id::text, row_number() OVER (ORDER BY waitlist_seq)::int
FROM signups WHERE shift_id = $1 AND status = 'WAITLISTED'`, shiftID)
	if err != nil {
		return nil, err
	}
	var id string
	var r int
	if _, err := pgx.ForEachRow(rows, []any{&id, &r}, func() error { rank[id] = r; return nil }); err != nil {
		return nil, err
	}

	wantWait := n - capacity
	var apiSigned, apiWait, mismatched int
	seen := map[int]bool{}
	for _, a := range answers {
		pos := a.position
		switch a.status {
		case "SIGNED_UP":
			apiSigned++
			if pos != nil {
				mismatched++
			}
		case "WAITLISTED":
			apiWait++
			if pos == nil || *pos < 1 || *pos > wantWait || seen[*pos] || rank[a.id] != *pos {
				mismatched++
			} else {
				seen[*pos] = true
			}
		}
	}
	return []check{
		{
			What: fmt.Sprintf("database: %d SIGNED_UP, %d WAITLISTED, %d distinct members", capacity, wantWait, n),
			OK:   signed == capacity && waitlisted == wantWait && distinctMembers == n && distinctSeq == wantWait,
			Got:  fmt.Sprintf("%d SIGNED_UP, %d WAITLISTED (%d distinct waitlist_seq), %d members", signed, waitlisted, distinctSeq, distinctMembers),
		},
		{
			What: "shift counters match",
			OK:   counterSigned == capacity && counterWaitlist == wantWait,
			Got:  fmt.Sprintf("signed_up_count=%d waitlist_count=%d", counterSigned, counterWaitlist),
		},
		{
			What: fmt.Sprintf("API answers: %d SIGNED_UP, positions 1..%d each once, equal to waitlist order", capacity, wantWait),
			OK:   apiSigned == capacity && apiWait == wantWait && len(seen) == wantWait && mismatched == 0,
			Got:  fmt.Sprintf("%d SIGNED_UP, %d WAITLISTED, %d distinct positions, %d wrong", apiSigned, apiWait, len(seen), mismatched),
		},
	}, nil
}

// reads has clients alternate openShifts and myShifts while a few others
// keep signing up at a moderate, paced rate.
func (b *bench) reads(ctx context.Context) (*scenarioReport, error) {
	b.api.warm(ctx, b.opts.Concurrency+b.opts.BgClients)
	openBody, myBody := body(openShiftsQ, nil), body(myShiftsQ, nil)
	var (
		bg     [][]*recorder
		bgTook time.Duration
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		interval := time.Duration(float64(b.opts.BgClients) / b.opts.BgRate * float64(time.Second))
		bg, bgTook = loop{workers: b.opts.BgClients, duration: b.opts.Duration, interval: interval}.run(ctx, b.randomSignUp)
	}()
	var empty atomic.Int64
	recs, took := loop{workers: b.opts.Concurrency, kinds: 2, duration: b.opts.Duration}.run(ctx,
		func(ctx context.Context, w, i int, rng *rand.Rand) (int, string) {
			m := b.data.Members[rng.IntN(len(b.data.Members))]
			if (w+i)%2 == 0 {
				var out struct {
					OpenShifts struct {
						Edges []json.RawMessage `json:"edges"`
					} `json:"openShifts"`
				}
				code := b.api.post(ctx, m.Token, openBody, &out)
				if code == "" && len(out.OpenShifts.Edges) == 0 {
					empty.Add(1)
				}
				return 0, code
			}
			var out struct {
				MyShifts struct {
					Edges []json.RawMessage `json:"edges"`
				} `json:"myShifts"`
			}
			return 1, b.api.post(ctx, m.Token, myBody, &out)
		})
	<-done
	open, mine := merge("reads/openShifts", recs[0], took), merge("reads/myShifts", recs[1], took)
	both := merge("reads/both", append(append([]*recorder{}, recs[0]...), recs[1]...), took)
	both.Notes = append(both.Notes, fmt.Sprintf("%d clients alternating the two queries", b.opts.Concurrency))
	if n := empty.Load(); n > 0 {
		open.Notes = append(open.Notes, fmt.Sprintf("%d answers had no shifts", n))
	}
	bgRes := merge("reads/bg-signups", bg[0], bgTook)
	bgRes.Notes = append(bgRes.Notes, fmt.Sprintf("%d clients paced to %.0f sign-ups/s in all", b.opts.BgClients, b.opts.BgRate))
	return &scenarioReport{Name: "reads", Results: []Result{both, open, mine, bgRes}}, nil
}
