package main

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"
)

// recorder collects what one worker saw. Each worker owns its recorder, so
// recording takes no lock; recorders are merged once the run is over.
type recorder struct {
	// lat holds the duration of every completed operation, conflicts
	// included.
	lat []time.Duration
	// conflicts counts operations that completed with an expected CONFLICT
	// (a member already holding an overlapping shift).
	conflicts int
	// errs counts failed operations by error code; their durations are not
	// in lat.
	errs map[string]int
}

func newRecorder() *recorder {
	return &recorder{lat: make([]time.Duration, 0, 4096), errs: map[string]int{}}
}

// ok records a completed operation.
func (r *recorder) ok(d time.Duration) { r.lat = append(r.lat, d) }

// conflict records an operation that completed with an expected conflict.
func (r *recorder) conflict(d time.Duration) {
	r.lat = append(r.lat, d)
	r.conflicts++
}

// fail records a failed operation under its error code.
func (r *recorder) fail(code string) { r.errs[code]++ }

// Result is what one scenario (or one part of it) measured.
type Result struct {
	Name string `json:"name"`
	// Ops counts completed operations, conflicts included.
	Ops       int            `json:"ops"`
	Conflicts int            `json:"conflicts"`
	Errors    int            `json:"errors"`
	ErrorsBy  map[string]int `json:"errors_by_code,omitempty"`
	ElapsedS  float64        `json:"elapsed_s"`
	Rate      float64        `json:"ops_per_s"`
	P50       time.Duration  `json:"-"`
	P99       time.Duration  `json:"-"`
	Max       time.Duration  `json:"-"`
	P50ms     float64        `json:"p50_ms"`
	P99ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
	// Notes are scenario-specific facts worth a line in the report.
	Notes []string `json:"notes,omitempty"`
	// CPU is how the machine's CPU time was spent during the run, when
	// /proc could tell.
	CPU *CPUSplit `json:"cpu,omitempty"`
}

// merge combines the recorders of one run that took elapsed.
func merge(name string, recs []*recorder, elapsed time.Duration) Result {
	res := Result{Name: name, ErrorsBy: map[string]int{}, ElapsedS: elapsed.Seconds()}
	var all []time.Duration
	for _, r := range recs {
		all = append(all, r.lat...)
		res.Conflicts += r.conflicts
		for code, n := range r.errs {
			res.ErrorsBy[code] += n
			res.Errors += n
		}
	}
	slices.Sort(all)
	res.Ops = len(all)
	if elapsed > 0 {
		res.Rate = float64(res.Ops) / elapsed.Seconds()
	}
	res.P50, res.P99 = percentile(all, 0.50), percentile(all, 0.99)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	res.P50ms, res.P99ms, res.MaxMs = ms(res.P50), ms(res.P99), ms(res.Max)
	return res
}

// percentile returns the nearest-rank p-quantile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// errorSummary lists error counts by code, most frequent first, as
// "CODE×n, CODE×n".
func errorSummary(by map[string]int) string {
	codes := slices.Collect(maps.Keys(by))
	sort.Slice(codes, func(i, j int) bool {
		if by[codes[i]] != by[codes[j]] {
			return by[codes[i]] > by[codes[j]]
		}
		return codes[i] < codes[j]
	})
	s := ""
	for i, c := range codes {
		if i > 0 {
			s += ", "
		}
		s += c + "×" + strconv.Itoa(by[c])
	}
	return s
}
