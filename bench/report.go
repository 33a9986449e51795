package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets the figures are held to.
const (
	targetSignupRatio = 0.50 // API sign-ups/s over bare sign-ups/s
	targetSignupP99   = 25 * time.Millisecond
	targetRaceP99     = 250 * time.Millisecond
	targetReadsRate   = 4000.0 // openShifts + myShifts requests/s
	targetReadsP99    = 20 * time.Millisecond
	// noisyOther is how much CPU (in cores) other work may take before
	// the report warns that the machine was not quiet.
	noisyOther         = 0.25
	resultColumnsTitle = "scenario\tops\tops/s\tp50\tp99\tmax\tconflicts\terrors\t"
)

// Report is everything one run measured.
type Report struct {
	Command        string            `json:"command"`
	Revision       string            `json:"revision"`
	Started        time.Time         `json:"started"`
	Finished       time.Time         `json:"finished"`
	Machine        Machine           `json:"machine"`
	PostgresSource string            `json:"postgres_source"`
	Options        options           `json:"options"`
	Seed           string            `json:"seed"`
	Scenarios      []*scenarioReport `json:"scenarios"`
	ServerPeakRSS  string            `json:"server_peak_rss"`
	Targets        []target          `json:"targets"`
}

// target is one goal and whether the run met it.
type target struct {
	What string `json:"what"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// result finds a result by scenario and name.
func (r *Report) result(scenario, name string) *Result {
	for _, s := range r.Scenarios {
		if s.Name == scenario {
			return s.result(name)
		}
	}
	return nil
}

// evaluate compares the figures with the targets, for the scenarios that ran.
func (r *Report) evaluate() {
	add := func(what, want, got string, pass bool) {
		r.Targets = append(r.Targets, target{What: what, Want: want, Got: got, Pass: pass})
	}
	latency := func(what string, res *Result, limit time.Duration) {
		if res != nil {
			add(what, "< "+fmtDur(limit), fmtDur(res.P99), res.Ops > 0 && res.P99 < limit)
		}
	}
	bare, api := r.result("bare", "bare"), r.result("signups", "signups")
	if bare != nil && api != nil && bare.Rate > 0 {
		ratio := api.Rate / bare.Rate
		add("signups throughput / bare", fmt.Sprintf("≥ %.0f%%", targetSignupRatio*100),
			fmt.Sprintf("%.0f%% (%.0f / %.0f ops/s)", ratio*100, api.Rate, bare.Rate), ratio >= targetSignupRatio)
	}
	latency("signups p99", api, targetSignupP99)
	if race := r.result("race", "race"); race != nil {
		latency("race p99", race, targetRaceP99)
		for _, s := range r.Scenarios {
			for _, c := range s.Checks {
				add("race: "+c.What, "holds", c.Got, c.OK)
			}
		}
	}
	if both := r.result("reads", "reads/both"); both != nil {
		add("reads throughput (both queries)", fmt.Sprintf("≥ %.0f req/s", targetReadsRate),
			fmt.Sprintf("%.0f req/s", both.Rate), both.Rate >= targetReadsRate)
		latency("reads p99 openShifts", r.result("reads", "reads/openShifts"), targetReadsP99)
		latency("reads p99 myShifts", r.result("reads", "reads/myShifts"), targetReadsP99)
	}
	for _, s := range r.Scenarios {
		r.Targets = append(r.Targets, s.Targets...)
	}
	var errs []string
	for _, s := range r.Scenarios {
		for _, res := range s.Results {
			if res.Errors > 0 {
				errs = append(errs, res.Name+": "+errorSummary(res.ErrorsBy))
			}
		}
	}
	got := "none"
	if len(errs) > 0 {
		got = strings.Join(errs, "; ")
	}
	add("unexpected errors (CONFLICT excepted)", "none", got, len(errs) == 0)
}

// fmtDur prints a latency in milliseconds with sensible precision.
func fmtDur(d time.Duration) string {
	switch m := ms(d); {
	case m < 10:
		return fmt.Sprintf("%.2f ms", m)
	case m < 100:
		return fmt.Sprintf("%.1f ms", m)
	default:
		return fmt.Sprintf("%.0f ms", m)
	}
}

// resultRow is a result as a row of the results table.
func resultRow(res Result) string {
	return fmt.Sprintf("%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%d\t",
		res.Name, res.Ops, res.Rate, fmtDur(res.P50), fmtDur(res.P99), fmtDur(res.Max), res.Conflicts, res.Errors)
}

// liveRow is the fixed-width layout of the lines printed as scenarios end.
const liveRow = "%-18s %8v %8v %10v %10v %10v %9v %7v\n"

// printHeader starts the live per-scenario lines.
func printHeader(w io.Writer) {
	fmt.Fprintf(w, liveRow, "scenario", "ops", "ops/s", "p50", "p99", "max", "conflicts", "errors")
}

// printScenario prints a finished scenario's lines as soon as it is over.
func printScenario(w io.Writer, s *scenarioReport) {
	for _, res := range s.Results {
		fmt.Fprintf(w, liveRow, res.Name, res.Ops, fmt.Sprintf("%.0f", res.Rate), fmtDur(res.P50), fmtDur(res.P99), fmtDur(res.Max), res.Conflicts, res.Errors)
		if res.Errors > 0 {
			fmt.Fprintln(w, "    errors:", errorSummary(res.ErrorsBy))
		}
	}
}

// print writes the summary: setting, figures, CPU, targets.
func (r *Report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\n== Picketline bench, %s ==\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "command:    %s\n", r.Command)
	fmt.Fprintf(w, "code:       %s\n", r.Revision)
	fmt.Fprintf(w, "machine:    %s, %d CPUs, GOMAXPROCS %d, %s RAM, %s\n", m.CPUModel, m.NumCPU, m.GOMAXPROCS, m.MemTotal, m.OS)
	fmt.Fprintf(w, "go:         %s; load average at start %s\n", m.GoVersion, m.LoadAvg)
	fmt.Fprintf(w, "postgres:   %s\n            %s\n            via %s\n", m.Postgres, m.PostgresSettings, r.PostgresSource)
	fmt.Fprintf(w, "seed:       %s\n", r.Seed)
	o := r.Options
	fmt.Fprintf(w, "load:       %s per scenario, concurrency %d, pool %d (server and bare); load generator on the same machine\n\n",
		o.Duration, o.Concurrency, o.Pool)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, resultColumnsTitle)
	for _, s := range r.Scenarios {
		for _, res := range s.Results {
			fmt.Fprintln(tw, resultRow(res))
		}
	}
	tw.Flush()
	for _, s := range r.Scenarios {
		for _, res := range s.Results {
			for _, n := range res.Notes {
				fmt.Fprintf(w, "  %s: %s\n", res.Name, n)
			}
		}
	}

	fmt.Fprintf(w, "\nCPU in cores (CPU-seconds per second) while each scenario ran; server peak RSS (VmHWM) after it:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tbusy\tserver\tpostgres\tbench\tother\tserver peak RSS\t")
	for _, s := range r.Scenarios {
		if c := s.CPU; c != nil {
			fmt.Fprintf(tw, "%s\t%.2f/%d\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", s.Name, c.Busy, c.Cores, c.Server, c.Postgres, c.Bench, c.Other, s.ServerPeakRSS)
		} else {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%s\t\n", s.Name, s.ServerPeakRSS)
		}
	}
	tw.Flush()
	for _, s := range r.Scenarios {
		if s.CPU != nil && s.CPU.Other > noisyOther {
			fmt.Fprintf(w, "  warning: during %s, %.2f cores went to other work (other programs, other databases' backends): its figures are pessimistic\n", s.Name, s.CPU.Other)
		}
	}
	fmt.Fprintf(w, "server peak RSS over the run: %s\n", r.ServerPeakRSS)

	fmt.Fprintf(w, "\ntargets:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\twant\tmeasured\t")
	pass := 0
	for _, t := range r.Targets {
		verdict := "MISS"
		if t.Pass {
			verdict, pass = "PASS", pass+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.What, t.Want, t.Got, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d targets met\n", pass, len(r.Targets))
}

// writeJSON writes the report as JSON to path, or to stdout for "-".
func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
