package embeddedpg

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testDir returns a fresh Dir for a cluster. As root the cluster runs as an
// unprivileged user, which must be able to traverse t.TempDir's per-test
// parent; testing creates that 0700.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func binDir(t *testing.T) string {
	t.Helper()
	dir, err := FindBinaries()
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// testLogger routes the package's logging into the test output, where it
// shows up for failing tests and with -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startCluster starts a cluster and stops it when the test ends.
func startCluster(t *testing.T, opt Options) *Cluster {
	t.Helper()
	binDir(t)
	if opt.Logger == nil {
		opt.Logger = testLogger(t)
	}
	c, err := Start(context.Background(), opt)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

// psql runs sql through the installed psql, since the module deliberately
// has no PostgreSQL driver dependency.
func psql(t *testing.T, c *Cluster, sql string) string {
	t.Helper()
	out, err := tryPSQL(t, c, sql)
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return out
}

func tryPSQL(t *testing.T, c *Cluster, sql string) (string, error) {
	t.Helper()
	bin := filepath.Join(binDir(t), "psql")
	if _, err := exec.LookPath(bin); err != nil {
		if bin, err = exec.LookPath("psql"); err != nil {
			t.Skip("psql not installed; cannot query the cluster")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql, c.URL("postgres"))
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestStartAnswersQueries(t *testing.T) {
	t.Parallel()
	c := startCluster(t, Options{Dir: testDir(t), Fast: true})

	if c.Port() <= 0 {
		t.Fatalf("Port() = %d", c.Port())
	}
	if got := psql(t, c, "select 1"); got != "1" {
		t.Fatalf("select 1 = %q", got)
	}
	for setting, want := range map[string]string{
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"max_connections":         "300",
		"unix_socket_directories": "",
		"listen_addresses":        "127.0.0.1",
		"server_encoding":         "UTF8",
		"lc_collate":              "C",
	} {
		if got := psql(t, c, "show "+setting); got != want {
			t.Errorf("show %s = %q, want %q", setting, got, want)
		}
	}
	if got := psql(t, c, "select current_user"); got != "postgres" {
		t.Errorf("current_user = %q", got)
	}
}

func TestURL(t *testing.T) {
	c := &Cluster{port: 5433}
	for db, want := range map[string]string{
		"app":    "postgres://postgres@127.0.0.1:5433/app?sslmode=disable",
		"":       "postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable",
		"my db?": "postgres://postgres@127.0.0.1:5433/my%20db%3F?sslmode=disable",
	} {
		if got := c.URL(db); got != want {
			t.Errorf("URL(%q) = %q, want %q", db, got, want)
		}
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	c := startCluster(t, Options{Dir: dir, Fast: true})
	psql(t, c, "create table kept (v text); insert into kept values ('hello')")
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Restart durable, on a fixed port, to cover the non-Fast path too.
	port := c.Port()
	c2 := startCluster(t, Options{Dir: dir, Port: port})
	if c2.Port() != port {
		t.Errorf("Port() = %d, want %d", c2.Port(), port)
	}
	if got := psql(t, c2, "select v from kept"); got != "hello" {
		t.Fatalf("after restart: %q", got)
	}
	if got := psql(t, c2, "show fsync"); got != "on" {
		t.Errorf("fsync = %q without Fast", got)
	}
}

func TestSecondStartOnRunningDirFails(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	c := startCluster(t, Options{Dir: dir, Fast: true})

	c2, err := Start(context.Background(), Options{Dir: dir, Fast: true})
	if err == nil {
		c2.Stop()
		t.Fatal("second Start on a running Dir succeeded")
	}
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("want ErrAlreadyRunning, got: %v", err)
	}
	t.Logf("error: %v", err)
	if got := psql(t, c, "select 1"); got != "1" {
		t.Fatalf("first cluster after refused second Start: %q", got)
	}
}

func TestPortInUseReportsLog(t *testing.T) {
	t.Parallel()
	binDir(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	c, err := Start(context.Background(), Options{Dir: testDir(t), Port: port, Fast: true})
	if err == nil {
		c.Stop()
		t.Fatal("Start on a taken port succeeded")
	}
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("error does not quote postgres.log: %v", err)
	}
	t.Logf("error: %v", err)
}

func TestPortRaceIsRetried(t *testing.T) {
	// Not parallel: it swaps the package's freePort.
	binDir(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	orig := freePort
	t.Cleanup(func() { freePort = orig })
	calls := 0
	freePort = func() (int, error) {
		calls++
		if calls == 1 {
			return taken, nil
		}
		return orig()
	}
	c := startCluster(t, Options{Dir: testDir(t), Fast: true})
	if calls != 2 || c.Port() == taken {
		t.Fatalf("freePort calls = %d, port = %d (taken %d)", calls, c.Port(), taken)
	}
	if got := psql(t, c, "select 1"); got != "1" {
		t.Fatalf("select 1 = %q", got)
	}
}

func TestCancelledStartCleansUp(t *testing.T) {
	t.Parallel()
	binDir(t)
	dir := testDir(t)

	// Cancelled during initdb: no half cluster and no scratch dir survive.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if c, err := Start(ctx, Options{Dir: dir, Fast: true}); err == nil {
		c.Stop()
		t.Skip("machine initialised a cluster in under 50ms; cannot test cancellation")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pgdata")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pgdata exists after cancelled initdb: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, initTempPrefix+"*")); len(m) > 0 {
		t.Errorf("initdb scratch dirs left behind: %v", m)
	}

	// Cancelled while pg_ctl waits for readiness: the postmaster it forked
	// must not outlive Start.
	c := startCluster(t, Options{Dir: dir, Fast: true})
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if c, err := Start(ctx2, Options{Dir: dir, Fast: true, Logger: testLogger(t)}); err == nil {
		c.Stop()
		t.Log("server started within 30ms; pg_ctl cancellation not exercised")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}

	c3 := startCluster(t, Options{Dir: dir, Fast: true})
	if got := psql(t, c3, "select 1"); got != "1" {
		t.Fatalf("after cancelled starts: %q", got)
	}
}

func TestUntraversableParentIsReported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches to an unprivileged user")
	}
	binDir(t)
	t.Parallel()
	private := t.TempDir() // 0700 parent, owned by root
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Dir: filepath.Join(private, "db"), Fast: true})
	if err == nil || !strings.Contains(err.Error(), "cannot enter "+private) {
		t.Fatalf("want traversal error naming %s, got %v", private, err)
	}
	t.Logf("error: %v", err)
}

func TestSortNewestFirst(t *testing.T) {
	got := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/beta/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/15/bin",
	}
	sortNewestFirst("/usr/lib/postgresql/*/bin", got)
	want := []string{
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/beta/bin",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestFindBinaries(t *testing.T) {
	dir, err := FindBinaries()
	if errors.Is(err, ErrNotInstalled) {
		if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "install PostgreSQL") {
			t.Errorf("ErrNotInstalled message should be one actionable line: %q", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !hasBinaries(dir) {
		t.Fatalf("FindBinaries returned %s without initdb, pg_ctl and postgres", dir)
	}
	t.Logf("binaries in %s", dir)
}
