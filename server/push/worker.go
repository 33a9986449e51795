// Package push delivers the push outbox to Firebase Cloud Messaging: a
// worker that claims due messages, sends them at a capped rate with bounded
// concurrency, and records each outcome.
package push

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/picketline/picketline/db"
)

// Sender hands one message to a push service.
type Sender interface {
	Send(ctx context.Context, m db.PushMessage) error
}

// Outcomes a Sender reports through its error.
var (
	// ErrTokenGone means the device token is dead (unregistered, or of
	// another sender): the device is forgotten.
	ErrTokenGone = errors.New("device token no longer valid")
	// ErrRejected means the message itself was refused: retrying cannot help.
	ErrRejected = errors.New("message rejected")
)

// RetryableError asks for another attempt, not before After when set (the
// service's Retry-After).
type RetryableError struct {
	Err   error
	After time.Duration
}

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Config tunes the worker.
type Config struct {
	// Rate caps messages handed to the service per second.
	Rate float64
	// Concurrency bounds sends in flight.
	Concurrency int
	// MaxAttempts before a message goes to the dead-letter state.
	MaxAttempts int
	// Lease is how long a claimed message is this worker's; a worker that
	// dies holding it loses it after that.
	Lease time.Duration
	// BaseBackoff is the first retry delay; each attempt doubles it.
	BaseBackoff time.Duration
	// Poll is how often to look for due messages without a wake-up.
	Poll time.Duration
	// SendTimeout bounds one send, the service client's own retries included.
	// Like bookkeepingTimeout it is a context deadline on the wall clock: it
	// bounds a round trip over the network, and is no rule of ours.
	SendTimeout time.Duration
}

// DefaultConfig is the configuration without overrides. FCM accepts
// 600,000 messages a minute per project; the default rate stays well under
// that yet hands an announcement to 50,000 phones in about ten seconds.
var DefaultConfig = Config{Rate: 6000, Concurrency: 32, MaxAttempts: 8, Lease: time.Minute, BaseBackoff: 2 * time.Second, Poll: time.Second, SendTimeout: 30 * time.Second}

// Batching of the worker's database work.
const (
	// maxClaim bounds one claim; claimSize keeps a batch small enough to be
	// sent well within its lease at the configured rate.
	maxClaim = 500
	// recordBatch and recordEvery bound how many outcomes, and for how long,
	// wait to be recorded in one statement.
	recordBatch = 500
	recordEvery = 20 * time.Millisecond
	// passLimit bounds one pass over the due messages (see claim).
	passLimit = 2 * time.Second
	// bookkeepingTimeout bounds a claim or a record, which run to the end
	// even when the worker stops.
	bookkeepingTimeout = 10 * time.Second
)

// Worker drains the push outbox, and fans urgent announcements out into it.
type Worker struct {
	store  *db.Store
	clock  db.Clock
	sender Sender
	cfg    Config
	log    *slog.Logger
	// limiter keeps to the wall clock: the rate it caps is FCM's quota,
	// which Google counts in real seconds.
	limiter *rate.Limiter
	wake    chan struct{}
	fanWake chan struct{}
	// signals, nil outside tests, tell a test where the worker has got to.
	signals *signals
	// results, when set, hears what became of each message sent.
	results func(Result)
}

// ObserveResults has f hear the result of every send, from the senders'
// goroutines; it must be cheap (an atomic counter), as the worker sends
// thousands a second. Call it before Run.
func (w *Worker) ObserveResults(f func(Result)) { w.results = f }

func (w *Worker) observe(r Result) {
	if w.results != nil {
		w.results(r)
	}
}

// NewWorker returns a worker sending through sender. clock is the store's:
// leases, retries, quiet hours and polls all run on it.
func NewWorker(store *db.Store, clock db.Clock, sender Sender, cfg Config, log *slog.Logger) *Worker {
	return &Worker{
		store:   store,
		clock:   clock,
		sender:  sender,
		cfg:     cfg,
		log:     log,
		limiter: rate.NewLimiter(rate.Limit(cfg.Rate), burst(cfg.Rate)),
		wake:    make(chan struct{}, 1),
		fanWake: make(chan struct{}, 1),
	}
}

// burst is how many messages the limiter lets go at once after a pause: a
// twentieth of a second's worth.
func burst(rate float64) int { return max(1, int(rate/20)) }

// Wake tells the worker new messages, or announcements to fan out, are queued.
func (w *Worker) Wake() {
	for _, c := range []chan struct{}{w.wake, w.fanWake} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// claimSize is a batch the worker sends within a quarter of its lease at
// its rate, so no claimed message waits long enough to be taken over.
func (w *Worker) claimSize() int {
	return min(maxClaim, max(1, int(w.cfg.Rate*w.cfg.Lease.Seconds()/4)))
}

// Run sends until ctx ends; several workers, in one process or many, may
// run at once. Claiming, sending and recording overlap: the next batch is
// claimed while this one is sent, and outcomes are recorded in batches.
func (w *Worker) Run(ctx context.Context) {
	batches := make(chan []db.PushMessage, 1)
	outcomes := make(chan db.PushOutcome, recordBatch)
	recorded := make(chan struct{})
	var prepared sync.WaitGroup
	prepared.Go(func() { w.prepare(ctx) })
	go w.claim(ctx, batches)
	go w.record(outcomes, recorded)
	w.send(ctx, batches, outcomes)
	close(outcomes)
	<-recorded
	prepared.Wait()
}

// claim feeds batches of due messages until ctx ends. It passes over the
// due messages in order, each claim going on after the last, and starts a
// new pass when it has caught up or after passLimit: messages that became
// due behind its position (an urgent one during a long ordinary burst, or
// one committed late) wait at most that long.
func (w *Worker) claim(ctx context.Context, batches chan<- []db.PushMessage) {
	defer close(batches)
	var (
		after  *db.PushPosition
		passed time.Time
	)
	for ctx.Err() == nil {
		if after != nil && w.clock.Since(passed) > passLimit {
			after = nil
		}
		if after == nil {
			passed = w.clock.Now()
		}
		// A claim is not cut off by the stop: cancelled mid-way, its
		// transaction would hold the rows locked until the connection's
		// close reached the database, after Run returned. Once it has
		// finished, what it took is put back.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
		batch, next, err := w.store.ClaimPush(cctx, db.System, w.claimSize(), w.cfg.Lease, after)
		cancel()
		w.signals.claim(len(batch))
		if err != nil {
			w.log.Error("claim push messages", "err", err)
		}
		if ctx.Err() != nil {
			w.release(batch)
			return
		}
		after = next
		if len(batch) > 0 {
			select {
			case batches <- batch:
			case <-ctx.Done():
				w.release(batch)
				return
			}
		}
		if next != nil || len(batch) > 0 {
			continue // more may be due
		}
		poll := w.clock.NewTimer(w.cfg.Poll)
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-poll.Chan():
		}
		poll.Stop()
	}
}

// send hands claimed messages to the service at the capped rate through
// Concurrency long-lived senders (a goroutine per message would grow a
// fresh stack through the HTTP client every time). When ctx ends, what it
// had not started is released at once rather than left to its lease.
func (w *Worker) send(ctx context.Context, batches <-chan []db.PushMessage, outcomes chan<- db.PushOutcome) {
	jobs := make(chan db.PushMessage)
	var senders sync.WaitGroup
	for range w.cfg.Concurrency {
		senders.Go(func() {
			for m := range jobs {
				if o, ok := w.deliver(ctx, m); ok {
					outcomes <- o
				}
			}
		})
	}
	defer func() {
		close(jobs)
		senders.Wait()
	}()
	for batch := range batches {
		for i, m := range batch {
			if w.limiter.Wait(ctx) == nil {
				select {
				case jobs <- m:
					continue
				case <-ctx.Done():
				}
			}
			w.release(batch[i:])
			for rest := range batches {
				w.release(rest)
			}
			return
		}
	}
}

// release puts claimed messages back, due now, for any worker to take.
func (w *Worker) release(batch []db.PushMessage) {
	now := w.clock.Now()
	outcomes := make([]db.PushOutcome, len(batch))
	for i, m := range batch {
		outcomes[i] = db.PushOutcome{ID: m.ID, Result: db.PushPostponed, At: now}
	}
	w.flush(outcomes)
}

// record writes outcomes in batches until outcomes closes.
func (w *Worker) record(outcomes <-chan db.PushOutcome, done chan<- struct{}) {
	defer close(done)
	var pending []db.PushOutcome
	tick := w.clock.NewTicker(recordEvery)
	defer tick.Stop()
	for {
		select {
		case o, ok := <-outcomes:
			if !ok {
				w.flush(pending)
				return
			}
			if pending = append(pending, o); len(pending) >= recordBatch {
				w.flush(pending)
				w.signals.record(len(pending))
				pending = pending[:0]
			}
		case <-tick.Chan():
			w.flush(pending)
			w.signals.record(len(pending))
			pending = pending[:0]
		}
	}
}

// flush records outcomes. It runs even while the server stops: a sent
// message must not be left looking unsent (it would go out again).
func (w *Worker) flush(outcomes []db.PushOutcome) {
	if len(outcomes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), bookkeepingTimeout)
	defer cancel()
	if err := w.store.RecordPush(ctx, db.System, outcomes, w.cfg.MaxAttempts); err != nil {
		w.log.Error("record push outcomes", "err", err, "messages", len(outcomes))
	}
}

// prepare turns queued urgent announcements and due shift reminders into
// outbox messages, and forgets devices unused for too long.
func (w *Worker) prepare(ctx context.Context) {
	housekeeping := w.clock.NewTicker(30 * time.Second)
	defer housekeeping.Stop()
	w.housekeeping(ctx)
	for ctx.Err() == nil {
		n, err := w.store.FanOutAnnouncements(ctx, db.System)
		if err != nil && ctx.Err() == nil {
			w.log.Error("fan out urgent announcement", "err", err)
		}
		if n > 0 {
			continue
		}
		poll := w.clock.NewTimer(w.cfg.Poll)
		select {
		case <-ctx.Done():
		case <-w.fanWake:
		case <-housekeeping.Chan():
			w.housekeeping(ctx)
		case <-poll.Chan():
		}
		poll.Stop()
	}
}

func (w *Worker) housekeeping(ctx context.Context) {
	if _, err := w.store.ScheduleReminders(ctx, db.System); err != nil && ctx.Err() == nil {
		w.log.Error("schedule shift reminders", "err", err)
	}
	if _, err := w.store.PurgeStaleDevices(ctx, db.System); err != nil && ctx.Err() == nil {
		w.log.Error("purge stale devices", "err", err)
	}
}

// deliver sends one claimed message and returns the outcome to record; a
// dead token is dealt with here (the device is forgotten with its unsent
// messages) and leaves nothing to record.
func (w *Worker) deliver(ctx context.Context, m db.PushMessage) (db.PushOutcome, bool) {
	if !m.Urgent {
		now := w.clock.Now()
		if until := m.Preferences.QuietUntil(now); until.After(now) {
			return db.PushOutcome{ID: m.ID, Result: db.PushPostponed, At: until}, true
		}
	}
	sctx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	err := w.sender.Send(sctx, m)
	cancel()
	var retry *RetryableError
	switch {
	case err == nil:
		w.observe(Delivered)
		return db.PushOutcome{ID: m.ID, Result: db.PushDelivered}, true
	case errors.Is(err, ErrTokenGone):
		w.observe(TokenGone)
		if err := w.store.DropDevice(context.WithoutCancel(ctx), db.System, m.DeviceToken); err != nil {
			w.log.Error("forget dead device token", "err", err)
		}
		return db.PushOutcome{}, false
	case ctx.Err() != nil:
		// The server is stopping: not the message's fault, so no attempt used.
		return db.PushOutcome{ID: m.ID, Result: db.PushPostponed, At: w.clock.Now()}, true
	case errors.Is(err, ErrRejected):
		w.observe(Rejected)
		w.log.Warn("push message rejected", "id", m.ID, "kind", m.Kind, "err", err)
		return db.PushOutcome{ID: m.ID, Result: db.PushRejected, Error: err.Error()}, true
	default:
		// The claim counted this attempt: the record dead-letters a
		// message that has used them all.
		if m.Attempts >= w.cfg.MaxAttempts {
			w.observe(Dead)
		} else {
			w.observe(Retryable)
		}
		after := w.backoff(m.Attempts)
		if errors.As(err, &retry) && retry.After > after {
			after = retry.After
		}
		w.log.Warn("push send failed; will retry", "id", m.ID, "attempt", m.Attempts, "in", after, "err", err)
		return db.PushOutcome{ID: m.ID, Result: db.PushRetryLater, At: w.clock.Now().Add(after), Error: err.Error()}, true
	}
}

// backoff is exponential with full jitter in its upper half.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.BaseBackoff << min(attempt-1, 10)
	return d/2 + rand.N(d/2+1)
}
