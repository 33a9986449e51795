package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picketline/picketline/server/auth"
	"github.com/picketline/picketline/server/push"
)

// The websocket and push scenarios: opt-in, not in the default set, since
// they hold thousands of connections and restart the server.
var wsScenarios = []string{"ws-idle", "ws-fanout", "ws-events", "ws-restart", "push", "push-floor"}

// Targets of the websocket and push scenarios.
const (
	targetIdlePerConnKB = 20.0
	targetIdleCPU       = 0.10 // of one core
	targetFanoutP99     = 500 * time.Millisecond
	targetEventsP99     = 100 * time.Millisecond
	targetRestart       = 20 * time.Second
	targetPushAll       = 15 * time.Second
	targetPushSignupP99 = 1.25 // during / before
)

// wsOptions are the settings of the websocket and push scenarios.
type wsOptions struct {
	IdleConns     int           `json:"ws_idle_conns"`
	IdleWindow    time.Duration `json:"ws_idle_window_ns"`
	FanoutSubs    int           `json:"ws_fanout_subs"`
	FanoutRounds  int           `json:"ws_fanout_rounds"`
	EventsRate    float64       `json:"ws_events_rate"`
	EventsLines   int           `json:"ws_events_lines"`
	EventsSubs    int           `json:"ws_events_subs_per_line"`
	RestartConns  int           `json:"ws_restart_conns"`
	RestartEvents int           `json:"ws_restart_events_per_line"`
	Handshakes    int           `json:"ws_handshakes"`
	PushDevices   int           `json:"push_devices"`
	PushRates     []int         `json:"push_rates"`
}

func (o *wsOptions) register(fs *flag.FlagSet) {
	fs.IntVar(&o.IdleConns, "ws-idle-conns", 15000, "ws-idle: websocket subscribers to hold")
	fs.DurationVar(&o.IdleWindow, "ws-idle-window", 30*time.Second, "ws-idle: how long to measure the idle server's CPU (the server pings every 30 s)")
	fs.IntVar(&o.FanoutSubs, "ws-fanout-subs", 10000, "ws-fanout: subscribers of the one line")
	fs.IntVar(&o.FanoutRounds, "ws-fanout-rounds", 5, "ws-fanout: announcements measured (after one warm-up)")
	fs.Float64Var(&o.EventsRate, "ws-events-rate", 5000, "ws-events: line events per second in all")
	fs.IntVar(&o.EventsLines, "ws-events-lines", 100, "ws-events: lines the events are spread over")
	fs.IntVar(&o.EventsSubs, "ws-events-subs", 2, "ws-events: subscribers per line")
	fs.IntVar(&o.RestartConns, "ws-restart-conns", 15000, "ws-restart: subscribers through the restart")
	fs.IntVar(&o.RestartEvents, "ws-restart-events", 3, "ws-restart: events committed on every line while the server is down")
	fs.IntVar(&o.Handshakes, "ws-handshakes", 256, "websocket dials and inits the bench keeps in flight")
	fs.IntVar(&o.PushDevices, "push-devices", 50000, "push: devices of members signed up on the announced line")
	fs.Func("push-rates", "push: PUSH_RATE values to run, comma-separated (default: the server's default)", func(s string) error {
		o.PushRates = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("bad rate %q", f)
			}
			o.PushRates = append(o.PushRates, n)
		}
		return nil
	})
	o.PushRates = []int{int(push.DefaultConfig.Rate)}
}

// wsData is what the websocket scenarios seed on first use.
type wsData struct {
	subs        []member // coordinators: may follow any line, post announcements
	eventLines  []string // lines of ws-events, each with one shift
	eventShifts []string
	fanoutLine  string
}

// wsSeed seeds, once, enough coordinator subscribers for the largest
// websocket scenario chosen, the lines of ws-events and the fan-out line.
func (b *bench) wsSeed(ctx context.Context) (*wsData, error) {
	if b.ws != nil {
		return b.ws, nil
	}
	start := time.Now()
	o := b.opts.WS
	n := 1
	for _, s := range b.opts.Scenarios {
		switch s {
		case "ws-idle":
			n = max(n, o.IdleConns)
		case "ws-fanout":
			n = max(n, o.FanoutSubs)
		case "ws-events":
			n = max(n, o.EventsLines*o.EventsSubs)
		case "ws-restart":
			n = max(n, o.RestartConns)
		}
	}
	tokens, err := auth.NewTokens(b.secret, tokenTTL, nil)
	if err != nil {
		return nil, err
	}
	d := &wsData{}
	now := time.Now()
	var members, sessions [][]any
	for i := range n {
		id, sid := newUUID(), newUUID()
		members = append(members, []any{id, fmt.Sprintf("WS Coordinator %d", i), fmt.Sprintf("wscoord%06d@bench.picketline.test", i), "COORDINATOR"})
		sessions = append(sessions, []any{sid, id, now.Add(24 * time.Hour)})
		m := member{ID: uuidString(id)}
		if m.Token, _, err = tokens.Issue(m.ID, uuidString(sid)); err != nil {
			return nil, err
		}
		d.subs = append(d.subs, m)
	}
	if _, err := b.pool.CopyFrom(ctx, pgx.Identifier{"members"}, []string{"id", "name", "email", "role"}, pgx.CopyFromRows(members)); err != nil {
		return nil, fmt.Errorf("copy ws members: %w", err)
	}
	if _, err := b.pool.CopyFrom(ctx, pgx.Identifier{"sessions"}, []string{"id", "member_id", "expires_at"}, pgx.CopyFromRows(sessions)); err != nil {
		return nil, fmt.Errorf("copy ws sessions: %w", err)
	}
	shiftStart := b.data.Base.Add((seedDays + 2) * 24 * time.Hour)
	var lines, shifts [][]any
	for l := range o.EventsLines + 1 {
		lid, sid := newUUID(), newUUID()
		lines = append(lines, []any{lid, b.data.JobActionID, fmt.Sprintf("WS Gate %d", l), "1 Socket Street", 45.5, -73.5})
		shifts = append(shifts, []any{sid, lid, shiftStart, shiftStart.Add(shiftLength), 10})
		if l == o.EventsLines {
			d.fanoutLine = uuidString(lid)
		} else {
			d.eventLines = append(d.eventLines, uuidString(lid))
			d.eventShifts = append(d.eventShifts, uuidString(sid))
		}
	}
	if _, err := b.pool.CopyFrom(ctx, pgx.Identifier{"picket_lines"}, []string{"id", "job_action_id", "name", "address", "latitude", "longitude"}, pgx.CopyFromRows(lines)); err != nil {
		return nil, fmt.Errorf("copy ws lines: %w", err)
	}
	if _, err := b.pool.CopyFrom(ctx, pgx.Identifier{"shifts"}, []string{"id", "picket_line_id", "starts_at", "ends_at", "capacity"}, pgx.CopyFromRows(shifts)); err != nil {
		return nil, fmt.Errorf("copy ws shifts: %w", err)
	}
	logf("seeded %d coordinator subscribers and %d lines for the websocket scenarios in %s", n, len(lines), time.Since(start).Round(time.Millisecond))
	b.ws = d
	return d, nil
}

// lineSeqs reads the lines' event counters: a client subscribing after
// LineCursor(seq) gets every later event.
func (b *bench) lineSeqs(ctx context.Context, lines []string) ([]int64, error) {
	rows, err := b.pool.Query(ctx, `SELECT l.id::text, p.event_seq FROM unnest($1::uuid[]) AS l(id) JOIN picket_lines p ON p.id = l.id`, lines)
	if err != nil {
		return nil, err
	}
	bySeq := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, err
		}
		bySeq[id] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]int64, len(lines))
	for i, l := range lines {
		out[i] = bySeq[l]
	}
	return out, nil
}

// swapServer makes s the server every later scenario talks to.
func (b *bench) swapServer(s *serverProc) {
	b.server = s
	b.api = newAPIClient(s.URL, b.opts.Concurrency+b.opts.BgClients+16, false)
}

// restartServer starts the server binary again on the same database with
// the bench's environment plus extra.
func (b *bench) startAnotherServer(ctx context.Context, extra map[string]string) (*serverProc, error) {
	env := maps.Clone(b.env)
	maps.Copy(env, extra)
	return startServer(ctx, b.bin, env)
}

// rssKB returns a process's resident set size in kB.
func rssKB(pid int) float64 {
	v := procField("/proc/"+strconv.Itoa(pid)+"/status", "VmRSS")
	f, _ := strconv.ParseFloat(strings.Fields(v + " 0")[0], 64)
	return f
}

// cpuOf returns a process's CPU seconds so far ("self" for the bench).
func cpuOf(pid string) float64 {
	_, c, _ := procStat(pid)
	return c
}

// poolResult turns a pool's counters into notes.
func poolNotes(p *wsPool) []string {
	return []string{fmt.Sprintf("subscribes %d, connections lost %d, failed dials %d, sequence gaps %d, repeats %d; errors: %s",
		p.subscribed.Load(), p.drops.Load(), p.dialErrs.Load(), p.gaps.Load(), p.dups.Load(), p.errSummary())}
}

// connectAll starts n clients, spread round-robin over lines from their
// current counters, and waits until all are subscribed.
func (b *bench) connectAll(ctx context.Context, p *wsPool, subs []member, n int, lines []string) (time.Duration, error) {
	seqs, err := b.lineSeqs(ctx, lines)
	if err != nil {
		return 0, err
	}
	if n > len(subs) {
		return 0, fmt.Errorf("need %d subscribers, %d seeded", n, len(subs))
	}
	start := time.Now()
	for i := range n {
		p.add(ctx, subs[i].Token, i%len(lines), seqs[i%len(lines)])
	}
	err = p.waitLive(ctx, n, 3*time.Minute)
	return time.Since(start), err
}

// wsIdle holds IdleConns subscribers spread over the seeded lines and
// measures the server's memory per connection and its idle CPU.
func (b *bench) wsIdle(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	n := b.opts.WS.IdleConns
	pid := b.server.PID()
	time.Sleep(2 * time.Second)
	rssBefore := rssKB(pid)
	benchBefore := rssKB(os.Getpid())
	p := newWSPool(b.server.URL, b.data.LineIDs, b.opts.WS.Handshakes)
	defer p.close()
	took, err := b.connectAll(ctx, p, d.subs, n, b.data.LineIDs)
	if err != nil {
		logf("ws-idle: %v", err)
	}
	held := p.live.Load()
	logf("ws-idle: %d subscribed in %s; settling 5 s", held, took.Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	rssAfter := rssKB(pid)
	perConn := (rssAfter - rssBefore) / float64(max(held, 1))
	logf("ws-idle: server RSS %.0f → %.0f kB (%.1f kB per connection); measuring idle CPU for %s", rssBefore, rssAfter, perConn, b.opts.WS.IdleWindow)
	c0, s0, t0 := cpuOf(strconv.Itoa(pid)), cpuOf("self"), time.Now()
	time.Sleep(b.opts.WS.IdleWindow)
	wall := time.Since(t0).Seconds()
	idleCPU := (cpuOf(strconv.Itoa(pid)) - c0) / wall
	benchCPU := (cpuOf("self") - s0) / wall
	stillLive := p.live.Load()
	rssEnd := rssKB(pid)

	res := Result{Name: "ws-idle", Ops: int(held), ElapsedS: took.Seconds(), Rate: float64(held) / took.Seconds()}
	res.Notes = append(res.Notes,
		fmt.Sprintf("%d of %d subscribers held (%d still live after the idle window), connected in %s (ops/s = connections per second)", held, n, stillLive, took.Round(time.Millisecond)),
		fmt.Sprintf("server VmRSS %.0f MB before, %.0f MB 5 s after the last subscribe, %.0f MB after the idle window: %.1f kB per connection", rssBefore/1024, rssAfter/1024, rssEnd/1024, perConn),
		fmt.Sprintf("idle over %s: server %.1f%% of one core, bench %.1f%%; bench VmRSS %.0f → %.0f MB", b.opts.WS.IdleWindow, idleCPU*100, benchCPU*100, benchBefore/1024, rssKB(os.Getpid())/1024))
	res.Notes = append(res.Notes, poolNotes(p)...)
	sr := &scenarioReport{Name: "ws-idle", Results: []Result{res}}
	sr.Targets = append(sr.Targets,
		target{What: "ws-idle subscribers held", Want: fmt.Sprintf("%d", n), Got: fmt.Sprintf("%d", held), Pass: held >= int64(n) && stillLive >= int64(n)},
		target{What: "ws-idle server memory per connection", Want: fmt.Sprintf("≤ %.0f KB", targetIdlePerConnKB), Got: fmt.Sprintf("%.1f KB", perConn), Pass: held > 0 && perConn <= targetIdlePerConnKB},
		target{What: "ws-idle server CPU when idle", Want: fmt.Sprintf("< %.0f%% of a core", targetIdleCPU*100), Got: fmt.Sprintf("%.1f%%", idleCPU*100), Pass: idleCPU < targetIdleCPU})
	return sr, nil
}

// wsFanout subscribes FanoutSubs clients to one line and posts
// announcements on it, one at a time, measuring when each client gets it.
func (b *bench) wsFanout(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	n, rounds := b.opts.WS.FanoutSubs, b.opts.WS.FanoutRounds
	lines := []string{d.fanoutLine}
	seqs, err := b.lineSeqs(ctx, lines)
	if err != nil {
		return nil, err
	}
	base := seqs[0]
	// The bench is the line's only writer: announcement k gets base+k.
	sentAt := make([]atomic.Int64, rounds+2)
	answeredAt := make([]atomic.Int64, rounds+2)
	fromSend, fromAnswer := make([]*recorder, n), make([]*recorder, n)
	for i := range n {
		fromSend[i], fromAnswer[i] = newRecorder(), newRecorder()
	}
	p := newWSPool(b.server.URL, lines, b.opts.WS.Handshakes)
	defer p.close()
	p.onEvent = func(c *wsClient, ev wsEvent, at time.Time) {
		k := ev.Seq - base
		if ev.Kind != "ANNOUNCEMENT" || k < 2 || k >= int64(len(sentAt)) {
			return // k = 1 is the warm-up
		}
		fromSend[c.idx].ok(at.Sub(time.Unix(0, sentAt[k].Load())))
		fromAnswer[c.idx].ok(at.Sub(time.Unix(0, answeredAt[k].Load())))
	}
	took, err := b.connectAll(ctx, p, d.subs, n, lines)
	if err != nil {
		return nil, err
	}
	logf("ws-fanout: %d subscribed in %s", n, took.Round(time.Millisecond))
	coord := d.subs[0]
	const post = `mutation($l: ID!, $b: String!){ postAnnouncement(input:{picketLineId: $l, body: $b}){ id } }`
	waitAll := func(seq int64) (time.Duration, int) {
		start := time.Now()
		for time.Since(start) < 30*time.Second {
			got := 0
			for _, c := range p.clients {
				if c.lastSeq.Load() >= seq {
					got++
				}
			}
			if got == n {
				return time.Since(start), got
			}
			time.Sleep(5 * time.Millisecond)
		}
		got := 0
		for _, c := range p.clients {
			if c.lastSeq.Load() >= seq {
				got++
			}
		}
		return time.Since(start), got
	}
	var failures []string
	var makespans []string
	for k := 1; k <= rounds+1; k++ {
		sentAt[k].Store(time.Now().UnixNano())
		var out struct {
			PostAnnouncement struct{ ID string } `json:"postAnnouncement"`
		}
		code := b.api.post(ctx, coord.Token, body(post, map[string]any{"l": d.fanoutLine, "b": fmt.Sprintf("Fan-out %d", k)}), &out)
		answeredAt[k].Store(time.Now().UnixNano())
		if code != "" {
			return nil, fmt.Errorf("postAnnouncement: %s", code)
		}
		wait, got := waitAll(base + int64(k))
		if got < n {
			failures = append(failures, fmt.Sprintf("announcement %d reached %d of %d within 30 s", k, got, n))
		}
		if k > 1 {
			makespans = append(makespans, fmtDur(wait+time.Duration(answeredAt[k].Load()-sentAt[k].Load())))
		}
		time.Sleep(time.Second)
	}
	rs := merge("ws-fanout", fromSend, 0)
	ra := merge("ws-fanout/from-answer", fromAnswer, 0)
	rs.Notes = append(rs.Notes,
		fmt.Sprintf("%d subscribers of one line, %d announcements one at a time (after a warm-up); latency from just before sending postAnnouncement to the client reading the event", n, rounds),
		"last subscriber reached (from send) per announcement: "+strings.Join(makespans, ", "))
	ra.Notes = append(ra.Notes, "the same deliveries timed from the mutation's HTTP answer (commit precedes it)")
	rs.Notes = append(rs.Notes, poolNotes(p)...)
	rs.Notes = append(rs.Notes, failures...)
	sr := &scenarioReport{Name: "ws-fanout", Results: []Result{rs, ra}}
	sr.Targets = append(sr.Targets, target{What: "ws-fanout p99 from commit (from send)", Want: "< " + fmtDur(targetFanoutP99),
		Got: fmt.Sprintf("%s (%d deliveries of %d)", fmtDur(rs.P99), rs.Ops, n*rounds), Pass: rs.Ops == n*rounds && rs.P99 < targetFanoutP99})
	return sr, nil
}

// eventWriter commits line events straight in SQL, batched, with the
// wake-up the server's own use-cases would send (pg_notify in the same
// transaction, delivered at commit). The bench must be the lines' only
// writer: it predicts each event's sequence number.
type eventWriter struct {
	b      *bench
	lines  []string
	shifts []string
	base   []int64
	// next[l] is how many events line l has had from the writer.
	next []int64
	// sentAt[l][k] and doneAt[l][k] are when the statement making event
	// base+k of line l was sent and answered, in Unix nanoseconds.
	sentAt, doneAt [][]atomic.Int64
}

const eventBatchSQL = `
WITH c AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS c(line, shift) ORDER BY line),
upd AS (UPDATE picket_lines p SET event_seq = p.event_seq + 1 FROM c WHERE p.id = c.line RETURNING p.id, p.event_seq, c.shift),
ins AS (INSERT INTO line_events (picket_line_id, seq, kind, shift_id, occurred_at)
        SELECT id, event_seq, 'SHIFT_CHANGED', shift, now() FROM upd RETURNING picket_line_id)
SELECT count(pg_notify('picketline_events', 'bench|l:' || picket_line_id::text)) FROM ins`

func newEventWriter(b *bench, ctx context.Context, lines, shifts []string, perLine int) (*eventWriter, error) {
	base, err := b.lineSeqs(ctx, lines)
	if err != nil {
		return nil, err
	}
	w := &eventWriter{b: b, lines: lines, shifts: shifts, base: base, next: make([]int64, len(lines)),
		sentAt: make([][]atomic.Int64, len(lines)), doneAt: make([][]atomic.Int64, len(lines))}
	for l := range lines {
		w.sentAt[l] = make([]atomic.Int64, perLine+2)
		w.doneAt[l] = make([]atomic.Int64, perLine+2)
	}
	return w, nil
}

// write makes one event on each of the lines idx in one statement.
func (w *eventWriter) write(ctx context.Context, idx []int) error {
	ls, ss := make([]string, len(idx)), make([]string, len(idx))
	now := time.Now().UnixNano()
	for i, l := range idx {
		ls[i], ss[i] = w.lines[l], w.shifts[l]
		w.next[l]++
		if k := w.next[l]; k < int64(len(w.sentAt[l])) {
			w.sentAt[l][k].Store(now)
		}
	}
	var n int64
	if err := w.b.pool.QueryRow(ctx, eventBatchSQL, ls, ss).Scan(&n); err != nil {
		return err
	}
	done := time.Now().UnixNano()
	for _, l := range idx {
		if k := w.next[l]; k < int64(len(w.doneAt[l])) {
			w.doneAt[l][k].Store(done)
		}
	}
	return nil
}

// wsEvents spreads EventsRate events/s over EventsLines lines with
// EventsSubs subscribers each, for -duration.
func (b *bench) wsEvents(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	o := b.opts.WS
	nl := len(d.eventLines)
	n := nl * o.EventsSubs
	perLine := int(o.EventsRate*b.opts.Duration.Seconds()/float64(nl)) + 10
	// Writers own disjoint lines; each sends one statement per tick with
	// one event on each of its lines.
	const writers = 2
	w, err := newEventWriter(b, ctx, d.eventLines, d.eventShifts, perLine)
	if err != nil {
		return nil, err
	}
	fromSend, fromDone := make([]*recorder, n), make([]*recorder, n)
	for i := range n {
		fromSend[i], fromDone[i] = newRecorder(), newRecorder()
	}
	p := newWSPool(b.server.URL, d.eventLines, o.Handshakes)
	defer p.close()
	p.onEvent = func(c *wsClient, ev wsEvent, at time.Time) {
		k := ev.Seq - w.base[c.line]
		if k < 1 || k >= int64(len(w.sentAt[c.line])) {
			return
		}
		fromSend[c.idx].ok(at.Sub(time.Unix(0, w.sentAt[c.line][k].Load())))
		if dn := w.doneAt[c.line][k].Load(); dn != 0 {
			fromDone[c.idx].ok(at.Sub(time.Unix(0, dn)))
		} else {
			fromDone[c.idx].ok(0) // delivered before the bench read the answer
		}
	}
	// connectAll spreads client i over line i % nl from the same counters.
	seqs := w.base
	start := time.Now()
	for i := range n {
		p.add(ctx, d.subs[i].Token, i%nl, seqs[i%nl])
	}
	if err := p.waitLive(ctx, n, 2*time.Minute); err != nil {
		return nil, err
	}
	logf("ws-events: %d subscribed in %s; writing %.0f events/s over %d lines for %s", n, time.Since(start).Round(time.Millisecond), o.EventsRate, nl, b.opts.Duration)
	time.Sleep(time.Second)

	var wg sync.WaitGroup
	var written atomic.Int64
	var writeErrs atomic.Int64
	var lateTicks atomic.Int64
	t0 := time.Now()
	deadline := t0.Add(b.opts.Duration)
	for g := range writers {
		var mine []int
		for l := g; l < nl; l += writers {
			mine = append(mine, l)
		}
		interval := time.Duration(float64(len(mine)) / (o.EventsRate / writers) * float64(time.Second))
		wg.Go(func() {
			next := t0.Add(time.Duration(g) * interval / writers)
			for ctx.Err() == nil {
				if wait := time.Until(next); wait > 0 {
					time.Sleep(wait)
				} else if wait < -interval {
					lateTicks.Add(1)
				}
				if !time.Now().Before(deadline) {
					return
				}
				next = next.Add(interval)
				if err := w.write(ctx, mine); err != nil {
					writeErrs.Add(1)
					logf("ws-events: write: %v", err)
					continue
				}
				written.Add(int64(len(mine)))
			}
		})
	}
	wg.Wait()
	wrote := time.Since(t0)
	// Wait for the deliveries to finish.
	finals := make([]int64, nl)
	for l := range nl {
		finals[l] = w.base[l] + w.next[l]
	}
	waitStart := time.Now()
	missing := 0
	for time.Since(waitStart) < 30*time.Second {
		missing = 0
		for _, c := range p.clients {
			if c.lastSeq.Load() < finals[c.line] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rate := float64(written.Load()) / wrote.Seconds()
	rs := merge("ws-events", fromSend, wrote)
	rd := merge("ws-events/from-commit", fromDone, wrote)
	rs.Notes = append(rs.Notes,
		fmt.Sprintf("%d events committed in %s (%.0f events/s of %.0f asked; %d statements behind schedule, %d failed) over %d lines, %d subscribers per line: %d deliveries expected",
			written.Load(), wrote.Round(time.Millisecond), rate, o.EventsRate, lateTicks.Load(), writeErrs.Load(), nl, o.EventsSubs, written.Load()*int64(o.EventsSubs)),
		"events written by SQL (one statement per tick per writer: lock the lines' counters, insert the events, pg_notify, autocommit) by 2 writers; latency from just before sending that statement to the client reading the event; ops/s = deliveries/s",
		fmt.Sprintf("%d subscribers still short of the last event 30 s after the writing stopped", missing))
	rd.Notes = append(rd.Notes, "the same deliveries timed from the statement's answer (commit precedes it)")
	rs.Notes = append(rs.Notes, poolNotes(p)...)
	sr := &scenarioReport{Name: "ws-events", Results: []Result{rs, rd}}
	sr.Targets = append(sr.Targets,
		target{What: "ws-events rate written", Want: fmt.Sprintf("%.0f events/s", o.EventsRate), Got: fmt.Sprintf("%.0f events/s", rate), Pass: rate >= 0.95*o.EventsRate},
		target{What: "ws-events p99 from commit (from send)", Want: "< " + fmtDur(targetEventsP99),
			Got: fmt.Sprintf("%s (%d of %d deliveries)", fmtDur(rs.P99), rs.Ops, written.Load()*int64(o.EventsSubs)), Pass: missing == 0 && rs.P99 < targetEventsP99})
	return sr, nil
}

// wsRestart holds RestartConns subscribers, stops the server with SIGTERM,
// commits events on every line while it is down, starts it again on the
// same database and measures until every client is back and caught up.
func (b *bench) wsRestart(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	n := b.opts.WS.RestartConns
	lines := b.data.LineIDs
	p := newWSPool(b.server.URL, lines, b.opts.WS.Handshakes)
	defer p.close()
	took, err := b.connectAll(ctx, p, d.subs, n, lines)
	if err != nil {
		return nil, err
	}
	logf("ws-restart: %d subscribed in %s; stopping the server", n, took.Round(time.Millisecond))
	time.Sleep(2 * time.Second)

	t0 := time.Now()
	if err := b.server.Stop(); err != nil {
		logf("ws-restart: server stop: %v", err)
	}
	stopTook := time.Since(t0)
	// Events while the server is down: several per line, no server to
	// tell, so the clients must get them by resuming after their cursor.
	shifts := make([]string, len(lines))
	rows, err := b.pool.Query(ctx, `SELECT DISTINCT ON (picket_line_id) picket_line_id::text, id::text FROM shifts WHERE picket_line_id = ANY($1::uuid[]) ORDER BY picket_line_id, starts_at`, lines)
	if err != nil {
		return nil, err
	}
	byLine := map[string]string{}
	for rows.Next() {
		var l, s string
		if err := rows.Scan(&l, &s); err != nil {
			return nil, err
		}
		byLine[l] = s
	}
	rows.Close()
	all := make([]int, len(lines))
	for i, l := range lines {
		shifts[i], all[i] = byLine[l], i
	}
	w, err := newEventWriter(b, ctx, lines, shifts, b.opts.WS.RestartEvents)
	if err != nil {
		return nil, err
	}
	for range b.opts.WS.RestartEvents {
		if err := w.write(ctx, all); err != nil {
			return nil, err
		}
	}
	targets, err := b.lineSeqs(ctx, lines)
	if err != nil {
		return nil, err
	}
	downEvents := b.opts.WS.RestartEvents * len(lines)
	logf("ws-restart: server stopped in %s, %d events committed while down; starting it again", stopTook.Round(time.Millisecond), downEvents)

	tStart := time.Now()
	srv, err := b.startAnotherServer(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	tReady := time.Now()
	b.swapServer(srv)
	p.setURL(srv.URL)
	var backAt, caughtAt time.Time
	caught := 0
	for time.Since(tStart) < 90*time.Second && ctx.Err() == nil {
		caught = 0
		for _, c := range p.clients {
			if c.lastSeq.Load() >= targets[c.line] {
				caught++
			}
		}
		now := time.Now()
		if backAt.IsZero() && p.live.Load() >= int64(n) {
			backAt = now
		}
		if caught == n && caughtAt.IsZero() {
			caughtAt = now
		}
		if !backAt.IsZero() && !caughtAt.IsZero() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	since := func(t, from time.Time) string {
		if t.IsZero() {
			return "not within 90 s"
		}
		return t.Sub(from).Round(time.Millisecond).String()
	}
	end := caughtAt
	if backAt.After(end) {
		end = backAt
	}
	total := time.Duration(0)
	if !caughtAt.IsZero() && !backAt.IsZero() {
		total = end.Sub(tStart)
	}
	res := Result{Name: "ws-restart", Ops: caught, ElapsedS: total.Seconds()}
	if total > 0 {
		res.Rate = float64(n) / total.Seconds()
	}
	res.P50, res.P99, res.Max = total, total, total
	res.P50ms, res.P99ms, res.MaxMs = ms(total), ms(total), ms(total)
	res.Notes = append(res.Notes,
		fmt.Sprintf("%d subscribers over %d lines; SIGTERM to exit %s; %d events committed while down", n, len(lines), stopTook.Round(time.Millisecond), downEvents),
		fmt.Sprintf("new server ready %s after its start; all %d back (subscribed) %s and all caught up %s after the start (%s and %s after ready); p50/p99/max columns = start → all back and caught up",
			tReady.Sub(tStart).Round(time.Millisecond), n, since(backAt, tStart), since(caughtAt, tStart), since(backAt, tReady), since(caughtAt, tReady)),
		fmt.Sprintf("%d of %d caught up at the end; the new server listens on a new port and clients redial it once it is ready (their backoff: jittered, 100 ms doubling to 1 s)", caught, n))
	res.Notes = append(res.Notes, poolNotes(p)...)
	sr := &scenarioReport{Name: "ws-restart", Results: []Result{res}, serverChanged: true}
	sr.Targets = append(sr.Targets, target{What: "ws-restart: all back and caught up after start", Want: "< " + targetRestart.String(),
		Got: fmt.Sprintf("%s (%d of %d)", since(end, tStart), caught, n), Pass: total > 0 && total < targetRestart && p.gaps.Load() == 0})
	return sr, nil
}
