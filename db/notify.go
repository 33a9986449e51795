package db

import "slices"

// Notifier hears, after commit, which lines and members have new events.
// It is a hint for live delivery; the event tables stay the truth.
type Notifier interface {
	LinesChanged(lineIDs ...string)
	MembersChanged(memberIDs ...string)
	// PushQueued says the push outbox has new messages.
	PushQueued()
	// LoginEmailQueued says the mail worker has new work: a request for a
	// login code to resolve, or a login email to send.
	LoginEmailQueued()
	// RightsChanged says what these members may see or do changed: a role,
	// a sign-up or a captaincy. Their open subscriptions are checked again.
	RightsChanged(memberIDs ...string)
	// SessionsEnded says these sessions were revoked: their sockets close.
	SessionsEnded(sessionIDs ...string)
}

// NoNotifier tells nobody anything: the notifier of a store nobody set one
// on. Embed it in a Notifier that cares about some changes only.
type NoNotifier struct{}

// LinesChanged implements Notifier.
func (NoNotifier) LinesChanged(...string) {}

// MembersChanged implements Notifier.
func (NoNotifier) MembersChanged(...string) {}

// PushQueued implements Notifier.
func (NoNotifier) PushQueued() {}

// LoginEmailQueued implements Notifier.
func (NoNotifier) LoginEmailQueued() {}

// RightsChanged implements Notifier.
func (NoNotifier) RightsChanged(...string) {}

// SessionsEnded implements Notifier.
func (NoNotifier) SessionsEnded(...string) {}

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
	// loginEmail is set when a login request or a login email was queued.
	loginEmail bool
	// rights lists members whose rights changed; sessions, sessions revoked.
	rights   []string
	sessions []string
}

func (c *changes) reset() {
	c.lines, c.members, c.push, c.loginEmail = c.lines[:0], c.members[:0], false, false
	c.rights, c.sessions = c.rights[:0], c.sessions[:0]
}

func (s *Store) publish(c *changes) {
	// Rights first: a replica then holds a member's subscriptions before it
	// hears of the events that followed the change.
	if len(c.sessions) > 0 {
		s.notifier.SessionsEnded(distinct(c.sessions)...)
	}
	if len(c.rights) > 0 {
		s.notifier.RightsChanged(distinct(c.rights)...)
	}
	if len(c.lines) > 0 {
		s.notifier.LinesChanged(distinct(c.lines)...)
	}
	if len(c.members) > 0 {
		s.notifier.MembersChanged(distinct(c.members)...)
	}
	if c.push {
		s.notifier.PushQueued()
	}
	if c.loginEmail {
		s.notifier.LoginEmailQueued()
	}
}

func distinct(ids []string) []string { return slices.Compact(slices.Sorted(slices.Values(ids))) }
