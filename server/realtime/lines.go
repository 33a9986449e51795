package realtime

import (
	"context"
	"strings"
	"time"

	"github.com/picketline/picketline/db"
)

// lineSub is one subscription to a line's events.
type lineSub = subscription[*db.LineEvent]

// LineEvents streams a line's events after sequence number after: first
// those stored, then live ones.
func (h *Hub) LineEvents(ctx context.Context, lineID string, after int64) <-chan *db.LineEvent {
	// Wake-ups name lines as PostgreSQL prints uuids; a client may have
	// written this one in capitals.
	lineID = strings.ToLower(lineID)
	sub := &lineSub{ctx: ctx, ch: make(chan *db.LineEvent, SubscriberBuffer), next: after + 1}
	h.mu.Lock()
	subscribe(h.lines, h.dirtyLines, lineID, sub)
	h.mu.Unlock()
	h.kickLines()
	// AfterFunc holds no goroutine while the subscription lives: thousands
	// of idle subscribers cost no stacks here.
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		unsubscribe(h.lines, lineID, sub)
	})
	return sub.ch
}

// dispatchLines runs one round: it reads the new events of every woken line
// in one query, so thousands of events a second over a hundred lines cost a
// few reads, not one per line and wake-up, and hands each subscriber the
// ones it is due. One round per wake-up of Run lets member events and the
// poll take their turn under a steady stream of line events.
func (h *Hub) dispatchLines(ctx context.Context) {
	cursors := h.takeDirtyLines()
	if len(cursors) == 0 {
		return
	}
	pages, err := h.store.LineEventsAfter(ctx, cursors, h.pageSize)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Error("read line events", "lines", len(cursors), "err", err)
		}
		// Read these lines again with the next round that anything
		// starts, rather than only at the next poll.
		h.mu.Lock()
		for id := range cursors {
			h.dirtyLines[id] = struct{}{}
		}
		h.mu.Unlock()
		return
	}
	h.handOut(cursors, pages)
}

// handOut gives every subscriber of the lines read the events it is due,
// and marks the lines whose page was full to be read again.
func (h *Hub) handOut(cursors map[string]int64, pages map[string]db.LinePage) {
	h.mu.Lock()
	more := false
	for id, page := range pages {
		for sub := range h.lines[id] {
			h.handOutTo(id, sub, cursors[id], page)
		}
		if len(page.Events) == h.pageSize && h.lines[id] != nil {
			// More may wait: read the line again next round.
			h.dirtyLines[id] = struct{}{}
			more = true
		}
	}
	h.mu.Unlock()
	if more {
		h.kickLines()
	}
}

// takeDirtyLines returns the cursor of each line to read, and clears the
// marks.
func (h *Hub) takeDirtyLines() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return takeDirty(h.lines, h.dirtyLines, &h.allLinesDirty)
}

// handOutTo gives sub the events of page it is due; page holds the line's
// events after cursor. The caller holds h.mu.
func (h *Hub) handOutTo(lineID string, sub *lineSub, cursor int64, page db.LinePage) {
	if sub.next <= cursor {
		// It subscribed after the cursor was taken, from further back: this
		// page says nothing about the events it needs (a gap here is no
		// purge). Its subscription marked the line for the next round.
		return
	}
	events := page.Events
	if len(events) == 0 && sub.next <= page.Latest || len(events) > 0 && events[0].Seq > sub.next {
		// The events this subscriber needs were purged: tell it to refetch,
		// then carry on after what it is told to refetch.
		resume := page.Latest
		if len(events) > 0 {
			resume = events[0].Seq - 1
		}
		if !h.send(lineID, sub, &db.LineEvent{PicketLineID: lineID, Seq: resume, Kind: db.LineResyncRequired, OccurredAt: time.Now()}) {
			return
		}
	}
	for i := range events {
		if events[i].Seq == sub.next && !h.send(lineID, sub, &events[i]) {
			return
		}
	}
}

// send hands one event to a subscriber without ever blocking. With its
// buffer full, the subscriber gets the event on a later read; one that has
// taken nothing for the stall limit cannot keep up: its connection is
// dropped so it resumes by cursor, and nobody else waits for it. The caller
// holds h.mu.
func (h *Hub) send(lineID string, sub *lineSub, e *db.LineEvent) bool {
	switch offer(sub.ch, e, &sub.stalledSince, h.stallLimit) {
	case taken:
		sub.next = e.Seq + 1
		return true
	case full:
		h.retryLater(lineID, "")
	case stalled:
		unsubscribe(h.lines, lineID, sub)
		drop(sub.ctx, "subscriber too slow")
	}
	return false
}
