package realtime

import (
	"context"
	"time"

	"github.com/picketline/picketline/db"
)

// memberSub is one subscription to a member's own events; next works as
// for lines.
type memberSub struct {
	ctx          context.Context
	ch           chan *db.MemberEvent
	next         int64
	stalledSince time.Time
}

// MemberEvents streams a member's events after sequence number after.
func (h *Hub) MemberEvents(ctx context.Context, memberID string, after int64) <-chan *db.MemberEvent {
	sub := &memberSub{ctx: ctx, ch: make(chan *db.MemberEvent, SubscriberBuffer), next: after + 1}
	h.mu.Lock()
	subs := h.members[memberID]
	if subs == nil {
		subs = map[*memberSub]struct{}{}
		h.members[memberID] = subs
	}
	subs[sub] = struct{}{}
	h.dirtyMembers[memberID] = struct{}{}
	h.mu.Unlock()
	h.kickMembers()
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.removeMemberSub(memberID, sub)
	})
	return sub.ch
}

// removeMemberSub ends a subscription; the caller holds h.mu.
func (h *Hub) removeMemberSub(memberID string, sub *memberSub) {
	subs := h.members[memberID]
	if _, ok := subs[sub]; !ok {
		return
	}
	delete(subs, sub)
	close(sub.ch)
	if len(subs) == 0 {
		delete(h.members, memberID)
	}
}

// dispatchMembers reads the new events of every woken member in one query
// per page, so an urgent announcement to thousands costs a few reads, not
// thousands.
func (h *Hub) dispatchMembers(ctx context.Context) {
	for {
		cursors := h.takeDirtyMembers()
		if len(cursors) == 0 {
			return
		}
		events, err := h.store.MemberEventsAfter(ctx, cursors, h.pageSize)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Error("read member events", "err", err)
			}
			return
		}
		h.mu.Lock()
		// Subscribers with no room left this round get the rest on a retry.
		waiting := map[*memberSub]bool{}
		for i := range events {
			e := &events[i]
			for sub := range h.members[e.MemberID] {
				if e.Seq < sub.next || waiting[sub] {
					continue
				}
				// A gap means the events in it were purged; personal events
				// carry no state to refetch, so carry on from here.
				sub.next = e.Seq
				switch offer(sub.ch, e, &sub.stalledSince, h.stallLimit) {
				case taken:
					sub.next++
				case full:
					waiting[sub] = true
					h.retryLater("", e.MemberID)
				case stalled:
					h.removeMemberSub(e.MemberID, sub)
					drop(sub.ctx, "subscriber too slow")
				}
			}
		}
		if len(events) == h.pageSize {
			// More may wait: read those members again.
			for i := range events {
				if _, ok := h.members[events[i].MemberID]; ok {
					h.dirtyMembers[events[i].MemberID] = struct{}{}
				}
			}
		}
		h.mu.Unlock()
	}
}

// takeDirtyMembers returns the cursor (the lowest next-1 of its
// subscriptions) of each member to read, and clears the marks.
func (h *Hub) takeDirtyMembers() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	cursors := map[string]int64{}
	add := func(id string) {
		for sub := range h.members[id] {
			if c, ok := cursors[id]; !ok || sub.next-1 < c {
				cursors[id] = sub.next - 1
			}
		}
	}
	if h.allMembersDirty {
		for id := range h.members {
			add(id)
		}
	} else {
		for id := range h.dirtyMembers {
			add(id)
		}
	}
	h.allMembersDirty = false
	clear(h.dirtyMembers)
	return cursors
}
