package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// wsEvents spreads EventsRate events/s over EventsLines lines with
// EventsSubs subscribers each, for -duration.
func (b *bench) wsEvents(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	o := b.opts.WS
	nl := len(d.eventLines)
	n := nl * o.EventsSubs
	perLine := int(o.EventsRate*b.opts.Duration.Seconds()/float64(nl)) + 10
	// Writers own disjoint lines; each sends one statement per tick with
	// one event on each of its lines.
	const writers = 2
	w, err := newEventWriter(b, ctx, d.eventLines, d.eventShifts, perLine)
	if err != nil {
		return nil, err
	}
	fromSend, fromDone := make([]*recorder, n), make([]*recorder, n)
	for i := range n {
		fromSend[i], fromDone[i] = newRecorder(), newRecorder()
	}
	p := newWSPool(b.server.URL, d.eventLines, o.Handshakes)
	defer p.close()
	p.onEvent = func(c *wsClient, ev wsEvent, at time.Time) {
		k := ev.Seq - w.base[c.line]
		if k < 1 || k >= int64(len(w.sentAt[c.line])) {
			return
		}
		fromSend[c.idx].ok(at.Sub(time.Unix(0, w.sentAt[c.line][k].Load())))
		if dn := w.doneAt[c.line][k].Load(); dn != 0 {
			fromDone[c.idx].ok(at.Sub(time.Unix(0, dn)))
		} else {
			fromDone[c.idx].ok(0) // delivered before the bench read the answer
		}
	}
	// connectAll spreads client i over line i % nl from the same counters.
	seqs := w.base
	start := time.Now()
	for i := range n {
		p.add(ctx, d.subs[i].Token, i%nl, seqs[i%nl])
	}
	if err := p.waitLive(ctx, n, 2*time.Minute); err != nil {
		return nil, err
	}
	logf("ws-events: %d subscribed in %s; writing %.0f events/s over %d lines for %s", n, time.Since(start).Round(time.Millisecond), o.EventsRate, nl, b.opts.Duration)
	time.Sleep(time.Second)

	var wg sync.WaitGroup
	var written atomic.Int64
	var writeErrs atomic.Int64
	var lateTicks atomic.Int64
	t0 := time.Now()
	deadline := t0.Add(b.opts.Duration)
	for g := range writers {
		var mine []int
		for l := g; l < nl; l += writers {
			mine = append(mine, l)
		}
		interval := time.Duration(float64(len(mine)) / (o.EventsRate / writers) * float64(time.Second))
		wg.Go(func() {
			next := t0.Add(time.Duration(g) * interval / writers)
			for ctx.Err() == nil {
				if wait := time.Until(next); wait > 0 {
					time.Sleep(wait)
				} else if wait < -interval {
					lateTicks.Add(1)
				}
				if !time.Now().Before(deadline) {
					return
				}
				next = next.Add(interval)
				if err := w.write(ctx, mine); err != nil {
					writeErrs.Add(1)
					logf("ws-events: write: %v", err)
					continue
				}
				written.Add(int64(len(mine)))
			}
		})
	}
	wg.Wait()
	wrote := time.Since(t0)
	// Wait for the deliveries to finish.
	finals := make([]int64, nl)
	for l := range nl {
		finals[l] = w.base[l] + w.next[l]
	}
	waitStart := time.Now()
	missing := 0
	for time.Since(waitStart) < 30*time.Second {
		missing = 0
		for _, c := range p.clients {
			if c.lastSeq.Load() < finals[c.line] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rate := float64(written.Load()) / wrote.Seconds()
	rs := merge("ws-events", fromSend, wrote)
	rd := merge("ws-events/from-commit", fromDone, wrote)
	rs.Notes = append(rs.Notes,
		fmt.Sprintf("%d events committed in %s (%.0f events/s of %.0f asked; %d statements behind schedule, %d failed) over %d lines, %d subscribers per line: %d deliveries expected",
			written.Load(), wrote.Round(time.Millisecond), rate, o.EventsRate, lateTicks.Load(), writeErrs.Load(), nl, o.EventsSubs, written.Load()*int64(o.EventsSubs)),
		"events written by SQL (one statement per tick per writer: lock the lines' counters, insert the events, pg_notify, autocommit) by 2 writers; latency from just before sending that statement to the client reading the event; ops/s = deliveries/s",
		fmt.Sprintf("%d subscribers still short of the last event 30 s after the writing stopped", missing))
	rd.Notes = append(rd.Notes, "the same deliveries timed from the statement's answer (commit precedes it)")
	rs.Notes = append(rs.Notes, poolNotes(p)...)
	sr := &scenarioReport{Name: "ws-events", Results: []Result{rs, rd}}
	sr.Targets = append(sr.Targets,
		target{What: "ws-events rate written", Want: fmt.Sprintf("%.0f events/s", o.EventsRate), Got: fmt.Sprintf("%.0f events/s", rate), Pass: rate >= 0.95*o.EventsRate},
		target{What: "ws-events p99 from commit (from send)", Want: "< " + fmtDur(targetEventsP99),
			Got: fmt.Sprintf("%s (%d of %d deliveries)", fmtDur(rs.P99), rs.Ops, written.Load()*int64(o.EventsSubs)), Pass: missing == 0 && rs.P99 < targetEventsP99})
	return sr, nil
}
