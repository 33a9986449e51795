// Package realtime delivers events to websocket subscribers: a hub per
// process that listens on one PostgreSQL connection, reads new events from
// the event tables, and fans them out through bounded buffers; and the
// gorilla/websocket adapter for gqlgen's graphql-transport-ws transport.
package realtime

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/picketline/picketline/db"
)

// Tuning of the hub.
const (
	// SubscriberBuffer is how many events may wait for one subscriber. A
	// subscriber with more due (catching up after a reconnect) gets the rest
	// as it makes room; one that takes nothing for stallLimit is cut off and
	// resumes by cursor.
	SubscriberBuffer = 64
	stallLimit       = 5 * time.Second
	// retryDelay is how soon a subscriber whose buffer was full is offered
	// what it is still due.
	retryDelay = 20 * time.Millisecond
	// pageSize bounds one read of a line or a member from one point: no
	// subscriber can take more in one round than its buffer holds.
	pageSize = SubscriberBuffer
	// pollInterval re-reads every followed line and member now and then, in
	// case a wake-up was lost (a NOTIFY sent while the listener reconnected,
	// or by a replica that crashed between commit and notify).
	pollInterval = 10 * time.Second
)

// Viewer is the connection a subscription arrived on: its member's rights
// now, and a way to cut it off, so that a subscriber who cannot keep up
// reconnects and resumes by cursor instead of being waited for.
type Viewer interface {
	Actor() db.Actor
	Drop(reason string)
}

type viewerKey struct{}

// WithViewer returns ctx carrying the connection's Viewer.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

func viewerFrom(ctx context.Context) Viewer {
	v, _ := ctx.Value(viewerKey{}).(Viewer)
	return v
}

func drop(ctx context.Context, reason string) {
	if v := viewerFrom(ctx); v != nil {
		v.Drop(reason)
	}
}

// Hub fans events out to this process's subscribers.
type Hub struct {
	store *db.Store
	log   *slog.Logger
	// clock times the poll, the retries and the stall limit.
	clock db.Clock
	// pageSize bounds one read: the constant, which tests shrink to put a
	// subscriber several pages behind with a few events.
	pageSize int

	mu      sync.Mutex
	lines   map[string]map[*lineSub]struct{}
	members map[string]map[*memberSub]struct{}
	// linesDirty wakes the line dispatcher; dirtyLines says which lines
	// (allLinesDirty set means every followed line).
	linesDirty    chan struct{}
	dirtyLines    map[string]struct{}
	allLinesDirty bool
	// membersDirty wakes the member dispatcher; dirtyMembers says whom
	// (nil with allMembersDirty set means everyone).
	membersDirty    chan struct{}
	dirtyMembers    map[string]struct{}
	allMembersDirty bool
	// laterLines and laterMembers have subscribers whose buffers were full;
	// a timer (laterArmed) marks them dirty again after retryDelay.
	laterLines   map[string]struct{}
	laterMembers map[string]struct{}
	laterArmed   bool
	// revoked collects, during a round, the members shown an event that may
	// have ended their right to its line; onRevoked hears of them after.
	revoked   []string
	onRevoked func(memberIDs []string)
}

// NewHub returns a hub reading events from store, on the store's clock.
// Run must be running for it to deliver.
func NewHub(store *db.Store, clock db.Clock, log *slog.Logger) *Hub {
	return &Hub{
		store:        store,
		clock:        clock,
		log:          log,
		pageSize:     pageSize,
		laterLines:   map[string]struct{}{},
		laterMembers: map[string]struct{}{},
		lines:        map[string]map[*lineSub]struct{}{},
		members:      map[string]map[*memberSub]struct{}{},
		linesDirty:   make(chan struct{}, 1),
		dirtyLines:   map[string]struct{}{},
		membersDirty: make(chan struct{}, 1),
		dirtyMembers: map[string]struct{}{},
	}
}

// Run dispatches line and member events and polls until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	poll := h.clock.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.Chan():
			h.WakeAll()
		case <-h.linesDirty:
			h.dispatchLines(ctx)
		case <-h.membersDirty:
			h.dispatchMembers(ctx)
		}
	}
}

// WakeLines tells the hub that lines have new events.
func (h *Hub) WakeLines(lineIDs ...string) {
	h.mu.Lock()
	followed := false
	for _, id := range lineIDs {
		// Lines are followed under their ids as PostgreSQL prints them.
		id = strings.ToLower(id)
		if _, ok := h.lines[id]; ok {
			h.dirtyLines[id] = struct{}{}
			followed = true
		}
	}
	h.mu.Unlock()
	if followed {
		h.kickLines()
	}
}

// WakeMembers tells the hub that members have new events.
func (h *Hub) WakeMembers(memberIDs ...string) {
	h.mu.Lock()
	for _, id := range memberIDs {
		if _, ok := h.members[id]; ok {
			h.dirtyMembers[id] = struct{}{}
		}
	}
	h.mu.Unlock()
	h.kickMembers()
}

// WakeAll makes the hub re-read everything it follows.
func (h *Hub) WakeAll() {
	h.mu.Lock()
	h.allLinesDirty = true
	h.mu.Unlock()
	h.kickLines()
	h.WakeAllMembers()
}

// WakeAllMembers makes the hub re-read the events of every member it follows.
func (h *Hub) WakeAllMembers() {
	h.mu.Lock()
	h.allMembersDirty = true
	h.mu.Unlock()
	h.kickMembers()
}

func (h *Hub) kickLines() {
	select {
	case h.linesDirty <- struct{}{}:
	default:
	}
}

func (h *Hub) kickMembers() {
	select {
	case h.membersDirty <- struct{}{}:
	default:
	}
}

// offered is what became of an event offered to a subscriber.
type offered int

const (
	// taken: the event is in the subscriber's buffer.
	taken offered = iota
	// full: no room now; offer it again after retryDelay.
	full
	// stalled: no room and none made for the stall limit: the subscriber
	// was cut off.
	stalled
)

// offer hands e to a subscriber's buffer without ever blocking the hub.
// With no room, the subscriber is offered it again after retryDelay; one
// that has taken nothing for the stall limit is cut off (stalled).
func offer[E any](h *Hub, sub *subscription[E], e E) offered {
	select {
	case sub.ch <- e:
		sub.stalledSince = time.Time{}
		return taken
	default:
	}
	if h.stalled(sub.ctx, &sub.stalledSince) {
		return stalled
	}
	return full
}

// retryLater has the lines and members given read again after retryDelay,
// for subscribers that had no room for everything they were due. The
// caller holds h.mu.
func (h *Hub) retryLater(lineID, memberID string) {
	if lineID != "" {
		h.laterLines[lineID] = struct{}{}
	}
	if memberID != "" {
		h.laterMembers[memberID] = struct{}{}
	}
	if h.laterArmed {
		return
	}
	h.laterArmed = true
	h.clock.AfterFunc(retryDelay, func() {
		h.mu.Lock()
		for id := range h.laterLines {
			if _, ok := h.lines[id]; ok {
				h.dirtyLines[id] = struct{}{}
			}
		}
		for id := range h.laterMembers {
			if _, ok := h.members[id]; ok {
				h.dirtyMembers[id] = struct{}{}
			}
		}
		clear(h.laterLines)
		clear(h.laterMembers)
		h.laterArmed = false
		h.mu.Unlock()
		h.kickLines()
		h.kickMembers()
	})
}

// subscription is one subscriber's stream of a line's or a member's
// events. next is the sequence number it must receive next: events are
// handed over strictly in order, so a subscriber sees each event once and
// never one out of turn, wherever the read came from.
type subscription[E any] struct {
	ctx          context.Context
	ch           chan E
	next         int64
	stalledSince time.Time
	// viewer is the socket the subscription delivers to, nil for one made
	// without (the hub's own tests), which Authority ends at its first check.
	viewer Viewer
	// held is set while the viewer's rights are checked again: nothing is
	// handed over meanwhile. hold counts the holds, so that a check that
	// started before the latest change releases nothing.
	held bool
	hold uint64
}

// follow subscribes to the events of id (a line or a member) after sequence
// number after, marks id to be read and wakes its dispatcher with kick. The
// subscription ends with ctx; AfterFunc holds no goroutine meanwhile, so
// thousands of idle subscribers cost no stacks here.
func follow[E any](h *Hub, subs map[string]map[*subscription[E]]struct{}, dirty map[string]struct{}, kick func(), ctx context.Context, id string, after int64) <-chan E {
	sub := &subscription[E]{ctx: ctx, ch: make(chan E, SubscriberBuffer), next: after + 1, viewer: viewerFrom(ctx)}
	h.mu.Lock()
	if subs[id] == nil {
		subs[id] = map[*subscription[E]]struct{}{}
	}
	subs[id][sub] = struct{}{}
	dirty[id] = struct{}{}
	h.mu.Unlock()
	kick()
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		unsubscribe(subs, id, sub)
	})
	return sub.ch
}

// unsubscribe ends a subscription; its channel closes so gqlgen stops
// reading. The caller holds h.mu.
func unsubscribe[E any](subs map[string]map[*subscription[E]]struct{}, id string, sub *subscription[E]) {
	if _, ok := subs[id][sub]; !ok {
		return
	}
	delete(subs[id], sub)
	close(sub.ch)
	if len(subs[id]) == 0 {
		delete(subs, id)
	}
}

// takeDirty returns, for each marked line or member (every one followed
// when all is set), the distinct points to read it from: next-1 of each of
// its subscriptions with room in its buffer. A subscription with none is
// left to the retry that its full buffer scheduled, or cut off once it has
// taken nothing for the stall limit; reading from where it stands would
// hold back the others of its line. It clears the marks. The caller holds
// h.mu.
func takeDirty[E any](h *Hub, subs map[string]map[*subscription[E]]struct{}, dirty map[string]struct{}, all *bool, retry func(id string)) map[string][]int64 {
	points := map[string]map[int64]struct{}{}
	add := func(id string) {
		for sub := range subs[id] {
			if sub.held {
				// Read for it once its rights are settled.
				continue
			}
			if len(sub.ch) == cap(sub.ch) {
				if h.stalled(sub.ctx, &sub.stalledSince) {
					unsubscribe(subs, id, sub)
				} else {
					retry(id)
				}
				continue
			}
			if points[id] == nil {
				points[id] = map[int64]struct{}{}
			}
			points[id][sub.next-1] = struct{}{}
		}
	}
	if *all {
		for id := range subs {
			add(id)
		}
	} else {
		for id := range dirty {
			add(id)
		}
	}
	*all = false
	clear(dirty)
	reads := make(map[string][]int64, len(points))
	for id, set := range points {
		reads[id] = slices.Collect(maps.Keys(set))
	}
	return reads
}

// stalled reports whether a subscriber with no room has taken nothing for
// the stall limit, and if so cuts its connection off: it resumes by cursor.
func (h *Hub) stalled(ctx context.Context, since *time.Time) bool {
	now := h.clock.Now()
	if since.IsZero() {
		*since = now
	}
	if now.Sub(*since) < stallLimit {
		return false
	}
	drop(ctx, "subscriber too slow")
	return true
}
