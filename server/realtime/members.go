package realtime

import (
	"context"
	"slices"

	"github.com/picketline/picketline/db"
)

// memberSub is one subscription to a member's own events.
type memberSub = subscription[*db.MemberEvent]

// MemberEvents streams a member's events after sequence number after.
func (h *Hub) MemberEvents(ctx context.Context, memberID string, after int64) <-chan *db.MemberEvent {
	return follow(h, h.members, h.dirtyMembers, h.kickMembers, ctx, memberID, after)
}

// dispatchMembers runs one round: it reads the new events of every woken
// member in one query, at most a page each, so an urgent announcement to
// thousands costs a few reads, not thousands. Members whose page was full
// are read again next round; one round per wake-up of Run lets line events
// take their turn.
func (h *Hub) dispatchMembers(ctx context.Context) {
	cursors := h.takeDirtyMembers()
	if len(cursors) == 0 {
		return
	}
	events, err := h.store.MemberEventsAfter(ctx, db.System, cursors, h.pageSize)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Error("read member events", "err", err)
		}
		h.mu.Lock()
		for id := range cursors {
			h.dirtyMembers[id] = struct{}{}
		}
		h.mu.Unlock()
		return
	}
	h.mu.Lock()
	// Subscribers with no room left this round get the rest on a retry.
	waiting := map[*memberSub]bool{}
	read := map[string]int{}
	for i := range events {
		e := &events[i]
		read[e.MemberID]++
		for sub := range h.members[e.MemberID] {
			if e.Seq < sub.next || waiting[sub] {
				continue
			}
			// A gap means the events in it were purged; personal events
			// carry no state to refetch, so carry on from here.
			sub.next = e.Seq
			switch offer(h, sub, e) {
			case taken:
				sub.next++
			case full:
				waiting[sub] = true
				h.retryLater("", e.MemberID)
			case stalled:
				unsubscribe(h.members, e.MemberID, sub)
			}
		}
	}
	more := false
	for id, n := range read {
		if _, ok := h.members[id]; ok && n == h.pageSize {
			// More may wait: read this member again next round.
			h.dirtyMembers[id] = struct{}{}
			more = true
		}
	}
	h.mu.Unlock()
	if more {
		h.kickMembers()
	}
}

// takeDirtyMembers returns the cursor of each member to read (the earliest
// of its subscribers with room: a member has few), and clears the marks.
func (h *Hub) takeDirtyMembers() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	cursors := map[string]int64{}
	for id, afters := range takeDirty(h, h.members, h.dirtyMembers, &h.allMembersDirty, func(id string) { h.retryLater("", id) }) {
		cursors[id] = slices.Min(afters)
	}
	return cursors
}
