package db

import "slices"

// Notifier hears, after commit, which lines and members have new events.
// It is a hint for live delivery; the event tables stay the truth.
type Notifier interface {
	LinesChanged(lineIDs ...string)
	MembersChanged(memberIDs ...string)
	// PushQueued says the push outbox has new messages.
	PushQueued()
	// LoginEmailQueued says the login email outbox has a new email.
	LoginEmailQueued()
}

type noNotifier struct{}

func (noNotifier) LinesChanged(...string)   {}
func (noNotifier) MembersChanged(...string) {}
func (noNotifier) PushQueued()              {}
func (noNotifier) LoginEmailQueued()        {}

// SetNotifier installs the notifier told about new events. Call it before
// serving.
func (s *Store) SetNotifier(n Notifier) { s.notifier = n }

// changes collects what a use-case's transaction touched, to tell the
// notifier once the transaction has committed and never before.
type changes struct {
	lines   []string
	members []string
	// push is set when outbox rows were written.
	push bool
	// loginEmail is set when a login email was queued.
	loginEmail bool
}

func (c *changes) reset() {
	c.lines, c.members, c.push, c.loginEmail = c.lines[:0], c.members[:0], false, false
}

func (s *Store) publish(c *changes) {
	if len(c.lines) > 0 {
		s.notifier.LinesChanged(slices.Compact(slices.Sorted(slices.Values(c.lines)))...)
	}
	if len(c.members) > 0 {
		s.notifier.MembersChanged(slices.Compact(slices.Sorted(slices.Values(c.members)))...)
	}
	if c.push {
		s.notifier.PushQueued()
	}
	if c.loginEmail {
		s.notifier.LoginEmailQueued()
	}
}
