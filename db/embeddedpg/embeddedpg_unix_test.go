//go:build unix

package embeddedpg

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestRecoversFromCrash(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	// Not Fast: with synchronous_commit off the committed row could
	// legitimately be lost by the crash.
	c := startCluster(t, Options{Dir: dir})
	psql(t, c, "create table survivor (v int); insert into survivor values (42)")

	pid, _, err := readPostmasterPID(filepath.Join(dir, "pgdata"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop of crashed cluster: %v", err)
	}

	c2 := startCluster(t, Options{Dir: dir})
	if got := psql(t, c2, "select v from survivor"); got != "42" {
		t.Fatalf("after crash: %q", got)
	}
}

func TestOrphanedClusterIsTakenOver(t *testing.T) {
	t.Parallel()
	dir := testDir(t)
	c := startCluster(t, Options{Dir: dir, Fast: true})
	psql(t, c, "create table kept (v int); insert into kept values (7); checkpoint")
	// The owning process dies without Stop: the kernel drops its lock and
	// the postmaster keeps running.
	c.owner.release()

	c2 := startCluster(t, Options{Dir: dir, Fast: true})
	if c2.pid == c.pid {
		t.Fatalf("the orphaned postmaster (pid %d) was reused instead of restarted", c.pid)
	}
	if got := psql(t, c2, "select v from kept"); got != "7" {
		t.Fatalf("after take-over: %q", got)
	}
	// The old handle's Stop must not take down its successor.
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop of the orphan's handle: %v", err)
	}
	if got := psql(t, c2, "select 1"); got != "1" {
		t.Fatalf("successor after old Stop: %q", got)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
	t.Fatalf("process %d still exists after SIGKILL", pid)
}
