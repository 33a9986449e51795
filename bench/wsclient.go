package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/picketline/picketline/db"
)

// lineEventsSub is the subscription every websocket client holds.
const lineEventsSub = `subscription($l: ID!, $after: String){ picketLineEvents(picketLineId: $l, after: $after){ cursor seq kind } }`

// wsEvent is one picketLineEvents message as a client decodes it.
type wsEvent struct {
	Cursor string `json:"cursor"`
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"`
}

// wsClient is one subscriber: one websocket, one subscription, one
// goroutine that dials, reads, answers pings and reconnects.
type wsClient struct {
	idx   int
	token string
	line  int // index into the pool's lines
	// cursor is the last cursor received (or the starting one); only the
	// client's goroutine touches it while it runs.
	cursor string
	// lastSeq is the last sequence number received, read by the scenario.
	lastSeq atomic.Int64
	rec     *recorder

	mu   sync.Mutex
	conn *websocket.Conn
}

// wsPool runs many wsClients against the server and counts what happens.
type wsPool struct {
	lines   []string // line ids
	url     atomic.Pointer[string]
	dialer  *websocket.Dialer
	clients []*wsClient
	// handshake bounds the dials and inits in flight, so the bench does
	// not starve the server it measures of CPU while connecting.
	handshake chan struct{}
	// onEvent is called by a client's goroutine for every event it gets.
	onEvent func(c *wsClient, ev wsEvent, at time.Time)

	stopping   atomic.Bool
	live       atomic.Int64 // clients subscribed right now
	subscribed atomic.Int64 // successful subscribes in all
	drops      atomic.Int64 // connections lost while not stopping
	dialErrs   atomic.Int64
	gaps       atomic.Int64 // events that skipped a sequence number
	dups       atomic.Int64 // events at or before the last one seen
	errMu      sync.Mutex
	errs       map[string]int
	wg         sync.WaitGroup
}

func newWSPool(baseURL string, lines []string, handshakes int) *wsPool {
	p := &wsPool{
		lines: lines,
		dialer: &websocket.Dialer{
			ReadBufferSize:   256,
			WriteBufferSize:  256,
			WriteBufferPool:  &sync.Pool{},
			Subprotocols:     []string{"graphql-transport-ws"},
			HandshakeTimeout: 15 * time.Second,
		},
		handshake: make(chan struct{}, handshakes),
		errs:      map[string]int{},
	}
	p.setURL(baseURL)
	return p
}

// setURL points the clients' next dials at a server.
func (p *wsPool) setURL(base string) {
	u := "ws" + strings.TrimPrefix(base, "http") + "/graphql"
	p.url.Store(&u)
}

func (p *wsPool) noteErr(what string) {
	p.errMu.Lock()
	p.errs[what]++
	p.errMu.Unlock()
}

// add starts a client following line (an index into p.lines) after the
// line's sequence number from.
func (p *wsPool) add(ctx context.Context, token string, line int, from int64) *wsClient {
	c := &wsClient{idx: len(p.clients), token: token, line: line, cursor: db.LineCursor(from), rec: newRecorder()}
	c.lastSeq.Store(from)
	p.clients = append(p.clients, c)
	p.wg.Add(1)
	go p.run(ctx, c)
	return c
}

// waitLive waits until n clients are subscribed at once, or timeout.
func (p *wsPool) waitLive(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for p.live.Load() < int64(n) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d websocket clients subscribed after %s (errors: %s)", p.live.Load(), n, timeout, p.errSummary())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func (p *wsPool) errSummary() string {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if len(p.errs) == 0 {
		return "none"
	}
	return errorSummary(p.errs)
}

// close stops every client and waits for their goroutines.
func (p *wsPool) close() {
	p.stopping.Store(true)
	for _, c := range p.clients {
		c.mu.Lock()
		if c.conn != nil {
			c.conn.Close()
		}
		c.mu.Unlock()
	}
	p.wg.Wait()
}

// run is a client's only goroutine: connect, subscribe after the last
// cursor, read until the connection ends, and reconnect with jittered
// backoff until the pool stops.
func (p *wsPool) run(ctx context.Context, c *wsClient) {
	defer p.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(c.idx)))
	backoff := 100 * time.Millisecond
	for !p.stopping.Load() && ctx.Err() == nil {
		conn, err := p.connect(ctx, c)
		if err != nil {
			if p.stopping.Load() || ctx.Err() != nil {
				return
			}
			p.dialErrs.Add(1)
			p.noteErr(err.Error())
			time.Sleep(backoff/2 + time.Duration(rng.Int64N(int64(backoff))))
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		p.live.Add(1)
		p.subscribed.Add(1)
		err = p.read(c, conn)
		p.live.Add(-1)
		conn.Close()
		if p.stopping.Load() || ctx.Err() != nil {
			return
		}
		p.drops.Add(1)
		p.noteErr("dropped: " + err.Error())
		time.Sleep(time.Duration(rng.Int64N(int64(250 * time.Millisecond))))
	}
}

type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// connect dials, initialises and subscribes, holding a handshake slot.
func (p *wsPool) connect(ctx context.Context, c *wsClient) (*websocket.Conn, error) {
	select {
	case p.handshake <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.handshake }()
	conn, resp, err := p.dialer.DialContext(ctx, *p.url.Load(), http.Header{})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: HTTP %d", resp.StatusCode)
		}
		return nil, errors.New("dial: " + shortErr(err))
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	if p.stopping.Load() {
		conn.Close()
		return nil, errors.New("stopping")
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	initMsg, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]string{"authorization": "Bearer " + c.token}})
	if err := conn.WriteMessage(websocket.TextMessage, initMsg); err != nil {
		conn.Close()
		return nil, errors.New("init: " + shortErr(err))
	}
	for {
		var m wsMsg
		if err := conn.ReadJSON(&m); err != nil {
			conn.Close()
			return nil, errors.New("ack: " + shortErr(err))
		}
		if m.Type == "ping" {
			conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
			continue
		}
		if m.Type != "connection_ack" {
			conn.Close()
			return nil, errors.New("ack: got " + m.Type)
		}
		break
	}
	vars := map[string]any{"l": p.lines[c.line]}
	if c.cursor != "" {
		vars["after"] = c.cursor
	}
	sub, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": lineEventsSub, "variables": vars}})
	if err := conn.WriteMessage(websocket.TextMessage, sub); err != nil {
		conn.Close()
		return nil, errors.New("subscribe: " + shortErr(err))
	}
	conn.SetReadDeadline(time.Time{})
	return conn, nil
}

// read handles messages until the connection fails.
func (p *wsPool) read(c *wsClient, conn *websocket.Conn) error {
	for {
		_, raw, err := conn.ReadMessage()
		at := time.Now()
		if err != nil {
			return errors.New(shortErr(err))
		}
		var m wsMsg
		if err := json.Unmarshal(raw, &m); err != nil {
			return errors.New("bad message")
		}
		switch m.Type {
		case "ping":
			if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`)); err != nil {
				return errors.New("pong: " + shortErr(err))
			}
		case "pong":
		case "next":
			var pl struct {
				Data struct {
					E *wsEvent `json:"picketLineEvents"`
				} `json:"data"`
				Errors []gqlError `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &pl); err != nil || pl.Data.E == nil {
				code := "NO_DATA"
				if len(pl.Errors) > 0 {
					code = pl.Errors[0].Extensions.Code + " " + pl.Errors[0].Message
				}
				p.noteErr("next: " + code)
				continue
			}
			ev := *pl.Data.E
			prev := c.lastSeq.Load()
			switch {
			case prev != 0 && ev.Seq <= prev:
				p.dups.Add(1)
				continue
			case prev != 0 && ev.Seq != prev+1:
				p.gaps.Add(1)
			}
			c.cursor = ev.Cursor
			c.lastSeq.Store(ev.Seq)
			if p.onEvent != nil {
				p.onEvent(c, ev, at)
			}
		case "error":
			return fmt.Errorf("subscription error: %.120s", m.Payload)
		case "complete":
			return errors.New("subscription completed")
		}
	}
}

// shortErr trims an error to its useful tail, so error counts group well.
func shortErr(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("close %d", ce.Code)
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
