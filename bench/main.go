// Command bench is Picketline's load tool. It finds or starts a PostgreSQL,
// creates a throwaway database on it, builds the server and runs it against
// that database, seeds members, a strike, picket lines and shifts, gets the
// members' sessions and tokens from the server binary's token command, and
// then measures four scenarios:
//
//	bare     the SQL of one sign-up on a raw pgx pool: the ceiling
//	signups  the same work through the GraphQL API
//	race     2,000 members signing up for one 50-spot shift at once
//	reads    openShifts and myShifts under a paced background of sign-ups
//
// It prints a line per scenario, then a summary with the targets, and
// removes everything it made. Run it from the module:
//
//	go run ./bench [-scenarios bare,signups,race,reads] [-duration 10s]
//	               [-concurrency 32] [-members 5000] [-lines 40] [-json FILE]
//
// Less common flags: -pool (the server's DATABASE_MAX_CONNS and the bare
// pool's size), -race-members, -race-capacity, -race-conns, -bg-clients and
// -bg-rate (the reads scenario's background sign-ups), -perf DIR (record
// each scenario with perf), -keep (keep the database for inspection).
// BENCHMARKS.md at the repository root has the figures of this machine.
//
// PostgreSQL is DATABASE_URL's server if set, else the one the libpq
// environment names (PGHOST, PGUSER, ...), else a private cluster started
// with db/embeddedpg in a temporary directory.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// allScenarios are the scenarios in the order they run: bare resets what
// it changes, and reads wants the sign-ups made before it.
var allScenarios = []string{"bare", "signups", "race", "reads"}

// options are the command-line settings.
type options struct {
	Scenarios    []string      `json:"scenarios"`
	Duration     time.Duration `json:"duration_ns"`
	Concurrency  int           `json:"concurrency"`
	Members      int           `json:"members"`
	Lines        int           `json:"lines"`
	Pool         int           `json:"pool"`
	RaceMembers  int           `json:"race_members"`
	RaceCapacity int           `json:"race_capacity"`
	RaceConns    int           `json:"race_conns"`
	BgClients    int           `json:"bg_clients"`
	BgRate       float64       `json:"bg_rate"`
	WS           wsOptions     `json:"ws"`
	JSONPath     string        `json:"-"`
	PerfDir      string        `json:"-"`
	Keep         bool          `json:"-"`
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	scenarios := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(append(allScenarios, wsScenarios...), ", "))
	o.WS.register(fs)
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long each timed scenario runs")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "concurrent workers (clients) per scenario")
	fs.IntVar(&o.Members, "members", 5000, "members to seed, each with a session and a token")
	fs.IntVar(&o.Lines, "lines", 40, fmt.Sprintf("picket lines to seed, each with %d×%d shifts", seedDays, shiftsPerDay))
	fs.IntVar(&o.Pool, "pool", 16, "PostgreSQL connections of the server (DATABASE_MAX_CONNS) and of the bare pool")
	fs.IntVar(&o.RaceMembers, "race-members", 2000, "members racing for one shift")
	fs.IntVar(&o.RaceCapacity, "race-capacity", 50, "capacity of the raced shift")
	fs.IntVar(&o.RaceConns, "race-conns", 0, "HTTP connections for the race (0: one per member)")
	fs.IntVar(&o.BgClients, "bg-clients", 4, "background sign-up clients during reads")
	fs.Float64Var(&o.BgRate, "bg-rate", 200, "background sign-ups per second in all during reads")
	fs.StringVar(&o.JSONPath, "json", "", "also write the results as JSON to this file (- for stdout, the summary then goes to stderr)")
	fs.StringVar(&o.PerfDir, "perf", "", "record each scenario with `perf record -a -g` into this directory (keeps the server binary there for symbols)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the bench database at the end (on an embedded cluster it goes with the cluster anyway)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) && !slices.Contains(wsScenarios, s) {
			return o, fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(append(allScenarios, wsScenarios...), ", "))
		}
		o.Scenarios = append(o.Scenarios, s)
	}
	switch {
	case len(o.Scenarios) == 0:
		return o, errors.New("no scenario to run")
	case o.Duration <= 0 || o.Concurrency < 1 || o.Members < 1 || o.Lines < 1 || o.Pool < 1:
		return o, errors.New("-duration, -concurrency, -members, -lines and -pool must be positive")
	case o.RaceCapacity < 1 || o.RaceMembers <= o.RaceCapacity:
		return o, errors.New("-race-members must exceed -race-capacity, which must be positive")
	case o.BgClients < 1 || o.BgRate <= 0:
		return o, errors.New("-bg-clients and -bg-rate must be positive")
	}
	return o, nil
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// logf reports progress on stderr, keeping stdout for the figures.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// warnIf reports a failed clean-up step without failing the run.
func warnIf(what string, err error) {
	if err != nil {
		logf("warning: %s: %v", what, err)
	}
}

// run sets everything up, runs the chosen scenarios and tears it all down.
func run(ctx context.Context, opts options) error {
	rep := &Report{Started: time.Now(), Command: commandLine(), Machine: thisMachine(), Options: opts}

	tmp, err := os.MkdirTemp("", "picketline-bench-")
	if err != nil {
		return err
	}
	defer func() { warnIf("remove "+tmp, os.RemoveAll(tmp)) }()

	binDir := tmp
	if opts.PerfDir != "" {
		if binDir, err = filepath.Abs(opts.PerfDir); err != nil {
			return err
		}
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			return err
		}
	}
	rep.Revision = revision(ctx)
	logf("building the server (%s)", rep.Revision)
	bin, err := buildServer(ctx, binDir)
	if err != nil {
		return err
	}

	pg, err := findPostgres(ctx, tmp)
	if err != nil {
		return err
	}
	defer func() { warnIf("stop the embedded cluster", pg.close()) }()
	rep.PostgresSource = pg.Source
	dbName := fmt.Sprintf("picketline_bench_%d", time.Now().Unix())
	logf("PostgreSQL: %s; creating database %s", pg.Source, dbName)
	if err := pg.createDatabase(ctx, dbName, &rep.Machine); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	defer func() {
		if opts.Keep && pg.cluster == nil {
			logf("kept database %s", dbName)
			return
		}
		warnIf("drop database "+dbName, pg.dropDatabase(dbName))
	}()

	secret := make([]byte, 24)
	rand.Read(secret)
	jwtSecret := hex.EncodeToString(secret) // 48 characters
	logf("starting the server")
	serverEnv := map[string]string{
		"DATABASE_URL":       pg.dsn(dbName),
		"APP_ENV":            "dev",
		"LOG_LEVEL":          "warn",
		"JWT_SECRET":         jwtSecret,
		"DATA_DIR":           filepath.Join(tmp, "data"),
		"DATABASE_MAX_CONNS": strconv.Itoa(opts.Pool),
		// Stop at once on SIGTERM; there is no load balancer to tell.
		"UNREADY_DELAY_SECONDS": "0",
		// The push scenarios set PUSH_RATE; push-floor sends as the
		// server does only if both run with the same concurrency.
		"PUSH_CONCURRENCY": strconv.Itoa(pushConcurrency),
		// The push scenario posts an urgent announcement per rate it
		// measures, all by one coordinator: more than the default six an
		// hour when several rates are asked for.
		"RATE_LIMIT_URGENT_PER_HOUR": "1000",
		// Every member mutates faster than a member would; a limit no
		// scenario reaches keeps the counting on, so its cost is in what
		// the bench measures.
		"RATE_LIMIT_MEMBER_PER_MINUTE": "1000000000",
		// Every websocket of the bench comes from this host's one address,
		// up to -ws-handshakes of them between dial and ack at once, and a
		// few more that the server has not yet seen close. Each subscriber
		// is a member of its own, so the default cap per member holds and
		// its count is measured.
		"WS_MAX_UNAUTHENTICATED_PER_ADDRESS": strconv.Itoa(2 * opts.WS.Handshakes),
	}
	srv, err := startServer(ctx, bin, maps.Clone(serverEnv))
	if err != nil {
		return err
	}
	defer func() { warnIf("stop the server", srv.Stop()) }()
	logf("server %s ready (pid %d)", srv.URL, srv.PID())

	mint := func(ctx context.Context, emails []string) ([]string, error) {
		return mintTokens(ctx, bin, serverEnv, emails)
	}
	ds, err := seed(ctx, pg.dsn(dbName), mint, opts.Members, opts.Lines)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	rep.Seed = fmt.Sprintf("%d members with sessions and tokens, 1 coordinator, 1 strike, %d lines × %d shifts (%d days × %d of %s, capacity %d) in %s",
		len(ds.Members), len(ds.LineIDs), seedDays*shiftsPerDay, seedDays, shiftsPerDay, shiftLength, shiftCapacity, ds.Took.Round(time.Millisecond))
	logf("seeded %s", rep.Seed)

	pool, err := benchPool(ctx, pg.dsn(dbName), opts.Pool)
	if err != nil {
		return err
	}
	defer pool.Close()

	b := &bench{opts: opts, data: ds, pool: pool, server: srv,
		api: newAPIClient(srv.URL, opts.Concurrency+opts.BgClients+16, false),
		bin: bin, env: serverEnv, mint: mint, pg: pgProcs{postmaster: pg.postmaster, db: dbName}}
	defer func() { b.api.close() }()
	// ws-restart and push replace the server: stop whichever runs last.
	defer func() { warnIf("stop the server", b.server.Stop()) }()
	scenarios := map[string]func(context.Context) (*scenarioReport, error){
		"bare": b.bare, "signups": b.signups, "race": b.race, "reads": b.reads,
		"ws-idle": b.wsIdle, "ws-fanout": b.wsFanout, "ws-events": b.wsEvents, "ws-restart": b.wsRestart, "push": b.push, "push-floor": b.pushFloor,
	}
	// The figures go to stdout, unless the JSON does.
	var out io.Writer = os.Stdout
	if opts.JSONPath == "-" {
		out = os.Stderr
	}
	printHeader(out)
	for _, name := range append(allScenarios, wsScenarios...) {
		if !slices.Contains(opts.Scenarios, name) {
			continue
		}
		logf("running %s", name)
		sr, err := measure(ctx, name, b.server.PID(), b.pg, opts.PerfDir, scenarios[name])
		if err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		printScenario(out, sr)
		rep.Scenarios = append(rep.Scenarios, sr)
	}
	rep.ServerPeakRSS = peakRSS(b.server.PID())
	rep.Finished = time.Now()
	rep.evaluate()
	rep.print(out)
	if opts.JSONPath != "" {
		if err := rep.writeJSON(opts.JSONPath); err != nil {
			return err
		}
	}
	return nil
}

// benchPool opens the bench's own pool, configured like the server's.
func benchPool(ctx context.Context, dsn string, size int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(size)
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "10s"
	cfg.ConnConfig.RuntimeParams["application_name"] = "picketline-bench"
	return pgxpool.NewWithConfig(ctx, cfg)
}

// measure runs one scenario and adds how the machine's CPU was spent and
// the server's peak RSS; with perfDir set, perf records the whole machine
// meanwhile.
func measure(ctx context.Context, name string, serverPID int, pg pgProcs, perfDir string, fn func(context.Context) (*scenarioReport, error)) (*scenarioReport, error) {
	var perf *exec.Cmd
	if perfDir != "" {
		out := filepath.Join(perfDir, name+".perf.data")
		perf = exec.Command("perf", "record", "-a", "-g", "-F", "499", "-o", out)
		if err := perf.Start(); err != nil {
			return nil, fmt.Errorf("perf record: %w", err)
		}
		time.Sleep(300 * time.Millisecond) // let perf attach before the load starts
		defer func() {
			perf.Process.Signal(os.Interrupt)
			// perf re-raises SIGINT once it has written its data.
			if err := perf.Wait(); err != nil && !interrupted(err) {
				logf("warning: perf record: %v", err)
			}
			logf("perf data in %s (perf report -i %s --sort comm,dso)", out, out)
		}()
	}
	before := sampleCPU(serverPID, pg)
	sr, err := fn(ctx)
	if err != nil {
		return nil, err
	}
	if sr.serverChanged {
		return sr, nil // another process: no split, and the peak RSS is the new one's
	}
	sr.CPU = split(before, sampleCPU(serverPID, pg))
	sr.ServerPeakRSS = peakRSS(serverPID)
	return sr, nil
}

// interrupted reports whether a child process ended on SIGINT.
func interrupted(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGINT
}

// commandLine is how the bench was invoked, with the PostgreSQL variables
// that chose the database.
func commandLine() string {
	var env []string
	for _, k := range []string{"DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"} {
		if v := os.Getenv(k); v != "" {
			if k == "DATABASE_URL" {
				v = "…"
			}
			env = append(env, k+"="+v)
		}
	}
	return strings.TrimSpace(strings.Join(env, " ") + " go run ./bench " + strings.Join(os.Args[1:], " "))
}
