//go:build unix

package embeddedpg

import (
	"errors"
	"os"
	"syscall"
)

// ownerLock is an exclusive flock on Dir/owner.lock held for as long as a
// Cluster is in use. The kernel releases it when the holder dies, however it
// dies, so a postmaster found running while the lock is free was orphaned
// by a crashed caller and may be stopped and restarted.
type ownerLock struct{ f *os.File }

// errLocked means another live process holds the owner lock.
var errLocked = errors.New("owner lock held by another process")

func lockOwner(path string) (*ownerLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return &ownerLock{f: f}, nil
}

func (l *ownerLock) release() {
	if l != nil {
		l.f.Close()
	}
}
