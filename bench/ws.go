package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	fs.Func("push-rates", fmt.Sprintf("push: PUSH_RATE values to run, comma-separated (default %d)", defaultPushRate), func(s string) error {
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
	o.PushRates = []int{defaultPushRate}
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
	d := &wsData{}
	var members [][]any
	var emails []string
	for i := range n {
		id, email := newUUID(), fmt.Sprintf("wscoord%06d@bench.picketline.test", i)
		members = append(members, []any{id, fmt.Sprintf("WS Coordinator %d", i), email, "COORDINATOR"})
		emails = append(emails, email)
		d.subs = append(d.subs, member{ID: uuidString(id)})
	}
	if _, err := b.pool.CopyFrom(ctx, pgx.Identifier{"members"}, []string{"id", "name", "email", "role"}, pgx.CopyFromRows(members)); err != nil {
		return nil, fmt.Errorf("copy ws members: %w", err)
	}
	tokens, err := b.mint(ctx, emails)
	if err != nil {
		return nil, err
	}
	for i := range d.subs {
		d.subs[i].Token = tokens[i]
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

// startAnotherServer starts the server binary again on the same database with
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

// poolNotes turns a pool's counters into notes.
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
