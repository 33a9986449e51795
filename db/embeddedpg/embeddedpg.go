// Package embeddedpg runs a private PostgreSQL cluster from the machine's own
// server binaries (initdb, pg_ctl, postgres), so that a development server or
// a test suite gets a real PostgreSQL without Docker, network access, or
// sharing (and polluting) the system cluster. Nothing is ever downloaded: if
// PostgreSQL is not installed, Start fails with ErrNotInstalled.
package embeddedpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// superuser is fixed rather than taken from the OS user so that URLs
	// are the same for every developer and for root in CI.
	superuser = "postgres"

	dataSubdir     = "pgdata"
	logName        = "postgres.log"
	initTempPrefix = "pgdata.initdb-"

	// startWaitSeconds bounds pg_ctl's readiness wait; crash recovery of a
	// dev-sized cluster fits comfortably.
	startWaitSeconds = 60

	defaultStopTimeout = 10 * time.Second

	// logRotateSize keeps postgres.log from growing without bound across
	// many restarts of a long-lived dev Dir; one previous generation is kept.
	logRotateSize = 16 << 20

	// logTailLines is how much of postgres.log a start error quotes: enough
	// for the FATAL line and its context, short enough for a terminal.
	logTailLines = 20
)

// ErrAlreadyRunning is wrapped by Start's error when a postmaster already
// owns Dir, typically another server process using the same Dir or an
// orphan left by one that crashed. Two postmasters must never share a data
// directory, so Start refuses rather than guessing which one should win.
var ErrAlreadyRunning = errors.New("PostgreSQL is already running in this directory")

// Options configure a private cluster.
type Options struct {
	// Dir holds the cluster (Dir/pgdata) and its server log
	// (Dir/postgres.log). It is created if missing and an existing cluster
	// in it is reused, so data survives restarts of the calling program.
	Dir string

	// Port is the TCP port on 127.0.0.1. 0 picks a free port, which lets
	// parallel test packages each run their own cluster.
	Port int

	// Fast trades durability for speed (fsync, synchronous_commit and
	// full_page_writes off; initdb without sync). It is meant for tests,
	// whose data is thrown away: after an OS crash or power loss a Fast
	// cluster can be corrupt, so never use it for data worth keeping.
	Fast bool

	// Logger receives progress and warnings; nil discards them. The server's
	// own messages go to Dir/postgres.log, not here.
	Logger *slog.Logger

	// StopTimeout bounds the fast shutdown in Stop before it falls back to
	// an immediate one. 0 means 10s.
	StopTimeout time.Duration
}

// Cluster is a running private PostgreSQL. It is safe for concurrent use.
// The postmaster runs detached from the calling process, so callers must
// call Stop; a cluster left running by a crashed caller is stopped and
// started again by the next Start (see ownerLock), while one in use by a
// live process is reported as ErrAlreadyRunning.
type Cluster struct {
	binDir      string
	dir         string
	dataDir     string
	logPath     string
	port        int
	pid         int
	acct        *account
	log         *slog.Logger
	stopTimeout time.Duration

	owner *ownerLock

	mu      sync.Mutex
	stopped bool
}

// Start creates (if needed) and starts the cluster described by opt, and
// returns once it accepts connections. If ctx ends first, Start kills what it
// started and returns the context's error; a half-done initdb never becomes
// Dir/pgdata, so the next Start simply initialises again.
func Start(ctx context.Context, opt Options) (*Cluster, error) {
	if opt.Dir == "" {
		return nil, errors.New("embeddedpg: Options.Dir is required")
	}
	if opt.Port < 0 || opt.Port > math.MaxUint16 {
		return nil, fmt.Errorf("embeddedpg: invalid port %d", opt.Port)
	}
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, fmt.Errorf("embeddedpg: %w", err)
	}
	// pg_ctl hands the data directory and log paths to /bin/sh inside double
	// quotes; these characters would be interpreted by the shell.
	if os.PathSeparator == '/' && strings.ContainsAny(dir, "\"$`\\\n") {
		return nil, fmt.Errorf("embeddedpg: Dir %q contains a character pg_ctl cannot quote (one of \" $ ` \\ or newline)", dir)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embeddedpg: %w", context.Cause(ctx))
	}
	binDir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	acct, err := serviceAccount()
	if err != nil {
		return nil, err
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stopTimeout := opt.StopTimeout
	if stopTimeout <= 0 {
		stopTimeout = defaultStopTimeout
	}
	c := &Cluster{
		binDir:      binDir,
		dir:         dir,
		dataDir:     filepath.Join(dir, dataSubdir),
		logPath:     filepath.Join(dir, logName),
		acct:        acct,
		log:         log.With("component", "embeddedpg", "dir", dir),
		stopTimeout: stopTimeout,
	}
	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	c.owner, err = lockOwner(filepath.Join(dir, "owner.lock"))
	if errors.Is(err, errLocked) {
		return nil, fmt.Errorf("embeddedpg: %w: another process is using %s", ErrAlreadyRunning, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("embeddedpg: %w", err)
	}
	started := false
	defer func() {
		if !started {
			c.owner.release()
		}
	}()
	if err := c.initialise(ctx, opt.Fast); err != nil {
		return nil, err
	}
	if err := c.checkNotRunning(ctx); err != nil {
		return nil, err
	}
	c.rotateLog()

	for attempt := 1; ; attempt++ {
		port := opt.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, fmt.Errorf("embeddedpg: picking a free port: %w", err)
			}
		}
		portInUse, err := c.start(ctx, port, opt.Fast)
		if err == nil {
			break
		}
		// A port picked by freePort can be grabbed by someone else before
		// postgres binds it; one retry makes that race practically
		// irrelevant without hiding a persistent problem.
		if opt.Port == 0 && attempt == 1 && portInUse {
			c.log.Warn("port taken before PostgreSQL could bind it; retrying with another", "port", port)
			continue
		}
		return nil, err
	}
	c.log.Info("PostgreSQL started", "port", c.port, "pid", c.pid, "bin", binDir)
	started = true
	return c, nil
}

// URL returns a libpq/pgx connection URL for database (default "postgres")
// as the superuser over TCP; trust authentication means no password, and
// sslmode=disable avoids a pointless TLS negotiation on loopback.
func (c *Cluster) URL(database string) string {
	if database == "" {
		database = superuser
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the cluster listens on, useful when Options.Port
// was 0.
func (c *Cluster) Port() int { return c.port }

// Stop shuts the cluster down with a fast shutdown (open sessions are
// disconnected, in-flight transactions rolled back, data flushed). It is
// idempotent, so it can be both deferred and called explicitly. If the fast
// shutdown exceeds StopTimeout, Stop falls back to an immediate shutdown,
// which PostgreSQL recovers from at the next start.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	if err := c.stop(); err != nil {
		return err
	}
	c.stopped = true
	c.owner.release()
	return nil
}

func (c *Cluster) stop() error {
	// The postmaster may have died and a different one (another Start on
	// the same Dir) may own the directory now; stopping that would pull
	// the database out from under someone else.
	if pid, _, err := readPostmasterPID(c.dataDir); err != nil || pid != c.pid {
		c.log.Info("PostgreSQL already stopped", "pid", c.pid)
		return nil
	}
	secs := int(math.Ceil(c.stopTimeout.Seconds()))
	ctx, cancel := context.WithTimeout(context.Background(), c.stopTimeout+10*time.Second)
	defer cancel()
	out, err := c.command(ctx, "pg_ctl", "stop", "-m", "fast", "-w", "-t", strconv.Itoa(secs), "-D", c.dataDir).CombinedOutput()
	if err == nil {
		c.log.Info("PostgreSQL stopped", "pid", c.pid)
		return nil
	}
	if !c.running() {
		return nil
	}
	c.log.Warn("fast shutdown failed; forcing immediate shutdown", "err", err, "output", strings.TrimSpace(string(out)))
	ictx, icancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer icancel()
	out, err = c.command(ictx, "pg_ctl", "stop", "-m", "immediate", "-w", "-t", "20", "-D", c.dataDir).CombinedOutput()
	if err == nil || !c.running() {
		return nil
	}
	return fmt.Errorf("embeddedpg: stopping PostgreSQL (pid %d) failed: %v: %s", c.pid, err, strings.TrimSpace(string(out)))
}

// running reports whether a live postmaster owns the data directory, per
// pg_ctl status (exit 0 running, 3 not running).
func (c *Cluster) running() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.command(ctx, "pg_ctl", "status", "-D", c.dataDir).Run() == nil
}

// command builds an invocation of a PostgreSQL binary that runs as the
// service account, inside Dir, with a predictable environment.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	// The service account may not be able to enter the caller's working
	// directory, which makes PostgreSQL binaries complain or fail.
	cmd.Dir = c.dir
	cmd.Env = cleanEnv()
	// The postmaster inherits nothing from pg_ctl's output pipes (pg_ctl
	// redirects it to the log), but if some build ever did, Wait would hang
	// forever; this bounds that.
	cmd.WaitDelay = 5 * time.Second
	c.acct.configure(cmd)
	return cmd
}

// cleanEnv drops PG* variables: PGDATA, PGPORT, PGOPTIONS and friends are
// meant for the developer's own clusters and would silently change which
// cluster or settings these commands use.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// prepareDir creates Dir and hands it to the service account.
func (c *Cluster) prepareDir() error {
	// Parents get ordinary permissions so that the service account can
	// traverse them; only Dir itself is private.
	if err := os.MkdirAll(filepath.Dir(c.dir), 0o755); err != nil {
		return fmt.Errorf("embeddedpg: %w", err)
	}
	if err := os.Mkdir(c.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("embeddedpg: %w", err)
	}
	info, err := os.Stat(c.dir)
	if err != nil {
		return fmt.Errorf("embeddedpg: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("embeddedpg: Dir %s is not a directory", c.dir)
	}
	real, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		return fmt.Errorf("embeddedpg: %w", err)
	}
	if err := c.acct.checkTraversable(real); err != nil {
		return err
	}
	// Only Dir itself and what this package created in it are chowned, not
	// everything below Dir, in case Dir was pointed at a directory that
	// also holds other files.
	if err := c.acct.chown(c.dir, false); err != nil {
		return err
	}
	for _, p := range []string{c.dataDir, c.logPath, c.logPath + ".1"} {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := c.acct.chown(p, true); err != nil {
			return err
		}
	}
	// postgres refuses a data directory readable by others.
	if info, err := os.Stat(c.dataDir); err == nil {
		if perm := info.Mode().Perm(); perm != 0o700 && perm != 0o750 {
			if err := os.Chmod(c.dataDir, 0o700); err != nil {
				return fmt.Errorf("embeddedpg: %w", err)
			}
		}
	}
	c.removeStaleInitDirs()
	return nil
}

// removeStaleInitDirs deletes initdb scratch directories left by crashed
// runs. Recent ones are left alone because another process may be
// initialising into them right now.
func (c *Cluster) removeStaleInitDirs() {
	matches, _ := filepath.Glob(filepath.Join(c.dir, initTempPrefix+"*"))
	for _, m := range matches {
		if info, err := os.Stat(m); err == nil && time.Since(info.ModTime()) > 10*time.Minute {
			c.log.Info("removing leftover initdb directory", "path", m)
			_ = os.RemoveAll(m)
		}
	}
}

// initialise runs initdb unless Dir/pgdata already holds a cluster. initdb
// writes into a scratch directory that is renamed into place only on
// success, because a half-initialised pgdata would make every later start
// fail until someone deleted it by hand.
func (c *Cluster) initialise(ctx context.Context, fast bool) error {
	if isFile(filepath.Join(c.dataDir, "PG_VERSION")) {
		return nil
	}
	if entries, err := os.ReadDir(c.dataDir); err == nil {
		if len(entries) > 0 {
			return fmt.Errorf("embeddedpg: %s exists but is not a PostgreSQL data directory (no PG_VERSION); move it away to let a new cluster be created", c.dataDir)
		}
		if err := os.Remove(c.dataDir); err != nil {
			return fmt.Errorf("embeddedpg: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("embeddedpg: %w", err)
	}

	tmp, err := os.MkdirTemp(c.dir, initTempPrefix)
	if err != nil {
		return fmt.Errorf("embeddedpg: %w", err)
	}
	defer func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := c.acct.chown(tmp, false); err != nil {
		return err
	}
	args := []string{"-D", tmp, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if fast {
		args = append(args, "--no-sync")
	}
	c.log.Info("initialising PostgreSQL cluster", "datadir", c.dataDir, "as", c.acct.String())
	out, err := c.command(ctx, "initdb", args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("embeddedpg: initdb interrupted: %w", context.Cause(ctx))
		}
		return fmt.Errorf("embeddedpg: initdb failed: %v\n%s", err, lastLines(string(out), logTailLines))
	}
	if err := os.Rename(tmp, c.dataDir); err != nil {
		// Another process initialising the same Dir got there first; its
		// cluster is as good as ours.
		if isFile(filepath.Join(c.dataDir, "PG_VERSION")) {
			return nil
		}
		return fmt.Errorf("embeddedpg: %w", err)
	}
	tmp = ""
	if !fast {
		// Make the rename itself durable, not just initdb's files.
		if d, err := os.Open(c.dir); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	return nil
}

// checkNotRunning refuses to start a second postmaster on the same data
// directory. postgres's own lock file would refuse too, but only after
// pg_ctl had waited and with a message about lock files that does not say
// what to do.
func (c *Cluster) checkNotRunning(ctx context.Context) error {
	if !isFile(filepath.Join(c.dataDir, "postmaster.pid")) {
		return nil
	}
	err := c.command(ctx, "pg_ctl", "status", "-D", c.dataDir).Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil && c.owner != nil:
		// We hold the owner lock, so whoever started this postmaster is
		// gone: take the orphan down and start afresh.
		pid, _, _ := readPostmasterPID(c.dataDir)
		c.log.Warn("stopping a PostgreSQL left running by a process that exited", "pid", pid)
		c.pid = pid
		return c.stop()
	case err == nil:
		pid, port, _ := readPostmasterPID(c.dataDir)
		return fmt.Errorf("embeddedpg: %w: %s (pid %d, port %d); another process is probably using the same Dir. Stop it, or if it was left behind by a crashed run, stop it with: %s stop -m fast -D %s",
			ErrAlreadyRunning, c.dataDir, pid, port, filepath.Join(c.binDir, "pg_ctl"), c.dataDir)
	case ctx.Err() != nil:
		return fmt.Errorf("embeddedpg: %w", context.Cause(ctx))
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 3:
		// Stale postmaster.pid from a crash; postgres replaces it itself.
		c.log.Info("found postmaster.pid of a server that is no longer running; recovering")
		return nil
	default:
		// Not conclusive; postgres's lock file check still protects the
		// data, so let the start attempt report the real problem.
		c.log.Warn("could not determine whether PostgreSQL is already running", "err", err)
		return nil
	}
}

// start runs pg_ctl start once on port. portInUse reports a failure that a
// retry on another port can fix.
func (c *Cluster) start(ctx context.Context, port int, fast bool) (portInUse bool, err error) {
	pidPath := filepath.Join(c.dataDir, "postmaster.pid")
	before, _ := os.ReadFile(pidPath)
	logOffset := fileSize(c.logPath)

	// The -o string goes through /bin/sh, hence the shell quoting of the
	// empty value. Unix sockets are disabled because socket paths are
	// limited to ~100 bytes, which deep temporary directories exceed; all
	// clients use TCP on loopback.
	opts := []string{
		"-p", strconv.Itoa(port),
		"-h", "127.0.0.1",
		"-c", "unix_socket_directories=''",
		// Test suites open many pools in parallel; the default 100 runs out.
		"-c", "max_connections=300",
	}
	if fast {
		opts = append(opts, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	c.log.Debug("starting PostgreSQL", "port", port)
	out, err := c.command(ctx, "pg_ctl", "start", "-w", "-t", strconv.Itoa(startWaitSeconds),
		"-D", c.dataDir, "-l", c.logPath, "-o", strings.Join(opts, " ")).CombinedOutput()
	if err != nil {
		// pg_ctl announces the wait only after forking the postmaster; if
		// it was killed before that, there is at most a child that was
		// killed with pg_ctl's process group or is about to write its pid.
		var wait time.Duration // pg_ctl exited by itself: the pid file is final
		if ctx.Err() != nil {
			wait = 250 * time.Millisecond
			if bytes.Contains(out, []byte("waiting for server")) {
				wait = 2 * time.Second
			}
		}
		c.abandonStart(before, logOffset, wait)
		if ctx.Err() != nil {
			return false, fmt.Errorf("embeddedpg: starting PostgreSQL interrupted: %w", context.Cause(ctx))
		}
		logText := readFrom(c.logPath, logOffset)
		return strings.Contains(logText, "Address already in use"),
			fmt.Errorf("embeddedpg: PostgreSQL did not start on port %d: pg_ctl: %v: %s\nlast lines of %s:\n%s",
				port, err, strings.Join(strings.Fields(string(out)), " "), c.logPath, lastLines(logText, logTailLines))
	}
	pid, _, err := readPostmasterPID(c.dataDir)
	if err != nil {
		return false, fmt.Errorf("embeddedpg: PostgreSQL started but its pid is unreadable: %w", err)
	}
	c.port, c.pid = port, pid
	return false, nil
}

// abandonStart stops a postmaster that pg_ctl launched but that Start will
// not return, because pg_ctl timed out or was killed on cancellation: the
// postmaster runs in its own session and would otherwise live on and block
// the next Start. A postmaster is taken to be ours only if postmaster.pid
// changed and no competing postgres reported the lock file as taken, so a
// concurrent Start's server is never touched.
//
// wait bounds how long to wait for the postmaster to write its pid file:
// pg_ctl may have been killed between forking it and that write.
func (c *Cluster) abandonStart(before []byte, logOffset int64, wait time.Duration) {
	pidPath := filepath.Join(c.dataDir, "postmaster.pid")
	deadline := time.Now().Add(wait)
	for {
		now, err := os.ReadFile(pidPath)
		if err == nil && len(now) > 0 && !bytes.Equal(now, before) {
			break
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(readFrom(c.logPath, logOffset), `lock file "postmaster.pid" already exists`) {
		return
	}
	c.log.Warn("stopping PostgreSQL that did not finish starting")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := c.command(ctx, "pg_ctl", "stop", "-m", "immediate", "-w", "-t", "20", "-D", c.dataDir).CombinedOutput(); err != nil {
		c.log.Warn("could not stop PostgreSQL", "err", err, "output", strings.TrimSpace(string(out)))
	}
}

// rotateLog keeps one previous generation of the server log.
func (c *Cluster) rotateLog() {
	if fileSize(c.logPath) < logRotateSize {
		return
	}
	if err := os.Rename(c.logPath, c.logPath+".1"); err != nil {
		c.log.Warn("could not rotate server log", "err", err)
	}
}

// readPostmasterPID parses the first (pid) and fourth (port) lines of
// postmaster.pid.
func readPostmasterPID(dataDir string) (pid, port int, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return 0, 0, fmt.Errorf("malformed postmaster.pid: %w", err)
	}
	if len(lines) > 3 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	return pid, port, nil
}

// freePort is a variable so tests can simulate losing the port race.
var freePort = func() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}

func fileSize(p string) int64 {
	info, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return info.Size()
}

// readFrom returns the file's content from offset on, limited to its last
// 256 KiB, which is plenty for the lines an error message quotes.
func readFrom(p string, offset int64) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	const limit = 256 << 10
	if size := fileSize(p); size-offset > limit {
		offset = size - limit
	} else if offset > size {
		offset = 0 // truncated or replaced since offset was taken
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
