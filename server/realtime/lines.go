package realtime

import (
	"context"
	"sync"
	"time"

	"github.com/picketline/picketline/db"
)

// lineTopic is the subscribers of one line in this process and the
// goroutine reading the line's events for them.
type lineTopic struct {
	hub    *Hub
	lineID string
	wakeC  chan struct{}

	mu   sync.Mutex
	subs map[*lineSub]struct{}
}

// lineSub is one subscription. next is the sequence number it must receive
// next: events are handed over strictly in order, so a subscriber sees each
// event once and never one out of turn, wherever the read came from.
type lineSub struct {
	ctx  context.Context
	ch   chan *db.LineEvent
	next int64
}

func (t *lineTopic) wake() {
	select {
	case t.wakeC <- struct{}{}:
	default:
	}
}

// LineEvents streams a line's events after sequence number after: first
// those stored, then live ones.
func (h *Hub) LineEvents(ctx context.Context, lineID string, after int64) <-chan *db.LineEvent {
	sub := &lineSub{ctx: ctx, ch: make(chan *db.LineEvent, SubscriberBuffer), next: after + 1}
	h.mu.Lock()
	t := h.lines[lineID]
	if t == nil {
		t = &lineTopic{hub: h, lineID: lineID, wakeC: make(chan struct{}, 1), subs: map[*lineSub]struct{}{}}
		h.lines[lineID] = t
		go t.run()
	}
	t.mu.Lock()
	t.subs[sub] = struct{}{}
	t.mu.Unlock()
	h.mu.Unlock()
	t.wake()
	// AfterFunc holds no goroutine while the subscription lives: thousands
	// of idle subscribers cost no stacks here.
	context.AfterFunc(ctx, func() { t.remove(sub) })
	return sub.ch
}

// remove ends a subscription; its channel closes so gqlgen stops reading.
func (t *lineTopic) remove(sub *lineSub) {
	t.mu.Lock()
	if _, ok := t.subs[sub]; ok {
		delete(t.subs, sub)
		close(sub.ch)
	}
	empty := len(t.subs) == 0
	t.mu.Unlock()
	if empty {
		t.wake() // let run notice and retire the topic
	}
}

// run reads and hands out the line's events each time it is woken, until
// the topic has no subscribers left.
func (t *lineTopic) run() {
	for range t.wakeC {
		if t.retireIfIdle() {
			return
		}
		t.deliver()
	}
}

func (t *lineTopic) retireIfIdle() bool {
	t.hub.mu.Lock()
	defer t.hub.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.subs) > 0 {
		return false
	}
	delete(t.hub.lines, t.lineID)
	return true
}

// deliver reads events from the oldest any subscriber still needs, page by
// page, and hands each subscriber the ones it is due.
func (t *lineTopic) deliver() {
	for {
		from, ok := t.oldestNeeded()
		if !ok {
			return
		}
		events, latest, err := t.hub.store.LineEventsAfter(context.Background(), t.lineID, from-1, pageSize)
		if err != nil {
			t.hub.log.Error("read line events", "line", t.lineID, "err", err)
			return
		}
		t.handOut(events, latest)
		if len(events) < pageSize {
			return
		}
	}
}

func (t *lineTopic) oldestNeeded() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var oldest int64
	for sub := range t.subs {
		if oldest == 0 || sub.next < oldest {
			oldest = sub.next
		}
	}
	return oldest, oldest > 0
}

func (t *lineTopic) handOut(events []db.LineEvent, latest int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for sub := range t.subs {
		t.handOutTo(sub, events, latest)
	}
}

func (t *lineTopic) handOutTo(sub *lineSub, events []db.LineEvent, latest int64) {
	if len(events) == 0 && sub.next <= latest || len(events) > 0 && events[0].Seq > sub.next {
		// The events this subscriber needs were purged: tell it to refetch,
		// then carry on after what it is told to refetch.
		resume := latest
		if len(events) > 0 {
			resume = events[0].Seq - 1
		}
		if !t.send(sub, &db.LineEvent{PicketLineID: t.lineID, Seq: resume, Kind: db.LineResyncRequired, OccurredAt: time.Now()}) {
			return
		}
	}
	for i := range events {
		if events[i].Seq == sub.next && !t.send(sub, &events[i]) {
			return
		}
	}
}

// send hands one event to a subscriber without ever blocking. A full
// buffer means the client cannot keep up: its connection is dropped so it
// resumes by cursor, and nobody else waits for it.
func (t *lineTopic) send(sub *lineSub, e *db.LineEvent) bool {
	select {
	case sub.ch <- e:
		sub.next = e.Seq + 1
		return true
	default:
		delete(t.subs, sub)
		close(sub.ch)
		drop(sub.ctx, "subscriber too slow")
		return false
	}
}
