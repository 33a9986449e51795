package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// wsFanout subscribes FanoutSubs clients to one line and posts
// announcements on it, one at a time, measuring when each client gets it.
func (b *bench) wsFanout(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	n, rounds := b.opts.WS.FanoutSubs, b.opts.WS.FanoutRounds
	lines := []string{d.fanoutLine}
	seqs, err := b.lineSeqs(ctx, lines)
	if err != nil {
		return nil, err
	}
	base := seqs[0]
	// The bench is the line's only writer: announcement k gets base+k.
	sentAt := make([]atomic.Int64, rounds+2)
	answeredAt := make([]atomic.Int64, rounds+2)
	fromSend, fromAnswer := make([]*recorder, n), make([]*recorder, n)
	for i := range n {
		fromSend[i], fromAnswer[i] = newRecorder(), newRecorder()
	}
	p := newWSPool(b.server.URL, lines, b.opts.WS.Handshakes)
	defer p.close()
	p.onEvent = func(c *wsClient, ev wsEvent, at time.Time) {
		k := ev.Seq - base
		if ev.Kind != "ANNOUNCEMENT" || k < 2 || k >= int64(len(sentAt)) {
			return // k = 1 is the warm-up
		}
		fromSend[c.idx].ok(at.Sub(time.Unix(0, sentAt[k].Load())))
		fromAnswer[c.idx].ok(at.Sub(time.Unix(0, answeredAt[k].Load())))
	}
	took, err := b.connectAll(ctx, p, d.subs, n, lines)
	if err != nil {
		return nil, err
	}
	logf("ws-fanout: %d subscribed in %s", n, took.Round(time.Millisecond))
	coord := d.subs[0]
	const post = `mutation($l: ID!, $b: String!){ postAnnouncement(input:{picketLineId: $l, body: $b}){ id } }`
	waitAll := func(seq int64) (time.Duration, int) {
		start := time.Now()
		for time.Since(start) < 30*time.Second {
			got := 0
			for _, c := range p.clients {
				if c.lastSeq.Load() >= seq {
					got++
				}
			}
			if got == n {
				return time.Since(start), got
			}
			time.Sleep(5 * time.Millisecond)
		}
		got := 0
		for _, c := range p.clients {
			if c.lastSeq.Load() >= seq {
				got++
			}
		}
		return time.Since(start), got
	}
	var failures []string
	var makespans []string
	for k := 1; k <= rounds+1; k++ {
		sentAt[k].Store(time.Now().UnixNano())
		var out struct {
			PostAnnouncement struct{ ID string } `json:"postAnnouncement"`
		}
		code := b.api.post(ctx, coord.Token, body(post, map[string]any{"l": d.fanoutLine, "b": fmt.Sprintf("Fan-out %d", k)}), &out)
		answeredAt[k].Store(time.Now().UnixNano())
		if code != "" {
			return nil, fmt.Errorf("postAnnouncement: %s", code)
		}
		wait, got := waitAll(base + int64(k))
		if got < n {
			failures = append(failures, fmt.Sprintf("announcement %d reached %d of %d within 30 s", k, got, n))
		}
		if k > 1 {
			makespans = append(makespans, fmtDur(wait+time.Duration(answeredAt[k].Load()-sentAt[k].Load())))
		}
		time.Sleep(time.Second)
	}
	rs := merge("ws-fanout", fromSend, 0)
	ra := merge("ws-fanout/from-answer", fromAnswer, 0)
	rs.Notes = append(rs.Notes,
		fmt.Sprintf("%d subscribers of one line, %d announcements one at a time (after a warm-up); latency from just before sending postAnnouncement to the client reading the event", n, rounds),
		"last subscriber reached (from send) per announcement: "+strings.Join(makespans, ", "))
	ra.Notes = append(ra.Notes, "the same deliveries timed from the mutation's HTTP answer (commit precedes it)")
	rs.Notes = append(rs.Notes, poolNotes(p)...)
	rs.Notes = append(rs.Notes, failures...)
	sr := &scenarioReport{Name: "ws-fanout", Results: []Result{rs, ra}}
	sr.Targets = append(sr.Targets, target{What: "ws-fanout p99 from commit (from send)", Want: "< " + fmtDur(targetFanoutP99),
		Got: fmt.Sprintf("%s (%d deliveries of %d)", fmtDur(rs.P99), rs.Ops, n*rounds), Pass: rs.Ops == n*rounds && rs.P99 < targetFanoutP99})
	return sr, nil
}
