package db

import "slices"

// Notifier hears, after commit, which lines and members have new events.
// It is a hint for live delivery; the event tables stay the truth.
type Notifier interface {
	LinesChanged(lineIDs ...string)
	MembersChanged(memberIDs ...string)
	// PushQueued says the push outbox has new messages.
	PushQueued()
}

type noNotifier struct{}

func (noNotifier) LinesChanged(...string)   {}
func (noNotifier) MembersChanged(...string) {}
func (noNotifier) PushQueued()              {}

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
}

func (c *changes) reset() { c.lines, c.members, c.push = c.lines[:0], c.members[:0], false }

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
}
