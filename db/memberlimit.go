package db

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultMutationsPerMinute is the per-member mutation limit of a
// deployment that sets none.
const DefaultMutationsPerMinute = 120

// MutationWindow is the window of the per-member mutation limit.
const MutationWindow = time.Minute

// MutationFlushInterval is how often the server shares its counts through
// PostgreSQL (see MutationLimiter).
const MutationFlushInterval = time.Second

// MutationLimiter holds each member to a number of mutations per minute
// across every replica, without a round trip per mutation: a replica
// counts what it admits in memory, and FlushMutationCounts adds its counts
// to member_mutations in one statement that returns each member's total
// across replicas, which the replica then counts from.
//
// The tolerance: on one replica the count is exact, however many
// mutations race. Across replicas, each holds a member to the total it
// heard at its last flush of that member plus what it admitted since, so
// what the other replicas admitted after that goes unseen until its next
// flush, a MutationFlushInterval later. A member whose mutations reach
// several replicas within one interval can get past the limit by what the
// others admitted in that interval, and never by more than (replicas − 1)
// × the limit in one window, as no replica admits more than the limit by
// itself. Once every replica involved has flushed, all refuse.
//
// If a flush fails, its counts are kept for the next one: the limit holds
// on each replica meanwhile, and the shared totals catch up.
type MutationLimiter struct {
	store *Store
	max   int

	// flushing serializes flushes: each holds its counts in flight apart
	// from the ones admitted meanwhile, and a second at once would mix
	// them up.
	flushing sync.Mutex
	mu       sync.Mutex
	window   time.Time
	counts   map[string]*mutationCount
}

// mutationCount is one member's mutations in the current window, as this
// replica knows them.
type mutationCount struct {
	// shared is the member's total across replicas as the last flush
	// returned it; it includes what this replica had flushed by then.
	shared int
	// flushing is what this replica admitted that the flush under way is
	// adding to the table.
	flushing int
	// pending is what this replica admitted since.
	pending int
}

func (c *mutationCount) total() int { return c.shared + c.flushing + c.pending }

// NewMutationLimiter returns a limiter allowing perMinute mutations per
// member per minute on the store's clock. Zero turns the limit off: it
// returns nil, which the server then does not install.
func NewMutationLimiter(s *Store, perMinute int) *MutationLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &MutationLimiter{store: s, max: perMinute, counts: map[string]*mutationCount{}}
}

// Admit counts n mutations of one operation against the actor's member and
// admits all of them, or none: past the limit it returns RATE_LIMITED with
// the seconds until the window ends, and counts nothing. Anonymous
// actors are not counted here (the mutations open to them have limits per
// address of their own).
func (l *MutationLimiter) Admit(actor Actor, n int) error {
	if n <= 0 || !actor.Authenticated() {
		return nil
	}
	now := l.store.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	c := l.counts[actor.MemberID]
	if c == nil {
		c = &mutationCount{}
		l.counts[actor.MemberID] = c
	}
	if c.total()+n > l.max {
		wait := l.window.Add(MutationWindow).Sub(now)
		return &Error{
			Code:              CodeRateLimited,
			Message:           "too many changes in a minute; try again later",
			RetryAfterSeconds: max(1, int(math.Ceil(wait.Seconds()))),
		}
	}
	c.pending += n
	return nil
}

// roll starts a new window when now is past the current one; the counts
// of an ended window no longer matter, flushed or not. l.mu is held.
func (l *MutationLimiter) roll(now time.Time) {
	if start := now.Truncate(MutationWindow); start.After(l.window) {
		l.window = start
		clear(l.counts)
	}
}

const flushMutationCountsSQL = `
INSERT INTO member_mutations (member_id, window_start, mutations)
SELECT d.member_id, $1, d.mutations FROM unnest($2::uuid[], $3::int[]) AS d(member_id, mutations)
ON CONFLICT (member_id, window_start) DO UPDATE SET mutations = member_mutations.mutations + EXCLUDED.mutations
RETURNING member_id::text, mutations`

// FlushMutationCounts adds what this replica admitted since its last flush
// to the shared counts, takes back each of those members' totals across
// replicas, and returns how many members it wrote. Members are written in
// id order, so that replicas flushing the same members at once cannot
// deadlock. System only: the server runs it every MutationFlushInterval
// and once when it stops.
func (l *MutationLimiter) FlushMutationCounts(ctx context.Context, actor Actor) (members int, err error) {
	if err := actor.requireSystem(); err != nil {
		return 0, err
	}
	defer wrap(&err, "FlushMutationCounts")
	l.flushing.Lock()
	defer l.flushing.Unlock()
	l.mu.Lock()
	l.roll(l.store.clock.Now())
	window := l.window
	var ids []string
	for id, c := range l.counts {
		if c.pending > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	deltas := make([]int, len(ids))
	for i, id := range ids {
		c := l.counts[id]
		c.flushing, c.pending = c.pending, 0
		deltas[i] = c.flushing
	}
	l.mu.Unlock()
	if len(ids) == 0 {
		return 0, nil
	}

	totals := make(map[string]int, len(ids))
	err = l.store.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, flushMutationCountsSQL, window, ids, deltas)
		if err != nil {
			return err
		}
		clear(totals)
		var id string
		var total int
		_, err = pgx.ForEachRow(rows, []any{&id, &total}, func() error {
			totals[id] = total
			return nil
		})
		return err
	})

	l.mu.Lock()
	defer l.mu.Unlock()
	// When the window ended during the flush, its counts are gone.
	if l.window.Equal(window) {
		for _, id := range ids {
			c := l.counts[id]
			if err != nil {
				c.pending += c.flushing
			} else {
				c.shared = totals[id]
			}
			c.flushing = 0
		}
	}
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}
