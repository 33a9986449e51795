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
	SendTimeout time.Duration
}

// DefaultConfig is the configuration without overrides.
var DefaultConfig = Config{Rate: 500, Concurrency: 16, MaxAttempts: 8, Lease: time.Minute, BaseBackoff: 2 * time.Second, Poll: time.Second, SendTimeout: 30 * time.Second}

// Worker drains the push outbox.
type Worker struct {
	store   *db.Store
	sender  Sender
	cfg     Config
	log     *slog.Logger
	limiter *rate.Limiter
	wake    chan struct{}
	now     func() time.Time
}

// NewWorker returns a worker sending through sender.
func NewWorker(store *db.Store, sender Sender, cfg Config, log *slog.Logger) *Worker {
	return &Worker{
		store:   store,
		sender:  sender,
		cfg:     cfg,
		log:     log,
		limiter: rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/10))),
		wake:    make(chan struct{}, 1),
		now:     store.Now,
	}
}

// Wake tells the worker new messages are queued.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends; several workers, in one process or many, may
// run at once.
func (w *Worker) Run(ctx context.Context) {
	sem := make(chan struct{}, w.cfg.Concurrency)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	reminders := time.NewTicker(30 * time.Second)
	defer reminders.Stop()
	w.scheduleReminders(ctx)
	for ctx.Err() == nil {
		batch, err := w.store.ClaimPush(ctx, 4*w.cfg.Concurrency, w.cfg.Lease)
		if err != nil && ctx.Err() == nil {
			w.log.Error("claim push messages", "err", err)
		}
		for _, m := range batch {
			if err := w.limiter.Wait(ctx); err != nil {
				return
			}
			sem <- struct{}{}
			inflight.Add(1)
			go func() {
				defer func() { <-sem; inflight.Done() }()
				w.deliver(ctx, m)
			}()
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-reminders.C:
			w.scheduleReminders(ctx)
		case <-time.After(w.cfg.Poll):
		}
	}
}

func (w *Worker) scheduleReminders(ctx context.Context) {
	if _, err := w.store.ScheduleReminders(ctx); err != nil && ctx.Err() == nil {
		w.log.Error("schedule shift reminders", "err", err)
	}
	if _, err := w.store.PurgeStaleDevices(ctx); err != nil && ctx.Err() == nil {
		w.log.Error("purge stale devices", "err", err)
	}
}

// deliver sends one claimed message and records what became of it. The
// record is written even when ctx ends, so a stopping server does not
// leave a sent message looking unsent.
func (w *Worker) deliver(ctx context.Context, m db.PushMessage) {
	record := context.WithoutCancel(ctx)
	if !m.Urgent {
		if until := m.Preferences.QuietUntil(w.now()); until.After(w.now()) {
			w.check(w.store.PushDefer(record, m.ID, until))
			return
		}
	}
	sctx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	err := w.sender.Send(sctx, m)
	cancel()
	var retry *RetryableError
	switch {
	case err == nil:
		w.check(w.store.PushSent(record, m.ID))
	case errors.Is(err, ErrTokenGone):
		w.check(w.store.DropDevice(record, m.DeviceToken))
	case errors.Is(err, ErrRejected):
		w.log.Warn("push message rejected", "id", m.ID, "kind", m.Kind, "err", err)
		w.check(w.store.PushFailed(record, m.ID, err.Error()))
	default:
		after := w.backoff(m.Attempts)
		if errors.As(err, &retry) && retry.After > after {
			after = retry.After
		}
		w.log.Warn("push send failed; will retry", "id", m.ID, "attempt", m.Attempts, "in", after, "err", err)
		w.check(w.store.PushRetry(record, m.ID, w.now().Add(after), err.Error(), w.cfg.MaxAttempts))
	}
}

// backoff is exponential with full jitter in its upper half.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.BaseBackoff << min(attempt-1, 10)
	return d/2 + rand.N(d/2+1)
}

func (w *Worker) check(err error) {
	if err != nil {
		w.log.Error("record push outcome", "err", err)
	}
}
