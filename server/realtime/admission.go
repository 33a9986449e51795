package realtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
)

// CloseTooManyConnections refuses a member's websocket past their cap. It
// is the code graphql-ws clients take as final (the protocol's "too many
// initialisation requests"), so an app at its cap does not retry in a loop.
const CloseTooManyConnections = 4429

// Admission decides which websockets get in, by two limits:
//
//   - handshakes not yet authenticated, per client address, on this
//     replica: counted in memory, from the request until connection_ack or
//     the close. A handshake lives at most the init timeout on the replica
//     it reached, so sharing the count would buy little, and would cost a
//     database write per anonymous handshake: itself a way to load the
//     database from outside.
//   - connections per member, on every replica together: counted in
//     PostgreSQL (db.Store.AdmitSession) once connection_init has named
//     the member. Each replica refreshes its open connections' rows, so the
//     rows of one that died stop counting by themselves.
type Admission struct {
	store      *db.Store
	clock      db.Clock
	log        *slog.Logger
	replica    string
	maxPending int
	// retryAfter is the init timeout in whole seconds, rounded up: by then
	// the handshakes counted against an address have ended, one way or
	// another.
	retryAfter int

	mu      sync.Mutex
	pending map[string]int
	open    map[db.ConnectionID]struct{}
	// ended carries the connections that closed, for Run to free their
	// slots in batches.
	ended chan db.ConnectionID
}

// endBatch bounds how many closed connections one statement frees; ended
// holds that many waiting. One that finds it full leaves its row to go
// stale, since Run refreshes only the connections still open.
const endBatch = 4096

// NewAdmission returns the admission of one replica, which names itself
// afresh: the rows of a previous run of the same process are a dead
// replica's.
func NewAdmission(store *db.Store, clock db.Clock, log *slog.Logger, maxPending int, initTimeout time.Duration) *Admission {
	return &Admission{
		store: store, clock: clock, log: log,
		replica:    newReplicaID(),
		maxPending: maxPending,
		retryAfter: int(math.Ceil(initTimeout.Seconds())),
		pending:    map[string]int{},
		open:       map[db.ConnectionID]struct{}{},
		ended:      make(chan db.ConnectionID, endBatch),
	}
}

// newReplicaID is a random UUID (version 4).
func newReplicaID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// admission is one websocket's standing with the limits, from its request
// to its close; Admission.mu guards it.
type admission struct {
	owner *Admission
	addr  string
	// pending: counted among addr's handshakes.
	pending bool
	// id is the connection's row in ws_connections, once admitted.
	id       db.ConnectionID
	admitted bool
	closed   bool
}

type admissionKey struct{}

// Handler prepares websocket requests for next: one past its address's
// handshakes is answered 429 before it is upgraded, with Retry-After and
// RATE_LIMITED in GraphQL JSON; the others are counted until Admit or
// their end, and their context is made ready for ConnFrom.
func (a *Admission) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		adm := &admission{owner: a, addr: db.ClientAddr(r.Context())}
		if !a.begin(adm) {
			w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter))
			auth.WriteError(w, r, http.StatusTooManyRequests, "too many websocket handshakes from this address; try again later",
				map[string]any{"code": db.CodeRateLimited, "retryAfterSeconds": a.retryAfter})
			return
		}
		// The handler returns when the websocket has ended, however it ended.
		defer a.release(adm, false)
		ctx := context.WithValue(WithConnSlot(r.Context()), admissionKey{}, adm)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (a *Admission) begin(adm *admission) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending[adm.addr] >= a.maxPending {
		return false
	}
	a.pending[adm.addr]++
	adm.pending = true
	return true
}

// endHandshake stops counting adm as a handshake of its address, once it
// is authenticated or closed; a.mu is held.
func (a *Admission) endHandshake(adm *admission) {
	if !adm.pending {
		return
	}
	adm.pending = false
	if a.pending[adm.addr]--; a.pending[adm.addr] == 0 {
		delete(a.pending, adm.addr)
	}
}

// Admit lets in the websocket of ctx, signed in on the session its token
// names, and returns the session's actor: the session is checked and the
// connection counted against the member's cap on every replica in one
// round trip, and it no longer counts as a handshake of its address. A
// session that is not live fails with UNAUTHENTICATED; past the cap it
// fails with RATE_LIMITED; either way it stays a handshake until it
// closes.
func (a *Admission) Admit(ctx context.Context, sessionID, memberID string) (db.Actor, error) {
	adm, ok := ctx.Value(admissionKey{}).(*admission)
	if !ok {
		return db.Actor{}, errors.New("websocket request not prepared by Admission.Handler")
	}
	actor, id, err := a.store.AdmitSession(ctx, db.System, sessionID, memberID, a.replica)
	if err != nil {
		return db.Actor{}, err
	}
	a.mu.Lock()
	closed := adm.closed
	if !closed {
		adm.id, adm.admitted = id, true
		a.open[id] = struct{}{}
		a.endHandshake(adm)
	}
	a.mu.Unlock()
	if closed {
		// The peer left while it was being admitted.
		a.end(id)
	}
	return actor, nil
}

// release frees what a closed websocket held, once: its handshake slot at
// once, its member slot now (waiting for the database) or through Run.
func (a *Admission) release(adm *admission, now bool) {
	a.mu.Lock()
	if adm.closed {
		a.mu.Unlock()
		return
	}
	adm.closed = true
	a.endHandshake(adm)
	id, admitted := adm.id, adm.admitted
	if admitted {
		delete(a.open, id)
	}
	a.mu.Unlock()
	switch {
	case !admitted:
	case now:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.store.EndConnections(ctx, db.System, []db.ConnectionID{id}); err != nil {
			a.log.Warn("free a websocket's slot", "err", err)
		}
	default:
		a.end(id)
	}
}

// end hands a closed connection to Run, or leaves its row to go stale
// when Run is that far behind.
func (a *Admission) end(id db.ConnectionID) {
	select {
	case a.ended <- id:
	default:
	}
}

// watchClose frees a websocket's slots as soon as its peer asks to close,
// before the close is answered: a client that closes and at once
// reconnects, at its cap, finds its slot free.
func watchClose(ws *websocket.Conn, ctx context.Context) {
	adm, ok := ctx.Value(admissionKey{}).(*admission)
	if !ok {
		return
	}
	answer := ws.CloseHandler()
	ws.SetCloseHandler(func(code int, text string) error {
		adm.owner.release(adm, true)
		return answer(code, text)
	})
}

// Run keeps this replica's count right until ctx ends: it frees the slots
// of connections that closed, in batches, and refreshes those still open
// every db.ConnectionRefreshInterval.
func (a *Admission) Run(ctx context.Context) {
	tick := a.clock.NewTicker(db.ConnectionRefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.Chan():
			if err := a.refresh(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("refresh websocket connections", "err", err)
			}
		case id := <-a.ended:
			ids := a.drain(id)
			if err := a.store.EndConnections(ctx, db.System, ids); err != nil && ctx.Err() == nil {
				a.log.Warn("free closed websockets' slots", "connections", len(ids), "err", err)
			}
		}
	}
}

// drain returns first and the other closed connections waiting.
func (a *Admission) drain(first db.ConnectionID) []db.ConnectionID {
	ids := []db.ConnectionID{first}
	for len(ids) < endBatch {
		select {
		case id := <-a.ended:
			ids = append(ids, id)
		default:
			return ids
		}
	}
	return ids
}

func (a *Admission) refresh(ctx context.Context) error {
	a.mu.Lock()
	ids := make([]db.ConnectionID, 0, len(a.open))
	for id := range a.open {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	return a.store.RefreshConnections(ctx, db.System, ids)
}

// EndAll frees the slots of every connection of this replica, in one
// statement, as it shuts down.
func (a *Admission) EndAll(ctx context.Context) error {
	return a.store.EndReplicaConnections(ctx, db.System, a.replica)
}
