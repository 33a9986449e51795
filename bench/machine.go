package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPUModel   string `json:"cpu_model"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	MemTotal   string `json:"mem_total"`
	// LoadAvg is /proc/loadavg when the bench started: a busy machine
	// makes for pessimistic figures.
	LoadAvg  string `json:"load_avg"`
	Postgres string `json:"postgres"`
	// PostgresSettings are the server settings that weigh on commit latency.
	PostgresSettings string `json:"postgres_settings"`
}

// thisMachine describes the machine; the PostgreSQL fields are filled in
// once connected.
func thisMachine() Machine {
	m := Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		CPUModel:   "unknown",
		MemTotal:   "unknown",
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += " (kernel " + strings.TrimSpace(string(b)) + ")"
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		m.LoadAvg = strings.Join(f[:min(3, len(f))], " ")
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPUModel = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		m.MemTotal = v
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// userHZ is the unit of the tick counts in /proc/stat and /proc/<pid>/stat;
// it is 100 on every mainstream Linux build.
const userHZ = 100

// CPUSplit says where the machine's CPU went during a run, in cores (CPU
// seconds per wall-clock second): 2.0 on a 2-core machine is all of it.
type CPUSplit struct {
	Cores    int     `json:"cores"`
	Busy     float64 `json:"busy"`
	Server   float64 `json:"server"`
	Postgres float64 `json:"postgres"`
	Bench    float64 `json:"bench"`
	// Other is busy time of everything else: the kernel's interrupt work
	// not charged to a process, other programs on the machine (including
	// other databases' backends on the same PostgreSQL), and bench
	// backends that exited during the run. Postgres is 0 when PostgreSQL
	// runs on another machine.
	Other float64 `json:"other"`
}

func (c *CPUSplit) String() string {
	if c == nil {
		return "n/a"
	}
	return fmt.Sprintf("busy %.2f of %d cores: server %.2f, postgres %.2f, bench %.2f, other %.2f",
		c.Busy, c.Cores, c.Server, c.Postgres, c.Bench, c.Other)
}

// cpuSample is a reading of the CPU counters; two readings give a CPUSplit.
type cpuSample struct {
	at          time.Time
	ok          bool
	busyTicks   float64
	server      float64
	bench       float64
	postgresCPU map[int]float64
}

// pgProcs names the PostgreSQL processes whose CPU counts as the bench's:
// the children of postmaster (0 when it is not on this machine) other than
// client backends of databases other than db.
type pgProcs struct {
	postmaster int
	db         string
}

// sampleCPU reads the machine's, the server's, this process's and the bench
// PostgreSQL's CPU time. On systems without /proc it returns a sample that
// split ignores.
func sampleCPU(serverPID int, pg pgProcs) cpuSample {
	s := cpuSample{at: time.Now(), postgresCPU: map[int]float64{}}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	// user nice system idle iowait irq softirq steal: busy is all but idle
	// and iowait.
	for i := 1; i <= 8; i++ {
		v, _ := strconv.ParseFloat(f[i], 64)
		if i != 4 && i != 5 {
			s.busyTicks += v
		}
	}
	_, s.server, _ = procStat(strconv.Itoa(serverPID))
	_, s.bench, _ = procStat("self")
	if pg.postmaster != 0 {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			pid, _ := strconv.Atoi(filepath.Base(d))
			ppid, cpu, err := procStat(strconv.Itoa(pid))
			if err != nil || (pid != pg.postmaster && ppid != pg.postmaster) {
				continue
			}
			if db, ok := backendDatabase(d); ok && db != pg.db {
				continue
			}
			s.postgresCPU[pid] = cpu
		}
	}
	s.ok = true
	return s
}

// postmasterOf returns the postmaster of a PostgreSQL backend, or 0 when
// that backend is not a process on this machine (a remote server).
func postmasterOf(backendPID int) int {
	d := "/proc/" + strconv.Itoa(backendPID)
	if comm, err := os.ReadFile(d + "/comm"); err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return 0
	}
	ppid, _, err := procStat(strconv.Itoa(backendPID))
	if err != nil {
		return 0
	}
	return ppid
}

// backendDatabase returns the database a PostgreSQL client backend serves,
// from its process title ("postgres: USER DB HOST(PORT) STATE"); ok is
// false for the postmaster and background processes.
func backendDatabase(procDir string) (db string, ok bool) {
	b, err := os.ReadFile(procDir + "/cmdline")
	if err != nil {
		return "", false
	}
	title, found := strings.CutPrefix(strings.TrimRight(string(b), "\x00"), "postgres: ")
	if !found {
		return "", false
	}
	f := strings.Fields(title)
	if len(f) >= 3 && (strings.HasSuffix(f[2], ")") || f[2] == "[local]") {
		return f[1], true
	}
	return "", false
}

// procStat returns a process's parent and its user+system CPU seconds
// ("self" for this process).
func procStat(pid string) (ppid int, cpu float64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may hold spaces; the fields
	// after it start at field 3 (state), so ppid is 1, utime and stime
	// are 11 and 12.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ppid, (ut + st) / userHZ, nil
}

// split returns how CPU time was spent between a and b, or nil when either
// reading failed.
func split(a, b cpuSample) *CPUSplit {
	wall := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return nil
	}
	var pg float64
	for pid, v := range b.postgresCPU {
		pg += v - a.postgresCPU[pid] // a backend started during the run counts whole
	}
	c := &CPUSplit{
		Cores:    runtime.NumCPU(),
		Busy:     (b.busyTicks - a.busyTicks) / userHZ / wall,
		Server:   (b.server - a.server) / wall,
		Postgres: pg / wall,
		Bench:    (b.bench - a.bench) / wall,
	}
	c.Other = max(0, c.Busy-c.Server-c.Postgres-c.Bench)
	return c
}

// peakRSS returns a process's peak resident set size (VmHWM) from /proc.
func peakRSS(pid int) string {
	return procField("/proc/"+strconv.Itoa(pid)+"/status", "VmHWM")
}
