package realtime

import (
	"context"
	"slices"
	"strings"

	"github.com/picketline/picketline/db"
)

// lineSub is one subscription to a line's events.
type lineSub = subscription[*db.LineEvent]

// LineEvents streams a line's events after sequence number after: first
// those stored, then live ones.
func (h *Hub) LineEvents(ctx context.Context, lineID string, after int64) <-chan *db.LineEvent {
	// Wake-ups name lines as PostgreSQL prints uuids; a client may have
	// written this one in capitals.
	return follow(h, h.lines, h.dirtyLines, h.kickLines, ctx, strings.ToLower(lineID), after)
}

// dispatchLines runs one round: it reads the new events of every woken line
// in one query, so thousands of events a second over a hundred lines cost a
// few reads, not one per line and wake-up, and hands each subscriber the
// ones it is due. One round per wake-up of Run lets member events and the
// poll take their turn under a steady stream of line events.
func (h *Hub) dispatchLines(ctx context.Context) {
	reads := h.takeDirtyLines()
	if len(reads) == 0 {
		return
	}
	pages, err := h.store.LineEventsAfter(ctx, db.System, reads, h.pageSize)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Error("read line events", "reads", len(reads), "err", err)
		}
		// Read these lines again with the next round that anything
		// starts, rather than only at the next poll.
		h.mu.Lock()
		for _, r := range reads {
			h.dirtyLines[r.LineID] = struct{}{}
		}
		h.mu.Unlock()
		return
	}
	h.handOut(pages)
}

// handOut gives every subscriber the page read from where it stands, and
// marks the lines with a full page to be read again.
func (h *Hub) handOut(pages map[db.LineRead]db.LinePage) {
	h.mu.Lock()
	read := map[string]bool{} // line: a page of it was full
	for r, page := range pages {
		read[r.LineID] = read[r.LineID] || len(page.Events) == h.pageSize
	}
	more := false
	for id, full := range read {
		for sub := range h.lines[id] {
			// A subscriber that joined after the read was planned has no
			// page here: its subscription marked the line for next round.
			if page, ok := pages[db.LineRead{LineID: id, After: sub.next - 1}]; ok {
				h.handOutTo(id, sub, page)
			}
		}
		if full && h.lines[id] != nil {
			// More may wait: read the line again next round.
			h.dirtyLines[id] = struct{}{}
			more = true
		}
	}
	revoked := h.revoked
	h.revoked = nil
	h.mu.Unlock()
	if len(revoked) > 0 && h.onRevoked != nil {
		h.onRevoked(revoked)
	}
	if more {
		h.kickLines()
	}
}

// takeDirtyLines returns the reads to make: each woken line from where each
// of its subscribers with room stands. It clears the marks.
func (h *Hub) takeDirtyLines() []db.LineRead {
	h.mu.Lock()
	defer h.mu.Unlock()
	var reads []db.LineRead
	for id, afters := range takeDirty(h, h.lines, h.dirtyLines, &h.allLinesDirty, func(id string) { h.retryLater(id, "") }) {
		for _, after := range afters {
			reads = append(reads, db.LineRead{LineID: id, After: after})
		}
	}
	return reads
}

// handOutTo gives sub the events of a page read from where it stands. The
// caller holds h.mu.
func (h *Hub) handOutTo(lineID string, sub *lineSub, page db.LinePage) {
	if sub.held {
		// Held after this page was planned: its rights come first.
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
		if !h.send(lineID, sub, &db.LineEvent{PicketLineID: lineID, Seq: resume, Kind: db.LineResyncRequired, OccurredAt: h.clock.Now()}) {
			return
		}
	}
	for i := range events {
		if events[i].Seq == sub.next && !h.send(lineID, sub, &events[i]) {
			return
		}
		if revokes(&events[i], sub) {
			// Its member saw the change; what follows waits for their rights.
			sub.held = true
			sub.hold++
			h.revoked = append(h.revoked, sub.viewer.Actor().MemberID)
			return
		}
	}
}

// revokes reports whether e may have ended the right of sub's member to
// follow the line.
func revokes(e *db.LineEvent, sub *lineSub) bool {
	return len(e.Revokes) > 0 && sub.viewer != nil && slices.Contains(e.Revokes, sub.viewer.Actor().MemberID)
}

// send hands one event to a subscriber without ever blocking. With its
// buffer full, the subscriber gets the event on a later read; one that has
// taken nothing for the stall limit cannot keep up: its connection is
// dropped so it resumes by cursor, and nobody else waits for it. The caller
// holds h.mu.
func (h *Hub) send(lineID string, sub *lineSub, e *db.LineEvent) bool {
	switch offer(h, sub, e) {
	case taken:
		sub.next = e.Seq + 1
		return true
	case full:
		h.retryLater(lineID, "")
	case stalled:
		unsubscribe(h.lines, lineID, sub)
	}
	return false
}
