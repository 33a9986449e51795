package realtime

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
)

// Channel is the PostgreSQL NOTIFY channel replicas wake each other on.
const Channel = "picketline_events"

// manyMembers is how many members one change may name before the wake-up
// just says "every member": one NOTIFY payload holds at most 8000 bytes.
const manyMembers = 20

// Notifier wakes this process's hub at once and, off the request path,
// tells the other replicas through NOTIFY. The NOTIFY is sent after the
// writing transaction committed, outside it: inside, every notifying commit
// in the cluster would queue on PostgreSQL's notification lock.
type Notifier struct {
	hub       *Hub
	conns     *Conns
	authority *Authority
	pool      *pgxpool.Pool
	log       *slog.Logger
	origin    string
	queue     chan string
	// OnPush is called when the push outbox has new messages.
	OnPush func()
	// OnLoginEmail is called when a login email was queued.
	OnLoginEmail func()
	// listening, when set, hears each time the listener starts listening:
	// tests wait on it.
	listening func()
}

// NewNotifier returns a Notifier for this process's hub, sockets and their
// authority; Run must be running for other replicas to hear of changes.
func NewNotifier(hub *Hub, conns *Conns, authority *Authority, pool *pgxpool.Pool, log *slog.Logger) *Notifier {
	return &Notifier{hub: hub, conns: conns, authority: authority, pool: pool, log: log, origin: rand.Text()[:8], queue: make(chan string, 8192)}
}

// LinesChanged implements db.Notifier.
func (n *Notifier) LinesChanged(lineIDs ...string) {
	n.hub.WakeLines(lineIDs...)
	for _, id := range lineIDs {
		n.enqueue("l:" + id)
	}
}

// MembersChanged implements db.Notifier.
func (n *Notifier) MembersChanged(memberIDs ...string) {
	n.hub.WakeMembers(memberIDs...)
	if len(memberIDs) > manyMembers {
		n.enqueue("m:*")
		return
	}
	for _, id := range memberIDs {
		n.enqueue("m:" + id)
	}
}

// PushQueued implements db.Notifier: the local push worker wakes; those
// of other replicas find the messages at their next poll.
func (n *Notifier) PushQueued() {
	if n.OnPush != nil {
		n.OnPush()
	}
}

// LoginEmailQueued implements db.Notifier: the local mail worker wakes,
// so the member who asked for a code here gets it at once; the workers of
// other replicas need not hear of it.
func (n *Notifier) LoginEmailQueued() {
	if n.OnLoginEmail != nil {
		n.OnLoginEmail()
	}
}

// RightsChanged implements db.Notifier: the members' subscriptions are
// checked again here and on every replica.
func (n *Notifier) RightsChanged(memberIDs ...string) {
	n.authority.RightsChanged(memberIDs...)
	for _, p := range rightsPayloads(memberIDs) {
		n.enqueue(p)
	}
}

// SessionsEnded implements db.Notifier: the sessions' websockets close, here
// and on every replica.
func (n *Notifier) SessionsEnded(sessionIDs ...string) {
	n.conns.CloseSessions(sessionIDs)
	for _, id := range sessionIDs {
		n.enqueue("s:" + id)
	}
}

// rightsPayloads names each member, however many: "every member" would
// have every replica check every open socket, where a cancelled shift
// concerns only its own few hundred at most.
func rightsPayloads(memberIDs []string) []string {
	out := make([]string, len(memberIDs))
	for i, id := range memberIDs {
		out[i] = "r:" + id
	}
	return out
}

const notifySQL = `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`

// CommandNotifier tells the running replicas of the changes an operator's
// command made: it has no hub or sockets of its own. Send delivers what the
// command's use-cases reported.
type CommandNotifier struct {
	db.NoNotifier
	pool     *pgxpool.Pool
	origin   string
	payloads []string
}

// NewCommandNotifier returns a CommandNotifier sending through pool.
func NewCommandNotifier(pool *pgxpool.Pool) *CommandNotifier {
	return &CommandNotifier{pool: pool, origin: rand.Text()[:8]}
}

// RightsChanged implements db.Notifier.
func (n *CommandNotifier) RightsChanged(memberIDs ...string) {
	for _, p := range rightsPayloads(memberIDs) {
		n.payloads = append(n.payloads, n.origin+"|"+p)
	}
}

// Send tells the replicas. Should it fail, they still find the change at
// their next check of every socket's rights.
func (n *CommandNotifier) Send(ctx context.Context) error {
	if len(n.payloads) == 0 {
		return nil
	}
	_, err := n.pool.Exec(ctx, notifySQL, Channel, n.payloads)
	n.payloads = n.payloads[:0]
	return err
}

// enqueue never blocks a use-case: if the queue is full the periodic poll
// of every replica picks the change up instead.
func (n *Notifier) enqueue(payload string) {
	select {
	case n.queue <- n.origin + "|" + payload:
	default:
		n.log.Warn("wake-up queue full; replicas will see the change at their next poll")
	}
}

// Run sends queued wake-ups in batches until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	batch := make([]string, 0, 256)
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-n.queue:
			batch = append(batch[:0], p)
		drain:
			for len(batch) < cap(batch) {
				select {
				case p := <-n.queue:
					batch = append(batch, p)
				default:
					break drain
				}
			}
			if _, err := n.pool.Exec(ctx, notifySQL, Channel, batch); err != nil && ctx.Err() == nil {
				n.log.Warn("send wake-ups", "err", err)
			}
		}
	}
}

// Listen holds this process's one listening connection: it wakes the hub
// for changes made by other replicas, reconnects when the connection
// drops, and then re-reads everything, since wake-ups sent meanwhile are
// lost (the event tables are not). It backs off between failed attempts on
// the hub's clock, from listenBackoff up to listenMaxBackoff, and from
// listenBackoff again once a connection listened: a database restarted
// twice in a day must not leave every replica a minute behind.
func (n *Notifier) Listen(ctx context.Context, url string) {
	for backoff, again := listenBackoff, false; ctx.Err() == nil; again = true {
		listened, err := n.listenOnce(ctx, url, again)
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff = listenBackoff
		}
		n.log.Warn("event listener disconnected; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-n.hub.clock.After(backoff):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// The listener's backoff between attempts to connect.
const (
	listenBackoff    = time.Second
	listenMaxBackoff = 30 * time.Second
)

// listenOnce listens until the connection fails, and says whether it got
// as far as listening; again says it is a reconnection.
func (n *Notifier) listenOnce(ctx context.Context, url string, again bool) (listened bool, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return false, err
	}
	if again {
		n.log.Info("event listener reconnected")
	}
	if n.listening != nil {
		n.listening()
	}
	n.hub.WakeAll()
	n.authority.CheckAll()
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		origin, payload, ok := strings.Cut(note.Payload, "|")
		if !ok || origin == n.origin {
			continue
		}
		kind, id, _ := strings.Cut(payload, ":")
		switch {
		case kind == "l":
			n.hub.WakeLines(id)
		case kind == "m" && id == "*":
			n.hub.WakeAllMembers()
		case kind == "m":
			n.hub.WakeMembers(id)
		case kind == "s":
			n.conns.CloseSession(id)
		case kind == "r":
			n.authority.RightsChanged(id)
		}
	}
}
