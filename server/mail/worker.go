// Package mail delivers login codes: a worker that resolves the queued
// requests for codes and drains the login email outbox through a Sender
// (SMTP, or the log in development), retrying a failed send with backoff
// and reporting every outcome without the address.
package mail

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/picketline/picketline/db"
)

// Sender delivers one login email.
type Sender interface {
	// Send hands e to the member's mail server. A failure is best reported
	// as a *SendError; any other error is recorded as unclassified, for its
	// words are never kept.
	Send(ctx context.Context, e db.LoginEmail) error
}

// SendError is a failed send as it may be logged and stored: Class names
// the kind of failure in fixed words and numbers (the SMTP stage, reply
// code and enhanced status), never the server's text, which can quote the
// address.
type SendError struct {
	Class string
	// Permanent says the server refused the message for good: retrying
	// cannot help.
	Permanent bool
}

func (e *SendError) Error() string { return e.Class }

// unclassified is the class of an error that is not a *SendError.
const unclassified = "unclassified"

// Metrics counts what became of login emails. Every method must be safe
// to call from several goroutines.
type Metrics interface {
	// LoginEmailSent counts an email the mail server accepted.
	LoginEmailSent()
	// LoginEmailFailed counts an email that will never be sent: refused
	// for good, out of attempts, or expired before it could go.
	LoginEmailFailed()
}

// Config tunes the worker.
type Config struct {
	// MaxAttempts is how many sends an email gets before it fails.
	MaxAttempts int
	// BaseBackoff is the first retry delay; each attempt doubles it.
	BaseBackoff time.Duration
	// Lease is how long a claimed email is this worker's; a worker that
	// dies holding it loses it to another after that. It must outlast
	// SendTimeout.
	Lease time.Duration
	// Poll is how often to look for due emails without a wake-up: emails
	// retried after a backoff, or queued while this worker was stopped.
	Poll time.Duration
	// Concurrency bounds sends in flight.
	Concurrency int
	// SendTimeout bounds one send, connection included. It is a context
	// deadline on the wall clock: it bounds a conversation over the
	// network, and is no rule of ours.
	SendTimeout time.Duration
}

// DefaultConfig is the configuration without overrides: five attempts
// over about a minute and a quarter, well inside a code's ten minutes.
var DefaultConfig = Config{MaxAttempts: 5, BaseBackoff: 5 * time.Second, Lease: 2 * time.Minute, Poll: time.Second, Concurrency: 8, SendTimeout: 30 * time.Second}

// bookkeepingTimeout bounds a claim or a record, which run to the end even
// when the worker stops: a sent email must not be left looking unsent.
const bookkeepingTimeout = 10 * time.Second

// Worker resolves requests for login codes and drains the login email
// outbox. Several workers, in one process or many, may run at once.
type Worker struct {
	store  *db.Store
	clock  db.Clock
	sender Sender
	cfg    Config
	log    *slog.Logger
	// Metrics, when set before Run, counts sent and failed emails.
	Metrics Metrics
	wake    chan struct{}
	// freed hears of a send that finished, for a worker waiting for room.
	freed chan struct{}
	// signals, nil outside tests, tell a test where the worker has got to.
	signals *signals
}

// NewWorker returns a worker sending through sender. clock is the store's:
// leases, backoffs and polls run on it.
func NewWorker(store *db.Store, clock db.Clock, sender Sender, cfg Config, log *slog.Logger) *Worker {
	return &Worker{
		store:  store,
		clock:  clock,
		sender: sender,
		cfg:    cfg,
		log:    log,
		wake:   make(chan struct{}, 1),
		freed:  make(chan struct{}, 1),
	}
}

// Wake tells the worker a request for a code or an email was queued.
func (w *Worker) Wake() { poke(w.wake) }

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends, then waits for the sends in flight, which the
// stop cuts short: they are recorded as postponed, due again at once for
// the next worker, without using an attempt.
func (w *Worker) Run(ctx context.Context) {
	var sends sync.WaitGroup
	defer sends.Wait()
	// One token for each send in flight.
	inFlight := make(chan struct{}, w.cfg.Concurrency)
	for ctx.Err() == nil {
		// Requests first: the emails they queue go out in this round.
		moreRequests := w.resolve(ctx)
		room := cap(inFlight) - len(inFlight)
		if room == 0 {
			select {
			case <-ctx.Done():
			case <-w.freed:
			}
			continue
		}
		batch := w.claim(ctx, room)
		for _, e := range batch {
			if e.Status == db.LoginEmailFailed {
				w.failed(e, e.LastError)
				continue
			}
			inFlight <- struct{}{}
			sends.Go(func() {
				defer func() {
					<-inFlight
					poke(w.freed)
				}()
				w.deliver(ctx, e)
			})
		}
		if moreRequests || len(batch) == room {
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

// resolveBatch bounds the requests for codes one round resolves, so that
// a burst of them does not hold up the sending of the emails it queued.
const resolveBatch = 100

// resolve turns queued requests for codes into codes and emails, and
// reports whether more may be waiting. Like a claim it is not cut off by
// the stop: each request is one short transaction.
func (w *Worker) resolve(ctx context.Context) (more bool) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	got, err := w.store.ResolveLoginRequests(cctx, db.System, resolveBatch)
	if err != nil {
		w.log.Error("resolve login requests", "err", err)
	}
	for _, id := range got.Dropped {
		// The line names the request's row only: nothing of who asked.
		w.log.Error("login request dropped", "id", id, "error", "sealed email does not open")
	}
	return err == nil && got.Taken == resolveBatch
}

// claim takes up to limit due emails. A claim is not cut off by the stop:
// cancelled mid-way, its transaction would hold the rows locked until the
// connection's close reached the database. What it took once the worker
// is stopping is put back.
func (w *Worker) claim(ctx context.Context, limit int) []db.LoginEmail {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	batch, err := w.store.ClaimLoginEmails(cctx, db.System, limit, w.cfg.Lease, w.cfg.MaxAttempts)
	if err != nil {
		w.log.Error("claim login emails", "err", err)
	}
	if ctx.Err() == nil {
		return batch
	}
	for _, e := range batch {
		if e.Status == db.LoginEmailSending {
			w.record(e, db.LoginEmailOutcome{ID: e.ID, Result: db.LoginEmailPostponed, At: w.clock.Now()})
		}
	}
	return nil
}

// deliver sends one claimed email and records what became of it.
func (w *Worker) deliver(ctx context.Context, e db.LoginEmail) {
	sctx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	err := w.sender.Send(sctx, e)
	cancel()
	o := db.LoginEmailOutcome{ID: e.ID, At: w.clock.Now()}
	var sendErr *SendError
	class := unclassified
	if errors.As(err, &sendErr) {
		class = sendErr.Class
	}
	var retryIn time.Duration
	switch {
	case err == nil:
		o.Result = db.LoginEmailDelivered
	case ctx.Err() != nil:
		// The server is stopping: not the email's fault.
		o.Result = db.LoginEmailPostponed
	case sendErr != nil && sendErr.Permanent:
		o.Result, o.Error = db.LoginEmailRejected, class
	default:
		retryIn = w.backoff(e.Attempts)
		o.Result, o.Error, o.At = db.LoginEmailRetry, class, o.At.Add(retryIn)
	}
	switch w.record(e, o) {
	case db.LoginEmailSent:
		// Counted before the line is logged: a reader of the log finds it
		// counted already.
		if w.Metrics != nil {
			w.Metrics.LoginEmailSent()
		}
		w.log.Info("login email sent", "id", e.ID, "attempt", e.Attempts)
	case db.LoginEmailFailed:
		w.failed(e, class)
	case db.LoginEmailPending:
		if o.Result == db.LoginEmailRetry {
			w.log.Warn("login email not sent; will retry", "id", e.ID, "attempt", e.Attempts, "in", retryIn, "error", class)
		}
	}
}

// record writes an outcome and returns the email's status now, or "" when
// it could not be written (the email then comes back after its lease).
func (w *Worker) record(e db.LoginEmail, o db.LoginEmailOutcome) db.LoginEmailStatus {
	ctx, cancel := context.WithTimeout(context.Background(), bookkeepingTimeout)
	defer cancel()
	status, err := w.store.RecordLoginEmail(ctx, db.System, o, w.cfg.MaxAttempts)
	if err != nil {
		w.log.Error("record login email", "id", e.ID, "err", err)
		status = ""
	}
	w.signals.record(status)
	return status
}

// failed reports an email that will never be sent. The line names the
// outbox row only: whoever reads the log learns nothing of who asked.
func (w *Worker) failed(e db.LoginEmail, class string) {
	if w.Metrics != nil {
		w.Metrics.LoginEmailFailed()
	}
	w.log.Error("login email not delivered", "id", e.ID, "attempts", e.Attempts, "error", class)
	w.signals.fail(e.ID)
}

// backoff is exponential with full jitter in its upper half.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.BaseBackoff << min(max(attempt-1, 0), 10)
	return d/2 + rand.N(d/2+1)
}
