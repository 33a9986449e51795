//go:build !unix

package embeddedpg

import "errors"

// ownerLock is not available off unix; there a leftover postmaster is
// reported as ErrAlreadyRunning instead of being taken over.
type ownerLock struct{}

var errLocked = errors.New("owner lock held by another process")

func lockOwner(string) (*ownerLock, error) { return nil, nil }

func (l *ownerLock) release() {}
