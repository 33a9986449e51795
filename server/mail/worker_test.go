package mail

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/mail/mailtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// waitTimeout bounds every wait of a test on the worker.
const waitTimeout = mailtest.WaitTimeout

const testFrom = "Picketline <no-reply@union.example>"

type fixture struct {
	*dbtest.Bundle
	smtp    *mailtest.Server
	metrics *counter
	log     *syncBuffer
}

func setup(t *testing.T, o mailtest.Options) *fixture {
	t.Helper()
	t.Parallel()
	return &fixture{Bundle: dbtest.Setup(t), smtp: mailtest.Start(t, o), metrics: &counter{}, log: &syncBuffer{}}
}

// counter is the worker's Metrics.
type counter struct{ sent, failed atomic.Int64 }

func (c *counter) LoginEmailSent()   { c.sent.Add(1) }
func (c *counter) LoginEmailFailed() { c.failed.Add(1) }

// syncBuffer is a log destination safe for the worker's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (f *fixture) sender() *SMTP {
	f.T.Helper()
	server, err := ParseServer(f.smtp.URL)
	if err != nil {
		f.T.Fatal(err)
	}
	from, err := ParseFrom(testFrom)
	if err != nil {
		f.T.Fatal(err)
	}
	return NewSMTP(server, from, f.smtp.RootCAs)
}

// worker returns a worker through the fixture's SMTP server, with signals,
// woken by the store after each commit that queues an email.
func (f *fixture) worker(cfg Config) *Worker {
	w := NewWorker(f.Store, f.Clock, f.sender(), cfg, slog.New(slog.NewJSONHandler(f.log, nil)))
	w.Metrics = f.metrics
	w.signals = &signals{recorded: make(chan db.LoginEmailStatus, 16), failed: make(chan int64, 16)}
	f.Store.SetNotifier(wakeNotifier{w: w})
	return w
}

// wakeNotifier wakes the worker as the realtime notifier does in the server.
type wakeNotifier struct {
	db.NoNotifier
	w *Worker
}

func (n wakeNotifier) LoginEmailQueued() { n.w.Wake() }

// run runs w until the returned stop is called (or the test ends); stop
// returns once Run has.
func (f *fixture) run(w *Worker) (stop func()) {
	ctx, cancel := context.WithCancel(f.Ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(waitTimeout):
				f.T.Errorf("the worker did not stop within %v", waitTimeout)
			}
		})
	}
	f.T.Cleanup(stop)
	return stop
}

// recorded waits for the worker to record an outcome.
func (f *fixture) recorded(w *Worker) db.LoginEmailStatus {
	f.T.Helper()
	select {
	case s := <-w.signals.recorded:
		return s
	case <-time.After(waitTimeout):
		f.T.Fatalf("the worker recorded nothing within %v", waitTimeout)
		return ""
	}
}

// failure waits for the worker to report an email it gave up on, and
// returns the email's id.
func (f *fixture) failure(w *Worker) int64 {
	f.T.Helper()
	select {
	case id := <-w.signals.failed:
		return id
	case <-time.After(waitTimeout):
		f.T.Fatalf("the worker reported no failure within %v", waitTimeout)
		return 0
	}
}

// afterBackoff waits for the worker to wait on the clock, then moves the
// clock past the longest backoff before the attempt after attempt.
func (f *fixture) afterBackoff(cfg Config, attempt int) {
	f.T.Helper()
	ctx, cancel := context.WithTimeout(f.Ctx, waitTimeout)
	defer cancel()
	if err := f.Clock.BlockUntilContext(ctx, 1); err != nil {
		f.T.Fatalf("the worker did not wait for its poll: %v", err)
	}
	f.Clock.Advance(cfg.BaseBackoff << (attempt - 1))
}

func (f *fixture) request(m *db.Member) {
	f.T.Helper()
	if err := f.Store.RequestLoginCode(f.Ctx, m.Email, "192.0.2.1"); err != nil {
		f.T.Fatal(err)
	}
}

var codePattern = regexp.MustCompile(`\b\d{6}\b`)

// signIn reads the code from the email that arrived and signs in with it.
func (f *fixture) signIn(m *db.Member, msg *mailtest.Message) string {
	f.T.Helper()
	code := codePattern.FindString(msg.Text)
	if code == "" {
		f.T.Fatalf("no code in the email:\n%s", msg.Text)
	}
	if _, err := f.Store.VerifyLoginCode(f.Ctx, m.Email, code, "192.0.2.1"); err != nil {
		f.T.Fatalf("the emailed code %s does not sign in: %v", code, err)
	}
	return code
}

// row is the member's one outbox row.
func (f *fixture) row(m *db.Member) (status db.LoginEmailStatus, hasCode bool, attempts int, lastError string) {
	f.T.Helper()
	err := f.Pool.QueryRow(f.Ctx, `SELECT status, sealed_code IS NOT NULL, attempts, COALESCE(last_error, '') FROM login_emails WHERE member_id = $1`, m.ID).
		Scan(&status, &hasCode, &attempts, &lastError)
	if err != nil {
		f.T.Fatal(err)
	}
	return status, hasCode, attempts, lastError
}

func (f *fixture) wantRow(m *db.Member, status db.LoginEmailStatus, attempts int, lastError string) {
	f.T.Helper()
	gotStatus, hasCode, gotAttempts, gotError := f.row(m)
	if gotStatus != status || gotAttempts != attempts || gotError != lastError || hasCode != (status == db.LoginEmailPending) {
		f.T.Fatalf("outbox row: %s, %d attempts, error %q, code kept %v; want %s, %d attempts, error %q",
			gotStatus, gotAttempts, gotError, hasCode, status, attempts, lastError)
	}
}

func TestWorkerEmailsACodeThatSignsIn(t *testing.T) {
	f := setup(t, mailtest.Options{})
	w := f.worker(DefaultConfig)
	f.run(w)
	m := f.Member(db.RoleMember)
	f.request(m)
	msg := f.smtp.Next(t)
	if got := f.recorded(w); got != db.LoginEmailSent {
		t.Fatalf("recorded %s, want SENT", got)
	}
	code := f.signIn(m, msg)

	if msg.From != "no-reply@union.example" || len(msg.To) != 1 || msg.To[0] != m.Email {
		t.Errorf("envelope from %q to %q, want no-reply@union.example to %s", msg.From, msg.To, m.Email)
	}
	if got := msg.Header.Get("Subject"); got != Subject || strings.Contains(got, code) {
		t.Errorf("subject %q, want %q without the code", got, Subject)
	}
	if got := msg.Header.Get("From"); !strings.Contains(got, "no-reply@union.example") {
		t.Errorf("From %q", got)
	}
	for form, body := range map[string]string{"text": msg.Text, "HTML": msg.HTML} {
		for _, want := range []string{code, "expires in 10 minutes", "will never ask you for this code, by phone"} {
			if !strings.Contains(body, want) {
				t.Errorf("the %s part does not say %q:\n%s", form, want, body)
			}
		}
	}
	f.wantRow(m, db.LoginEmailSent, 1, "")
	if sent, failed := f.metrics.sent.Load(), f.metrics.failed.Load(); sent != 1 || failed != 0 {
		t.Errorf("counted %d sent and %d failed, want 1 and 0", sent, failed)
	}
	if strings.Contains(f.log.String(), m.Email) || strings.Contains(f.log.String(), code) {
		t.Errorf("the log holds the address or the code:\n%s", f.log.String())
	}
}

func TestWorkerSendsWhatWasQueuedWhileNoneRan(t *testing.T) {
	f := setup(t, mailtest.Options{})
	m := f.Member(db.RoleMember)
	f.request(m)
	// The worker starts after the commit, hears no wake-up, and finds it.
	w := f.worker(DefaultConfig)
	f.run(w)
	f.signIn(m, f.smtp.Next(t))
	f.recorded(w)
	f.wantRow(m, db.LoginEmailSent, 1, "")
}

func TestStoppingWorkerLeavesTheEmailToTheNext(t *testing.T) {
	f := setup(t, mailtest.Options{})
	first := f.worker(DefaultConfig)
	stop := f.run(first)
	held, _ := f.smtp.HoldData()
	m := f.Member(db.RoleMember)
	f.request(m)
	select {
	case <-held:
	case <-time.After(waitTimeout):
		t.Fatal("the email never reached the server")
	}
	// Stopped mid-conversation: the send is cut short, and no attempt used.
	stop()
	if got := f.recorded(first); got != db.LoginEmailPending {
		t.Fatalf("the stopped send was recorded %s, want PENDING", got)
	}
	f.wantRow(m, db.LoginEmailPending, 0, "")

	next := f.worker(DefaultConfig)
	f.run(next)
	f.signIn(m, f.smtp.Next(t))
	f.recorded(next)
	f.wantRow(m, db.LoginEmailSent, 1, "")
}

func TestWorkerRetriesARefusedSend(t *testing.T) {
	f := setup(t, mailtest.Options{})
	f.smtp.Refuse(mailtest.Temporary)
	w := f.worker(DefaultConfig)
	f.run(w)
	m := f.Member(db.RoleMember)
	f.request(m)
	if got := f.recorded(w); got != db.LoginEmailPending {
		t.Fatalf("the refused send was recorded %s, want PENDING for a retry", got)
	}
	f.wantRow(m, db.LoginEmailPending, 1, "RCPT TO 451 4.3.0")
	f.afterBackoff(DefaultConfig, 1)
	f.signIn(m, f.smtp.Next(t))
	f.recorded(w)
	f.wantRow(m, db.LoginEmailSent, 2, "RCPT TO 451 4.3.0")
	if got := f.smtp.Attempts(); got != 2 {
		t.Errorf("the server was offered the email %d times, want 2", got)
	}
}

func TestWorkerGivesUpAfterTheLastAttempt(t *testing.T) {
	f := setup(t, mailtest.Options{})
	f.smtp.RefuseAll(mailtest.Temporary)
	cfg := DefaultConfig
	cfg.MaxAttempts = 3
	w := f.worker(cfg)
	f.run(w)
	m := f.Member(db.RoleMember)
	f.request(m)
	for attempt := 1; attempt < cfg.MaxAttempts; attempt++ {
		if got := f.recorded(w); got != db.LoginEmailPending {
			t.Fatalf("attempt %d recorded %s, want PENDING", attempt, got)
		}
		f.afterBackoff(cfg, attempt)
	}
	if got := f.recorded(w); got != db.LoginEmailFailed {
		t.Fatalf("the last attempt recorded %s, want FAILED", got)
	}
	id := f.failure(w)
	f.wantRow(m, db.LoginEmailFailed, 3, "RCPT TO 451 4.3.0")
	if sent, failed := f.metrics.sent.Load(), f.metrics.failed.Load(); sent != 0 || failed != 1 {
		t.Errorf("counted %d sent and %d failed, want 0 and 1", sent, failed)
	}
	log := f.log.String()
	if !regexp.MustCompile(`"msg":"login email not delivered","id":` + strconv.FormatInt(id, 10) + `,"attempts":3,"error":"RCPT TO 451 4.3.0"`).MatchString(log) {
		t.Errorf("no failure line for email %d in the log:\n%s", id, log)
	}
	if strings.Contains(log, m.Email) || strings.Contains(log, m.ID) {
		t.Errorf("the log names the member:\n%s", log)
	}
}

func TestWorkerDoesNotRetryAPermanentRefusal(t *testing.T) {
	f := setup(t, mailtest.Options{})
	f.smtp.Refuse(mailtest.Permanent)
	w := f.worker(DefaultConfig)
	f.run(w)
	m := f.Member(db.RoleMember)
	f.request(m)
	if got := f.recorded(w); got != db.LoginEmailFailed {
		t.Fatalf("recorded %s, want FAILED", got)
	}
	f.failure(w)
	f.wantRow(m, db.LoginEmailFailed, 1, "RCPT TO 550 5.1.1")
	if failed := f.metrics.failed.Load(); failed != 1 {
		t.Errorf("counted %d failed, want 1", failed)
	}
}

func TestWorkerWaitsForASlowServer(t *testing.T) {
	f := setup(t, mailtest.Options{})
	// Slow to take the message, yet well inside the send's timeout.
	f.smtp.DelayData(1500 * time.Millisecond)
	w := f.worker(DefaultConfig)
	f.run(w)
	m := f.Member(db.RoleMember)
	f.request(m)
	f.signIn(m, f.smtp.Next(t))
	if got := f.recorded(w); got != db.LoginEmailSent {
		t.Fatalf("recorded %s, want SENT", got)
	}
	f.wantRow(m, db.LoginEmailSent, 1, "")
}

func TestWorkerGivesUpOnAStalledServerAndRetries(t *testing.T) {
	f := setup(t, mailtest.Options{})
	cfg := DefaultConfig
	cfg.SendTimeout = 300 * time.Millisecond
	f.smtp.HoldData()
	w := f.worker(cfg)
	f.run(w)
	m := f.Member(db.RoleMember)
	f.request(m)
	if got := f.recorded(w); got != db.LoginEmailPending {
		t.Fatalf("the stalled send was recorded %s, want PENDING for a retry", got)
	}
	f.wantRow(m, db.LoginEmailPending, 1, "timeout")
	f.afterBackoff(cfg, 1)
	f.signIn(m, f.smtp.Next(t))
	f.recorded(w)
}

// A stranger's request is resolved like a member's, and sends nothing: the
// worker takes requests oldest first, so once the member's email asked for
// after it has arrived, the stranger's request is done with.
func TestWorkerSendsNothingForAStranger(t *testing.T) {
	f := setup(t, mailtest.Options{})
	w := f.worker(DefaultConfig)
	f.run(w)
	if err := f.Store.RequestLoginCode(f.Ctx, "stranger@example.org", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	m := f.Member(db.RoleMember)
	f.request(m)
	f.signIn(m, f.smtp.Next(t))
	f.recorded(w)
	if got := f.smtp.Attempts(); got != 1 {
		t.Fatalf("the mail server was offered %d messages, want the member's alone", got)
	}
	f.wantNoRequests()
}

// A request sealed under another secret is dropped and reported by its id
// alone; the requests after it are resolved.
func TestWorkerDropsAnUnopenableRequestAndGoesOn(t *testing.T) {
	f := setup(t, mailtest.Options{})
	w := f.worker(DefaultConfig)
	stuck, m := f.Member(db.RoleMember), f.Member(db.RoleMember)
	other := db.NewStore(f.Pool, f.Clock, []byte("another pepper"))
	if err := other.RequestLoginCode(f.Ctx, stuck.Email, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	f.request(m)
	f.run(w)
	f.signIn(m, f.smtp.Next(t))
	f.recorded(w)
	f.wantNoRequests()
	log := f.log.String()
	if !regexp.MustCompile(`"msg":"login request dropped","id":\d+,"error":"sealed email does not open"`).MatchString(log) {
		t.Errorf("no line for the dropped request in the log:\n%s", log)
	}
	if strings.Contains(log, stuck.Email) || strings.Contains(log, m.Email) {
		t.Errorf("the log holds an address:\n%s", log)
	}
}

func (f *fixture) wantNoRequests() {
	f.T.Helper()
	var n int
	if err := f.Pool.QueryRow(f.Ctx, `SELECT count(*) FROM login_requests`).Scan(&n); err != nil {
		f.T.Fatal(err)
	}
	if n != 0 {
		f.T.Fatalf("%d login requests left in the queue, want none", n)
	}
}
