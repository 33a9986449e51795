package realtime

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/picketline/picketline/db"
)

// CheckInterval is how often a replica looks for sessions revoked and roles
// changed that it did not hear of: a replica that crashed between a commit
// and its NOTIFY told nobody. Changes to a line's rights need no looking
// for: the line's own events name them (see Hub.handOutTo).
const CheckInterval = 5 * time.Second

// lookBack is how much further back than its last look a replica looks: a
// change is stamped when its statement runs and seen when it commits, so
// one stamped just before a look may commit just after it.
const lookBack = time.Minute

// Authority keeps every socket's rights those its session holds now, not
// those it held when it connected. When it hears that members' rights
// changed (RightsChanged: from this replica's use-cases, another's NOTIFY,
// or an event in a line's own stream that names them), their line
// subscriptions are held, so nothing more is handed to them, until one
// query says what they may still do: a socket whose session
// ended closes with 4403, a subscription to a line its member may no longer
// follow ends with a FORBIDDEN error, the rest carry on, and the socket's
// next operations run with the member's new role.
type Authority struct {
	store *db.Store
	hub   *Hub
	conns *Conns
	clock db.Clock
	log   *slog.Logger

	mu      sync.Mutex
	pending map[string]struct{}
	all     bool
	kick    chan struct{}
}

// NewAuthority returns the authority over hub's subscriptions and conns'
// sockets; Run must be running for it to act.
func NewAuthority(store *db.Store, hub *Hub, conns *Conns, clock db.Clock, log *slog.Logger) *Authority {
	a := &Authority{store: store, hub: hub, conns: conns, clock: clock, log: log,
		pending: map[string]struct{}{}, kick: make(chan struct{}, 1)}
	// The line's own stream may tell of a change before its NOTIFY does.
	hub.onRevoked = func(memberIDs []string) { a.RightsChanged(memberIDs...) }
	return a
}

// RightsChanged holds the line subscriptions of these members at once and
// has their rights checked again.
func (a *Authority) RightsChanged(memberIDs ...string) {
	a.hub.holdMembers(memberIDs)
	a.mu.Lock()
	for _, id := range memberIDs {
		a.pending[id] = struct{}{}
	}
	a.mu.Unlock()
	a.wake()
}

// CheckAll has every socket and subscription checked again: after the
// listener reconnected, changes told meanwhile were not heard. It costs a
// query over every open socket, so it runs only then.
func (a *Authority) CheckAll() {
	a.mu.Lock()
	a.all = true
	a.mu.Unlock()
	a.wake()
}

func (a *Authority) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run checks what it is told to, and every CheckInterval what changed
// unheard of, until ctx ends.
func (a *Authority) Run(ctx context.Context) {
	tick := a.clock.NewTicker(CheckInterval)
	defer tick.Stop()
	looked := a.clock.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.Chan():
			now := a.clock.Now()
			if a.look(ctx, looked.Add(-lookBack)) {
				looked = now
			}
			// A check that failed left its members pending, and held.
			a.check(ctx)
		case <-a.kick:
			a.check(ctx)
		}
	}
}

// look closes the sockets of sessions revoked since, and has the rights of
// members whose role changed since checked, if any of theirs are open
// here. It costs one query on indexes holding only what changed, however
// many sockets are open. It reports whether the query answered.
func (a *Authority) look(ctx context.Context, since time.Time) bool {
	sessions, members, err := a.store.RightsChangedSince(ctx, db.System, since)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("look for rights changed unheard of; trying again", "err", err)
		}
		return false
	}
	if len(sessions) > 0 {
		a.conns.CloseSessions(sessions)
	}
	if len(members) > 0 {
		a.RightsChanged(members...)
	}
	return true
}

// check settles the rights of the pending members (or of everyone) in one
// query. If the query fails they stay pending, their subscriptions held,
// and the next tick tries again: with the database away there are no
// events to hand out anyway.
func (a *Authority) check(ctx context.Context) {
	a.mu.Lock()
	members := a.pending
	if a.all {
		members = nil
	}
	a.pending, a.all = map[string]struct{}{}, false
	a.mu.Unlock()
	if members != nil && len(members) == 0 {
		return
	}

	conns := a.conns.authenticated(members)
	lines := a.hub.lineWatches(members)
	if len(conns) == 0 && len(lines) == 0 {
		// None of theirs is open here.
		return
	}
	watches := make([]db.Watch, 0, len(conns)+len(lines))
	for _, c := range conns {
		actor := c.Actor()
		watches = append(watches, db.Watch{SessionID: actor.SessionID, MemberID: actor.MemberID})
	}
	for _, w := range lines {
		watches = append(watches, db.Watch{SessionID: w.actor.SessionID, MemberID: w.actor.MemberID, LineID: w.lineID})
	}
	standings, err := a.store.Standings(ctx, db.System, watches)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("check the rights of open subscriptions; trying again", "err", err)
		}
		a.retry(members)
		return
	}
	for i, c := range conns {
		st := standings[i]
		if !st.Live {
			// On a goroutine of its own: a peer that reads nothing holds
			// the close for the write timeout, and nobody else waits.
			go c.CloseWith(CloseForbidden, "Session ended")
			continue
		}
		c.setRole(st.Role)
	}
	a.hub.settle(lines, standings[len(conns):])
}

func (a *Authority) retry(members map[string]struct{}) {
	a.mu.Lock()
	if members == nil {
		a.all = true
	}
	for id := range members {
		a.pending[id] = struct{}{}
	}
	a.mu.Unlock()
}

// lineWatch is one line subscription as a check found it.
type lineWatch struct {
	sub    *lineSub
	lineID string
	actor  db.Actor
	hold   uint64
}

// holdMembers stops handing events to the line subscriptions of these
// members until settle releases them.
func (h *Hub) holdMembers(memberIDs []string) {
	members := make(map[string]struct{}, len(memberIDs))
	for _, id := range memberIDs {
		members[id] = struct{}{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.lines {
		for sub := range subs {
			if sub.viewer == nil {
				continue
			}
			if _, ok := members[sub.viewer.Actor().MemberID]; ok {
				sub.held = true
				sub.hold++
			}
		}
	}
}

// lineWatches returns the line subscriptions of the members given, or all
// when members is nil.
func (h *Hub) lineWatches(members map[string]struct{}) []lineWatch {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []lineWatch
	for id, subs := range h.lines {
		for sub := range subs {
			var actor db.Actor
			if sub.viewer != nil {
				actor = sub.viewer.Actor()
			}
			if _, ok := members[actor.MemberID]; ok || members == nil {
				out = append(out, lineWatch{sub: sub, lineID: id, actor: actor, hold: sub.hold})
			}
		}
	}
	return out
}

// settle ends the subscriptions whose members may no longer follow their
// lines, with a FORBIDDEN error, and releases the others, unless a newer
// change held them again meanwhile: its own check will settle them.
func (h *Hub) settle(watches []lineWatch, standings []db.Standing) {
	h.mu.Lock()
	released := false
	for i, w := range watches {
		if _, ok := h.lines[w.lineID][w.sub]; !ok {
			continue
		}
		if !standings[i].Live {
			// Its socket is closing, which ends this; nothing more meanwhile.
			w.sub.held = true
			continue
		}
		if !standings[i].MayFollowLine {
			if end, ok := w.sub.ctx.Value(endKey{}).(func(*gqlerror.Error)); ok {
				end(forbidden(w.sub.ctx))
			}
			unsubscribe(h.lines, w.lineID, w.sub)
			continue
		}
		if w.sub.held && w.sub.hold == w.hold {
			w.sub.held = false
			h.dirtyLines[w.lineID] = struct{}{}
			released = true
		}
	}
	h.mu.Unlock()
	if released {
		h.kickLines()
	}
}

type endKey struct{}

// WithEndings prepares a websocket operation's context so that, should the
// hub end its subscription because its member lost the right to it, the
// client is told why: gqlgen sends the errors added here once the stream
// closes, as the subscription's error message.
func WithEndings(ctx context.Context) context.Context {
	return context.WithValue(ctx, endKey{}, func(err *gqlerror.Error) { transport.AddSubscriptionError(ctx, err) })
}

// forbidden is the error a subscription ends with when its member lost the
// right to it.
func forbidden(ctx context.Context) *gqlerror.Error {
	err := &gqlerror.Error{
		Message:    "you may no longer follow this line: only its captains, members signed up on it and coordinators can",
		Extensions: map[string]any{"code": string(db.CodeForbidden)},
	}
	if graphql.GetFieldContext(ctx) != nil {
		err.Path = graphql.GetPath(ctx)
	}
	return err
}
