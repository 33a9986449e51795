package main

import (
	"context"
	"fmt"
	"time"
)

// wsRestart holds RestartConns subscribers, stops the server with SIGTERM,
// commits events on every line while it is down, starts it again on the
// same database and measures until every client is back and caught up.
func (b *bench) wsRestart(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	n := b.opts.WS.RestartConns
	lines := b.data.LineIDs
	p := newWSPool(b.server.URL, lines, b.opts.WS.Handshakes)
	defer p.close()
	took, err := b.connectAll(ctx, p, d.subs, n, lines)
	if err != nil {
		return nil, err
	}
	logf("ws-restart: %d subscribed in %s; stopping the server", n, took.Round(time.Millisecond))
	time.Sleep(2 * time.Second)

	t0 := time.Now()
	if err := b.server.Stop(); err != nil {
		logf("ws-restart: server stop: %v", err)
	}
	stopTook := time.Since(t0)
	// Events while the server is down: several per line, no server to
	// tell, so the clients must get them by resuming after their cursor.
	shifts := make([]string, len(lines))
	rows, err := b.pool.Query(ctx, `SELECT DISTINCT ON (picket_line_id) picket_line_id::text, id::text FROM shifts WHERE picket_line_id = ANY($1::uuid[]) ORDER BY picket_line_id, starts_at`, lines)
	if err != nil {
		return nil, err
	}
	byLine := map[string]string{}
	for rows.Next() {
		var l, s string
		if err := rows.Scan(&l, &s); err != nil {
			return nil, err
		}
		byLine[l] = s
	}
	rows.Close()
	all := make([]int, len(lines))
	for i, l := range lines {
		shifts[i], all[i] = byLine[l], i
	}
	w, err := newEventWriter(b, ctx, lines, shifts, b.opts.WS.RestartEvents)
	if err != nil {
		return nil, err
	}
	for range b.opts.WS.RestartEvents {
		if err := w.write(ctx, all); err != nil {
			return nil, err
		}
	}
	targets, err := b.lineSeqs(ctx, lines)
	if err != nil {
		return nil, err
	}
	downEvents := b.opts.WS.RestartEvents * len(lines)
	logf("ws-restart: server stopped in %s, %d events committed while down; starting it again", stopTook.Round(time.Millisecond), downEvents)

	tStart := time.Now()
	srv, err := b.startAnotherServer(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	tReady := time.Now()
	b.swapServer(srv)
	p.setURL(srv.URL)
	var backAt, caughtAt time.Time
	caught := 0
	for time.Since(tStart) < 90*time.Second && ctx.Err() == nil {
		caught = 0
		for _, c := range p.clients {
			if c.lastSeq.Load() >= targets[c.line] {
				caught++
			}
		}
		now := time.Now()
		if backAt.IsZero() && p.live.Load() >= int64(n) {
			backAt = now
		}
		if caught == n && caughtAt.IsZero() {
			caughtAt = now
		}
		if !backAt.IsZero() && !caughtAt.IsZero() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	since := func(t, from time.Time) string {
		if t.IsZero() {
			return "not within 90 s"
		}
		return t.Sub(from).Round(time.Millisecond).String()
	}
	end := caughtAt
	if backAt.After(end) {
		end = backAt
	}
	total := time.Duration(0)
	if !caughtAt.IsZero() && !backAt.IsZero() {
		total = end.Sub(tStart)
	}
	res := Result{Name: "ws-restart", Ops: caught, ElapsedS: total.Seconds()}
	if total > 0 {
		res.Rate = float64(n) / total.Seconds()
	}
	res.P50, res.P99, res.Max = total, total, total
	res.P50ms, res.P99ms, res.MaxMs = ms(total), ms(total), ms(total)
	res.Notes = append(res.Notes,
		fmt.Sprintf("%d subscribers over %d lines; SIGTERM to exit %s; %d events committed while down", n, len(lines), stopTook.Round(time.Millisecond), downEvents),
		fmt.Sprintf("new server ready %s after its start; all %d back (subscribed) %s and all caught up %s after the start (%s and %s after ready); p50/p99/max columns = start → all back and caught up",
			tReady.Sub(tStart).Round(time.Millisecond), n, since(backAt, tStart), since(caughtAt, tStart), since(backAt, tReady), since(caughtAt, tReady)),
		fmt.Sprintf("%d of %d caught up at the end; the new server listens on a new port and clients redial it once it is ready (their backoff: jittered, 100 ms doubling to 1 s)", caught, n))
	res.Notes = append(res.Notes, poolNotes(p)...)
	sr := &scenarioReport{Name: "ws-restart", Results: []Result{res}, serverChanged: true}
	sr.Targets = append(sr.Targets, target{What: "ws-restart: all back and caught up after start", Want: "< " + targetRestart.String(),
		Got: fmt.Sprintf("%s (%d of %d)", since(end, tStart), caught, n), Pass: total > 0 && total < targetRestart && p.gaps.Load() == 0})
	return sr, nil
}
