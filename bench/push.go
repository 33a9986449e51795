package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The push worker's settings the bench runs every server with (as
// PUSH_CONCURRENCY, and PUSH_RATE in the push scenario), so that push-floor
// sends exactly as the server would. They are the server's defaults.
const (
	pushConcurrency = 32
	defaultPushRate = 6000
)

// fakeFCM is an FCM v1 send endpoint on 127.0.0.1 that answers every
// message 200 and records when it came.
type fakeFCM struct {
	srv   *http.Server
	URL   string
	mu    sync.Mutex
	at    []int64 // Unix nanoseconds of every message
	seen  map[string]int
	bad   atomic.Int64
	count atomic.Int64
}

func startFakeFCM() (*fakeFCM, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeFCM{URL: "http://" + ln.Addr().String(), seen: map[string]int{}}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 10 * time.Second}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *fakeFCM) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	raw, _ := io.ReadAll(r.Body)
	var m struct {
		Message struct {
			Token string            `json:"token"`
			Data  map[string]string `json:"data"`
		} `json:"message"`
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/messages:send") || json.Unmarshal(raw, &m) != nil || m.Message.Token == "" {
		f.bad.Add(1)
		http.Error(w, `{"error":{"code":400,"status":"INVALID_ARGUMENT"}}`, http.StatusBadRequest)
		return
	}
	n := f.count.Add(1)
	f.mu.Lock()
	f.at = append(f.at, now)
	f.seen[m.Message.Token]++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"name":"projects/bench/messages/%d"}`, n)
}

func (f *fakeFCM) reset() {
	f.mu.Lock()
	f.at, f.seen = nil, map[string]int{}
	f.mu.Unlock()
	f.count.Store(0)
	f.bad.Store(0)
}

// snapshot returns the sorted arrival times, distinct tokens and repeats.
func (f *fakeFCM) snapshot() (at []int64, distinct, repeats int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at = slices.Clone(f.at)
	slices.Sort(at)
	for _, n := range f.seen {
		distinct++
		repeats += n - 1
	}
	return at, distinct, repeats
}

// maxInWindow is the most arrivals in any window of length w.
func maxInWindow(at []int64, w time.Duration) int {
	best, i := 0, 0
	for j := range at {
		for at[j]-at[i] >= int64(w) {
			i++
		}
		best = max(best, j-i+1)
	}
	return best
}

// seedPush makes a line whose shifts hold devices members, each with one
// SIGNED_UP sign-up and one device, and returns the line.
func (b *bench) seedPush(ctx context.Context, devices int) (string, error) {
	start := time.Now()
	var line string
	if err := b.pool.QueryRow(ctx, `INSERT INTO picket_lines (job_action_id, name, address, latitude, longitude)
		VALUES ($1, 'Push Gate', '1 Push Street', 45.6, -73.6) RETURNING id::text`, b.data.JobActionID).Scan(&line); err != nil {
		return "", err
	}
	nShifts := (devices + 9999) / 10000
	first := b.data.Base.Add((seedDays + 3) * 24 * time.Hour)
	for s := range nShifts {
		st := first.Add(time.Duration(s) * shiftSpacing)
		if _, err := createShift(ctx, b.pool, line, st, 10000); err != nil {
			return "", err
		}
	}
	for _, q := range []string{
		`INSERT INTO members (name, email, role) SELECT 'Push Member ' || g, 'push' || g || '@bench.picketline.test', 'MEMBER' FROM generate_series(1, $2::int) g`,
		`INSERT INTO signups (shift_id, member_id, status, period)
		 SELECT s.id, m.id, 'SIGNED_UP', tstzrange(s.starts_at, s.ends_at)
		 FROM (SELECT id, row_number() OVER (ORDER BY email) - 1 AS rn FROM members WHERE email LIKE 'push%@bench.picketline.test') m
		 JOIN (SELECT id, starts_at, ends_at, row_number() OVER (ORDER BY starts_at) - 1 AS k FROM shifts WHERE picket_line_id = $1) s
		   ON s.k = m.rn / 10000 WHERE $2::int > 0`,
		`UPDATE shifts s SET signed_up_count = (SELECT count(*) FROM signups WHERE shift_id = s.id AND status = 'SIGNED_UP') WHERE picket_line_id = $1 AND $2::int > 0`,
		`INSERT INTO devices (token, member_id, platform, created_at, last_seen_at)
		 SELECT 'bench-push-' || id, id, 'ANDROID', now(), now() FROM members WHERE email LIKE 'push%@bench.picketline.test' AND $2::int > 0 AND $1::uuid IS NOT NULL`,
		`ANALYZE`,
	} {
		args := []any{line, devices}
		if strings.HasPrefix(q, "INSERT INTO members") {
			q = strings.Replace(q, "$2", "$1", 1)
			args = []any{devices}
		}
		if q == "ANALYZE" {
			args = nil
		}
		if _, err := b.pool.Exec(ctx, q, args...); err != nil {
			return "", fmt.Errorf("seed push: %w\n%s", err, q)
		}
	}
	logf("push: seeded %d members with a sign-up and a device on one line (%d shifts) in %s", devices, nShifts, time.Since(start).Round(time.Millisecond))
	return line, nil
}

// push sends one urgent announcement to PushDevices devices through a fake
// FCM, once per PUSH_RATE in PushRates, with paced sign-ups before and
// during each push.
func (b *bench) push(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	devices := b.opts.WS.PushDevices
	line, err := b.seedPush(ctx, devices)
	if err != nil {
		return nil, err
	}
	fcm, err := startFakeFCM()
	if err != nil {
		return nil, err
	}
	defer fcm.srv.Close()

	// The running server sends pushes to its log; it would take messages
	// from the outbox too, so it stops for the scenario.
	sr := &scenarioReport{Name: "push", serverChanged: true}
	if err := b.server.Stop(); err != nil {
		logf("push: stopping the server: %v", err)
	}
	defer func() {
		srv, err := b.startAnotherServer(context.Background(), nil)
		if err != nil {
			logf("push: could not start the server again: %v", err)
			return
		}
		b.swapServer(srv)
	}()

	coord := d.subs[0]
	const post = `mutation($l: ID!, $b: String!){ postAnnouncement(input:{picketLineId: $l, body: $b, urgent: true}){ id } }`
	for _, rate := range b.opts.WS.PushRates {
		srv, err := b.startAnotherServer(ctx, map[string]string{
			"FIREBASE_PROJECT_ID": "bench-push",
			"FCM_ENDPOINT":        fcm.URL,
			"PUSH_RATE":           strconv.Itoa(rate),
		})
		if err != nil {
			return nil, err
		}
		b.swapServer(srv)
		var (
			out struct {
				PostAnnouncement struct {
					ID string `json:"id"`
				} `json:"postAnnouncement"`
			}
			code     string
			answered time.Time
		)
		logf("push: PUSH_RATE=%d: %s of paced sign-ups before the push", rate, b.opts.Duration)
		w := b.aroundSignups(ctx, fcm.reset, func(sent time.Time) {
			code = b.api.post(ctx, coord.Token, body(post, map[string]any{"l": line, "b": "Urgent: everyone to the gate"}), &out)
			answered = time.Now()
			if code != "" {
				return
			}
			limit := time.Duration(float64(devices)/float64(rate)*1.3*float64(time.Second)) + 60*time.Second
			logf("push: PUSH_RATE=%d: announcement posted (answer in %s); waiting for %d messages (at most %s)", rate, answered.Sub(sent).Round(time.Millisecond), devices, limit.Round(time.Second))
			for time.Since(sent) < limit && fcm.count.Load() < int64(devices) && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
		})
		if code != "" {
			srv.Stop()
			return nil, fmt.Errorf("urgent postAnnouncement: %s", code)
		}
		sent := w.start
		at, distinct, repeats := fcm.snapshot()
		var statuses []string
		rows, err := b.pool.Query(ctx, `SELECT status, count(*) FROM push_outbox WHERE announcement_id = $1 GROUP BY status ORDER BY status`, out.PostAnnouncement.ID)
		if err == nil {
			for rows.Next() {
				var s string
				var n int
				rows.Scan(&s, &n)
				statuses = append(statuses, fmt.Sprintf("%s %d", s, n))
			}
			rows.Close()
		}
		if err := srv.Stop(); err != nil {
			logf("push: stop: %v", err)
		}

		name := fmt.Sprintf("push/rate-%d", rate)
		var first, last time.Duration
		if len(at) > 0 {
			first, last = time.Duration(at[0]-sent.UnixNano()), time.Duration(at[len(at)-1]-sent.UnixNano())
		}
		peak := maxInWindow(at, time.Second)
		// The server's limiter lets rate/20 go at once after a pause, and the
		// sends in flight when a window starts may arrive in it too.
		burst := max(1, rate/20) + pushConcurrency
		res := Result{Name: name, Ops: len(at), ElapsedS: last.Seconds()}
		if last > 0 {
			res.Rate = float64(len(at)) / last.Seconds()
		}
		res.P50, res.P99, res.Max = first, last, last
		res.P50ms, res.P99ms, res.MaxMs = ms(first), ms(last), ms(last)
		sBefore, sDuring, impact := b.signupImpact(name, w, last)
		res.Notes = append(res.Notes,
			fmt.Sprintf("%d of %d messages reached the fake FCM (%d distinct tokens, %d repeats, %d refused as malformed); first %s, last %s after sending the mutation (p50/p99/max columns: first, last, last); mutation answered in %s",
				len(at), devices, distinct, repeats, fcm.bad.Load(), fmtDur(first), fmtDur(last), fmtDur(answered.Sub(sent))),
			fmt.Sprintf("CPU from the post to the last message: %s", w.cpu),
			fmt.Sprintf("most messages in any 1 s window: %d (cap %d/s + burst and sends in flight %d); outbox rows: %s", peak, rate, burst, strings.Join(statuses, ", ")),
			impact.note)
		sr.Results = append(sr.Results, res, sBefore, sDuring)
		all := len(at) >= devices
		sr.Targets = append(sr.Targets,
			target{What: fmt.Sprintf("push PUSH_RATE=%d: %d devices handed to FCM", rate, devices), Want: "within " + targetPushAll.String(),
				Got: fmt.Sprintf("%d in %s", len(at), last.Round(time.Millisecond)), Pass: all && last <= targetPushAll},
			target{What: fmt.Sprintf("push PUSH_RATE=%d: rate cap", rate), Want: fmt.Sprintf("≤ %d in any 1 s", rate+burst),
				Got: strconv.Itoa(peak), Pass: peak <= rate+burst},
			impact.target(fmt.Sprintf("push PUSH_RATE=%d", rate)))
		logf("push: PUSH_RATE=%d: %d messages, last after %s, peak %d in 1 s", rate, len(at), last.Round(time.Millisecond), peak)
	}
	return sr, nil
}

// pacedSignups is the sign-up load measured before and during a push.
func (b *bench) pacedSignups() loop {
	interval := time.Duration(float64(b.opts.BgClients) / b.opts.BgRate * float64(time.Second))
	return loop{workers: b.opts.BgClients, duration: b.opts.Duration, interval: interval}
}

// impact compares sign-up p99 during a push with p99 before it.
type impact struct {
	before, during Result
	note           string
}

func (i impact) target(what string) target {
	return target{What: what + ": sign-up p99 during / before", Want: fmt.Sprintf("≤ %.0f%%", targetPushSignupP99*100),
		Got:  fmt.Sprintf("%.0f%% (%s / %s)", 100*float64(i.during.P99)/float64(max(i.before.P99, 1)), fmtDur(i.during.P99), fmtDur(i.before.P99)),
		Pass: i.before.Ops > 0 && float64(i.during.P99) <= targetPushSignupP99*float64(i.before.P99)}
}

// signupWindows are paced sign-ups measured before a push and while it
// ran, with the machine's CPU over the push.
type signupWindows struct {
	before, during         [][]*recorder
	beforeTook, duringTook time.Duration
	start                  time.Time
	cpu                    *CPUSplit
}

// aroundSignups measures paced sign-ups for the scenario's duration, calls
// reset, then runs push(start) with the second window of sign-ups starting
// at the same time, and waits for both.
func (b *bench) aroundSignups(ctx context.Context, reset func(), push func(start time.Time)) signupWindows {
	var w signupWindows
	signups := b.pacedSignups()
	b.api.warm(ctx, b.opts.BgClients)
	w.before, w.beforeTook = signups.run(ctx, b.randomSignUp)
	reset()
	done := make(chan struct{})
	cpuBefore := sampleCPU(b.server.PID(), b.pg)
	w.start = time.Now()
	go func() {
		defer close(done)
		w.during, w.duringTook = signups.run(ctx, b.randomSignUp)
	}()
	push(w.start)
	w.cpu = split(cpuBefore, sampleCPU(b.server.PID(), b.pg))
	<-done
	return w
}

// signupImpact sums up the sign-ups before and during a push that took
// pushTook.
func (b *bench) signupImpact(name string, w signupWindows, pushTook time.Duration) (Result, Result, impact) {
	i := impact{before: merge(name+"/signups-before", w.before[0], w.beforeTook), during: merge(name+"/signups-during", w.during[0], w.duringTook)}
	overlap := min(w.duringTook, pushTook)
	i.note = fmt.Sprintf("sign-ups paced to %.0f/s by %d clients: p99 %s before, %s during (the during window is the first %s after the push began, %s of it overlapping the push)",
		b.opts.BgRate, b.opts.BgClients, fmtDur(i.before.P99), fmtDur(i.during.P99), w.duringTook.Round(time.Millisecond), overlap.Round(time.Millisecond))
	return i.before, i.during, i
}
