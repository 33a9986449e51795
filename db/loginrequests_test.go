package db_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// statementLog records the SQL of every statement a pool sends while it
// is on: a pgx QueryTracer.
type statementLog struct {
	mu  sync.Mutex
	on  bool
	sql []string
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.on {
		l.sql = append(l.sql, strings.Join(strings.Fields(data.SQL), " "))
	}
	return ctx
}

func (l *statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// during returns the statements sent while fn ran.
func (l *statementLog) during(fn func()) []string {
	l.mu.Lock()
	l.on, l.sql = true, nil
	l.mu.Unlock()
	fn()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on = false
	return l.sql
}

// tracedStore is a store on the bundle's database through a pool of its
// own whose statements log records.
func tracedStore(t *testing.T, b *dbtest.Bundle) (*db.Store, *statementLog) {
	t.Helper()
	log := &statementLog{}
	cfg := b.Pool.Config()
	cfg.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(b.Ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return db.NewStore(pool, b.Clock, dbtest.Pepper), log
}

// TestLoginTakesTheSameStatementsForMembersAndStrangers: how long an
// answer takes must not tell whether an email is a member's, so asking
// for a code sends the database the same statements for a member as for
// a stranger, and so does trying a wrong code for a member and any code
// for a stranger.
func TestLoginTakesTheSameStatementsForMembersAndStrangers(t *testing.T) {
	b := setup(t)
	store, log := tracedStore(t, b)
	m := b.Member(db.RoleMember)
	request := func(email string) func() {
		return func() {
			if err := store.RequestLoginCode(b.Ctx, email, "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Once before recording, so that neither call pays for a connection.
	request("warm-up@example.org")()

	member := log.during(request(m.Email))
	stranger := log.during(request("stranger@example.org"))
	if len(member) == 0 {
		t.Fatal("no statements recorded")
	}
	if diff := cmp.Diff(member, stranger); diff != "" {
		t.Errorf("requestLoginCode's statements for a member (-) and a stranger (+):\n%s", diff)
	}

	code := requestCode(t, b, m.Email)
	verify := func(email, code string) func() {
		return func() {
			_, err := store.VerifyLoginCode(b.Ctx, email, code, "192.0.2.1")
			dbtest.WantCode(t, err, db.CodeUnauthenticated)
		}
	}
	wrong := log.during(verify(m.Email, wrongCode(code)))
	unknown := log.during(verify("stranger@example.org", code))
	if diff := cmp.Diff(wrong, unknown); diff != "" {
		t.Errorf("verifyLoginCode's statements for a member's wrong code (-) and a stranger (+):\n%s", diff)
	}
	// The wrong try was counted all the same: four more and the code is
	// spent.
	for range db.LoginCodeMaxAttempts - 1 {
		verify(m.Email, wrongCode(code))()
	}
	verify(m.Email, code)()
}

func TestLoginRequestIsQueuedSealedForMembersAndStrangersAlike(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	for _, email := range []string{m.Email, "stranger@example.org"} {
		if err := b.Store.RequestLoginCode(b.Ctx, email, "198.51.100.7"); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := queryStrings(b.Ctx, b.Pool, `SELECT row_to_json(r)::text FROM login_requests r ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("queued %d requests, want one for each", len(rows))
	}
	// Neither the address asked for nor the caller's in clear (JSON
	// escapes nothing in either).
	for _, row := range rows {
		for _, secret := range []string{m.Email, "stranger@example.org", "198.51.100.7"} {
			if strings.Contains(row, secret) {
				t.Fatalf("a queued request holds %q: %s", secret, row)
			}
		}
	}
	var codes, emails int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT (SELECT count(*) FROM login_codes), (SELECT count(*) FROM login_emails)`).Scan(&codes, &emails); err != nil {
		t.Fatal(err)
	}
	if codes != 0 || emails != 0 {
		t.Fatalf("the requests made %d codes and %d emails before the worker resolved them, want none", codes, emails)
	}
	if got := resolveRequests(t, b); got.Taken != 2 || len(got.Dropped) != 0 {
		t.Fatalf("resolved %+v, want both requests", got)
	}
	if e := claimEmails(t, b); len(e) != 1 || e[0].MemberID != m.ID {
		t.Fatalf("claimed %+v, want the member's email alone", e)
	}
	wantRequests(t, b, 0)
}

func TestUnopenableLoginRequestIsDroppedAlone(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	// Sealed under another secret, as after JWT_SECRET changed.
	other := db.NewStore(b.Pool, b.Clock, []byte("another pepper"))
	if err := other.RequestLoginCode(b.Ctx, m.Email, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(time.Second)
	code := requestCode(t, b, m.Email)
	if _, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, code, "192.0.2.1"); err != nil {
		t.Fatalf("the request after the unopenable one: %v", err)
	}
	wantRequests(t, b, 0)
	var emails int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM login_emails`).Scan(&emails); err != nil {
		t.Fatal(err)
	}
	if emails != 1 {
		t.Fatalf("%d login emails, want the one of the request that opened", emails)
	}
}

func TestUnopenableLoginRequestIsReported(t *testing.T) {
	b := setup(t)
	other := db.NewStore(b.Pool, b.Clock, []byte("another pepper"))
	if err := other.RequestLoginCode(b.Ctx, b.Member(db.RoleMember).Email, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if got := resolveRequests(t, b); got.Taken != 1 || len(got.Dropped) != 1 {
		t.Fatalf("resolved %+v, want the one request dropped", got)
	}
}

func TestLoginRequestResolvedTooLateMakesNoCode(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	if err := b.Store.RequestLoginCode(b.Ctx, m.Email, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(db.LoginCodeTTL)
	if got := resolveRequests(t, b); got.Taken != 1 {
		t.Fatalf("resolved %+v, want the request taken", got)
	}
	var codes, emails int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT (SELECT count(*) FROM login_codes), (SELECT count(*) FROM login_emails)`).Scan(&codes, &emails); err != nil {
		t.Fatal(err)
	}
	if codes != 0 || emails != 0 {
		t.Fatalf("a request as old as a code's lifetime made %d codes and %d emails, want none", codes, emails)
	}
}

// Two workers may resolve one member's requests in either order; the
// newest request's code stays the only one that works, and the older
// request, resolved last, sends nothing.
func TestOlderLoginRequestResolvedLastMakesNothing(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	for range 2 {
		if err := b.Store.RequestLoginCode(b.Ctx, m.Email, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		b.Clock.Advance(time.Second)
	}
	// Another worker holds the older request: this one takes the newer.
	held, err := b.Pool.Begin(b.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback(b.Ctx)
	if _, err := held.Exec(b.Ctx, `SELECT id FROM login_requests ORDER BY id LIMIT 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	if got := resolveRequests(t, b); got.Taken != 1 {
		t.Fatalf("resolved %+v beside the held request, want the newer one", got)
	}
	if err := held.Rollback(b.Ctx); err != nil {
		t.Fatal(err)
	}
	if got := resolveRequests(t, b); got.Taken != 1 {
		t.Fatalf("resolved %+v once released, want the older one", got)
	}
	emails := claimEmails(t, b)
	if len(emails) != 1 {
		t.Fatalf("claimed %+v, want the newer request's email alone", emails)
	}
	if _, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, emails[0].Code, "192.0.2.1"); err != nil {
		t.Fatalf("the newer request's code: %v", err)
	}
}

func TestWorkersNeverResolveTheSameLoginRequest(t *testing.T) {
	b := setup(t)
	const n = 40
	for i := range n {
		// Each from an address of its own, under the per-address limit.
		if err := b.Store.RequestLoginCode(b.Ctx, b.Member(db.RoleMember).Email, "192.0.2."+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	var taken atomic.Int64
	drainTogether(t, 3, func() (int, error) {
		got, err := b.Store.ResolveLoginRequests(b.Ctx, db.System, 3)
		taken.Add(int64(got.Taken))
		return got.Taken, err
	})
	var requests, emails int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT (SELECT count(*) FROM login_requests), (SELECT count(*) FROM login_emails)`).Scan(&requests, &emails); err != nil {
		t.Fatal(err)
	}
	if taken.Load() != n || requests != 0 || emails != n {
		t.Fatalf("%d requests taken, %d emails queued and %d requests left, want every request taken once", taken.Load(), emails, requests)
	}
}

func wantRequests(t *testing.T, b *dbtest.Bundle, want int) {
	t.Helper()
	var n int
	if err := b.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM login_requests`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%d login requests queued, want %d", n, want)
	}
}

// drainTogether runs take in eight goroutines at once, as the workers of
// several replicas do, each until take gets fewer than batch rows or
// fails.
func drainTogether(t *testing.T, batch int, take func() (int, error)) {
	t.Helper()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				n, err := take()
				if err != nil {
					t.Error(err)
					return
				}
				if n < batch {
					return
				}
			}
		})
	}
	wg.Wait()
}
