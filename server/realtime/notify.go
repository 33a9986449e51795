package realtime

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	hub    *Hub
	conns  *Conns
	pool   *pgxpool.Pool
	log    *slog.Logger
	origin string
	queue  chan string
	// OnPush is called when the push outbox has new messages.
	OnPush func()
	// OnLoginEmail is called when a login email was queued.
	OnLoginEmail func()
}

// NewNotifier returns a Notifier for hub; Run must be running for other
// replicas to hear of changes.
func NewNotifier(hub *Hub, conns *Conns, pool *pgxpool.Pool, log *slog.Logger) *Notifier {
	return &Notifier{hub: hub, conns: conns, pool: pool, log: log, origin: rand.Text()[:8], queue: make(chan string, 8192)}
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

// SessionEnded closes the websockets of a session that logged out, here
// and on every replica.
func (n *Notifier) SessionEnded(sessionID string) {
	n.conns.CloseSession(sessionID)
	n.enqueue("s:" + sessionID)
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
			if _, err := n.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, Channel, batch); err != nil && ctx.Err() == nil {
				n.log.Warn("send wake-ups", "err", err)
			}
		}
	}
}

// Listen holds this process's one listening connection: it wakes the hub
// for changes made by other replicas, reconnects when the connection
// drops, and then re-reads everything, since wake-ups sent meanwhile are
// lost (the event tables are not). It backs off between attempts on the
// hub's clock.
func (n *Notifier) Listen(ctx context.Context, url string) {
	for backoff := time.Second; ctx.Err() == nil; {
		err := n.listenOnce(ctx, url)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("event listener disconnected; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-n.hub.clock.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (n *Notifier) listenOnce(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	n.hub.WakeAll()
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
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
		}
	}
}
