//go:build unix

package embeddedpg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// account is the unprivileged user the PostgreSQL binaries run as when this
// process is root. initdb and postgres refuse to run as root (a compromised
// server must not own the machine), and containers and CI commonly run as
// root, so Start switches user instead of failing.
type account struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
}

// serviceAccount returns nil when no user switch is needed.
func serviceAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	// The packaged postgres user is preferred because it already owns
	// PostgreSQL's other files and may belong to groups (ssl-cert) postgres
	// expects; nobody exists almost everywhere as a last resort.
	var lookupErrs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			lookupErrs = append(lookupErrs, err)
			continue
		}
		a, err := newAccount(u)
		if err != nil {
			return nil, err
		}
		if a.uid == 0 {
			continue // a "postgres" alias of root would still be refused
		}
		return a, nil
	}
	return nil, fmt.Errorf("embeddedpg: running as root, and no unprivileged \"postgres\" or \"nobody\" user to run PostgreSQL as (create one, e.g. useradd --system postgres): %w", errors.Join(lookupErrs...))
}

func newAccount(u *user.User) (*account, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("embeddedpg: user %s has non-numeric uid %q", u.Username, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("embeddedpg: user %s has non-numeric gid %q", u.Username, u.Gid)
	}
	a := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	// Supplementary groups are best effort: without them the child simply
	// runs with its primary group only.
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				a.groups = append(a.groups, uint32(g))
			}
		}
	}
	return a, nil
}

func (a *account) String() string {
	if a == nil {
		return "the current user"
	}
	return fmt.Sprintf("user %s (uid %d)", a.name, a.uid)
}

// configure makes cmd run as the account and in its own process group. The
// process group lets cancellation kill initdb's helper postgres processes
// too, instead of leaving them behind when only the parent is killed.
func (a *account) configure(cmd *exec.Cmd) {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if a != nil {
		attr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
	}
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
}

// chown hands path to the account. It only changes entries that differ, so
// that reusing a large data directory does not touch every inode's ctime.
func (a *account) chown(path string, recursive bool) error {
	if a == nil {
		return nil
	}
	fix := func(p string, info fs.FileInfo) error {
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid == a.uid && st.Gid == a.gid {
			return nil
		}
		if err := os.Lchown(p, int(a.uid), int(a.gid)); err != nil {
			return fmt.Errorf("embeddedpg: giving %s to %s: %w", p, a, err)
		}
		return nil
	}
	if !recursive {
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		return fix(path, info)
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return fix(p, info)
	})
}

// checkTraversable fails early with an actionable message when the account
// cannot reach dir. Otherwise postgres would fail later with a bare
// "permission denied" in a log file the user may not think to read. ACLs are
// ignored, so this can only be stricter than the kernel when ACLs grant
// access that the mode bits do not.
func (a *account) checkTraversable(dir string) error {
	if a == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := info.Mode().Perm()
		var bit fs.FileMode
		switch {
		case st.Uid == a.uid:
			bit = 0o100
		case a.inGroup(st.Gid):
			bit = 0o010
		default:
			bit = 0o001
		}
		if perm&bit == 0 {
			return fmt.Errorf("embeddedpg: PostgreSQL must run as %s because this process is root, but that user cannot enter %s (mode %v, owner uid %d) on the way to %s: use a Dir below world-searchable directories, or run chmod o+x %s",
				a, p, perm, st.Uid, dir, p)
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

func (a *account) inGroup(gid uint32) bool {
	if gid == a.gid {
		return true
	}
	for _, g := range a.groups {
		if g == gid {
			return true
		}
	}
	return false
}
