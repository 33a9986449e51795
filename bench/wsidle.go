package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// wsIdle holds IdleConns subscribers spread over the seeded lines and
// measures the server's memory per connection and its idle CPU.
func (b *bench) wsIdle(ctx context.Context) (*scenarioReport, error) {
	d, err := b.wsSeed(ctx)
	if err != nil {
		return nil, err
	}
	n := b.opts.WS.IdleConns
	pid := b.server.PID()
	time.Sleep(2 * time.Second)
	rssBefore := rssKB(pid)
	benchBefore := rssKB(os.Getpid())
	p := newWSPool(b.server.URL, b.data.LineIDs, b.opts.WS.Handshakes)
	defer p.close()
	took, err := b.connectAll(ctx, p, d.subs, n, b.data.LineIDs)
	if err != nil {
		logf("ws-idle: %v", err)
	}
	held := p.live.Load()
	logf("ws-idle: %d subscribed in %s; settling 5 s", held, took.Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	rssAfter := rssKB(pid)
	perConn := (rssAfter - rssBefore) / float64(max(held, 1))
	logf("ws-idle: server RSS %.0f → %.0f kB (%.1f kB per connection); measuring idle CPU for %s", rssBefore, rssAfter, perConn, b.opts.WS.IdleWindow)
	c0, s0, t0 := cpuOf(strconv.Itoa(pid)), cpuOf("self"), time.Now()
	time.Sleep(b.opts.WS.IdleWindow)
	wall := time.Since(t0).Seconds()
	idleCPU := (cpuOf(strconv.Itoa(pid)) - c0) / wall
	benchCPU := (cpuOf("self") - s0) / wall
	stillLive := p.live.Load()
	rssEnd := rssKB(pid)

	res := Result{Name: "ws-idle", Ops: int(held), ElapsedS: took.Seconds(), Rate: float64(held) / took.Seconds()}
	res.Notes = append(res.Notes,
		fmt.Sprintf("%d of %d subscribers held (%d still live after the idle window), connected in %s (ops/s = connections per second)", held, n, stillLive, took.Round(time.Millisecond)),
		fmt.Sprintf("server VmRSS %.0f MB before, %.0f MB 5 s after the last subscribe, %.0f MB after the idle window: %.1f kB per connection", rssBefore/1024, rssAfter/1024, rssEnd/1024, perConn),
		fmt.Sprintf("idle over %s: server %.1f%% of one core, bench %.1f%%; bench VmRSS %.0f → %.0f MB", b.opts.WS.IdleWindow, idleCPU*100, benchCPU*100, benchBefore/1024, rssKB(os.Getpid())/1024))
	res.Notes = append(res.Notes, poolNotes(p)...)
	sr := &scenarioReport{Name: "ws-idle", Results: []Result{res}}
	sr.Targets = append(sr.Targets,
		target{What: "ws-idle subscribers held", Want: fmt.Sprintf("%d", n), Got: fmt.Sprintf("%d", held), Pass: held >= int64(n) && stillLive >= int64(n)},
		target{What: "ws-idle server memory per connection", Want: fmt.Sprintf("≤ %.0f KB", targetIdlePerConnKB), Got: fmt.Sprintf("%.1f KB", perConn), Pass: held > 0 && perConn <= targetIdlePerConnKB},
		target{What: "ws-idle server CPU when idle", Want: fmt.Sprintf("< %.0f%% of a core", targetIdleCPU*100), Got: fmt.Sprintf("%.1f%%", idleCPU*100), Pass: idleCPU < targetIdleCPU})
	return sr, nil
}
