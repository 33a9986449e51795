// Package realtime delivers events to websocket subscribers: a hub per
// process that listens on one PostgreSQL connection, reads new events from
// the event tables, and fans them out through bounded buffers; and the
// gorilla/websocket adapter for gqlgen's graphql-transport-ws transport.
package realtime

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/picketline/picketline/db"
)

// Tuning of the hub.
const (
	// SubscriberBuffer is how many events may wait for one subscriber.
	// A subscriber that lets it fill is cut off: it resumes by cursor.
	SubscriberBuffer = 256
	// pageSize bounds one read of an event table.
	pageSize = 500
	// pollInterval re-reads every followed line and member now and then, in
	// case a wake-up was lost (a NOTIFY sent while the listener reconnected,
	// or by a replica that crashed between commit and notify).
	pollInterval = 10 * time.Second
)

// Dropper closes the connection a subscription arrived on, so that a
// subscriber who cannot keep up reconnects and resumes by cursor instead of
// being waited for.
type Dropper interface {
	Drop(reason string)
}

type dropperKey struct{}

// WithDropper returns ctx carrying the connection's Dropper.
func WithDropper(ctx context.Context, d Dropper) context.Context {
	return context.WithValue(ctx, dropperKey{}, d)
}

func drop(ctx context.Context, reason string) {
	if d, ok := ctx.Value(dropperKey{}).(Dropper); ok {
		d.Drop(reason)
	}
}

// Hub fans events out to this process's subscribers.
type Hub struct {
	store *db.Store
	log   *slog.Logger

	mu      sync.Mutex
	lines   map[string]*lineTopic
	members map[string]map[*memberSub]struct{}
	// membersDirty wakes the member dispatcher; dirtyMembers says whom
	// (nil with allMembersDirty set means everyone).
	membersDirty    chan struct{}
	dirtyMembers    map[string]struct{}
	allMembersDirty bool
}

// NewHub returns a hub reading events from store. Run must be running for
// it to deliver.
func NewHub(store *db.Store, log *slog.Logger) *Hub {
	return &Hub{
		store:        store,
		log:          log,
		lines:        map[string]*lineTopic{},
		members:      map[string]map[*memberSub]struct{}{},
		membersDirty: make(chan struct{}, 1),
		dirtyMembers: map[string]struct{}{},
	}
}

// Run dispatches member events and polls until ctx ends. Line topics run
// their own goroutines while they have subscribers.
func (h *Hub) Run(ctx context.Context) {
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			h.WakeAll()
		case <-h.membersDirty:
			h.dispatchMembers(ctx)
		}
	}
}

// WakeLines tells the hub that lines have new events.
func (h *Hub) WakeLines(lineIDs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range lineIDs {
		if t := h.lines[id]; t != nil {
			t.wake()
		}
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
	for _, t := range h.lines {
		t.wake()
	}
	h.mu.Unlock()
	h.WakeAllMembers()
}

// WakeAllMembers makes the hub re-read the events of every member it follows.
func (h *Hub) WakeAllMembers() {
	h.mu.Lock()
	h.allMembersDirty = true
	h.mu.Unlock()
	h.kickMembers()
}

func (h *Hub) kickMembers() {
	select {
	case h.membersDirty <- struct{}{}:
	default:
	}
}
