package realtime

import (
	"context"
	"sync"
	"time"

	"github.com/picketline/picketline/db"
)

// Conns tracks the open connections, to close a session's on logout and
// everyone's on shutdown. Its clock times the rules of its connections:
// the connection_init timeout, the close when the token expires, and the
// keep-alive's pings.
type Conns struct {
	clock db.Clock
	mu    sync.Mutex
	conns map[*Conn]int // the connection's keep-alive slot
	added int
}

// keepAliveSlots spreads the pings of one interval over that many ticks.
const keepAliveSlots = 30

// NewConns returns an empty registry on clock.
func NewConns(clock db.Clock) *Conns { return &Conns{clock: clock, conns: map[*Conn]int{}} }

func (cs *Conns) add(c *Conn) {
	cs.mu.Lock()
	cs.conns[c] = cs.added % keepAliveSlots
	cs.added++
	cs.mu.Unlock()
}

// KeepAlive pings every connection once per interval, until ctx ends. One
// goroutine does it for all, spreading the pings evenly over the interval,
// instead of a ticker goroutine per connection: thousands of idle phones
// then cost little memory and no bursts. The pings keep NAT mappings open
// and, with the read deadline each answer renews, find dead peers.
func (cs *Conns) KeepAlive(ctx context.Context, interval time.Duration) {
	tick := cs.clock.NewTicker(interval / keepAliveSlots)
	defer tick.Stop()
	for n := 0; ; n = (n + 1) % keepAliveSlots {
		select {
		case <-ctx.Done():
			return
		case <-tick.Chan():
		}
		cs.mu.Lock()
		due := make([]*Conn, 0, len(cs.conns)/keepAliveSlots+1)
		for c, slot := range cs.conns {
			if slot == n {
				due = append(due, c)
			}
		}
		cs.mu.Unlock()
		// Each on its own short-lived goroutine: a peer whose socket is full
		// must not hold up the pings of the others.
		for _, c := range due {
			go c.ping()
		}
	}
}

func (cs *Conns) remove(c *Conn) {
	cs.mu.Lock()
	delete(cs.conns, c)
	cs.mu.Unlock()
}

// Len is how many connections are open.
func (cs *Conns) Len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

func (cs *Conns) matching(keep func(*Conn) bool) []*Conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []*Conn
	for c := range cs.conns {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// authenticated returns the connections signed in as the members given, or
// every signed-in one when members is nil.
func (cs *Conns) authenticated(members map[string]struct{}) []*Conn {
	return cs.matching(func(c *Conn) bool {
		a := c.Actor()
		if !a.Authenticated() {
			return false
		}
		_, ok := members[a.MemberID]
		return ok || members == nil
	})
}

// CloseSession closes the connections of a session that ended, with 4403.
func (cs *Conns) CloseSession(sessionID string) { cs.CloseSessions([]string{sessionID}) }

// CloseSessions closes the connections of sessions that ended, with 4403,
// looking through the connections once.
func (cs *Conns) CloseSessions(sessionIDs []string) {
	ended := make(map[string]struct{}, len(sessionIDs))
	for _, id := range sessionIDs {
		ended[id] = struct{}{}
	}
	for _, c := range cs.matching(func(c *Conn) bool {
		_, ok := ended[c.Actor().SessionID]
		return ok
	}) {
		// On a goroutine of its own: a peer that reads nothing holds the
		// close for the write timeout, and the listener and the use-case
		// that ended the session must not wait for it.
		go c.CloseWith(CloseForbidden, "Session ended")
	}
}

// CloseAll closes every connection with 1012 on shutdown, so clients
// reconnect to another replica.
func (cs *Conns) CloseAll() {
	var wg sync.WaitGroup
	for _, c := range cs.matching(func(*Conn) bool { return true }) {
		// Together, so that a peer that reads nothing holds up no other.
		wg.Go(func() { c.CloseWith(CloseServiceRestart, "Server restarting") })
	}
	wg.Wait()
}
