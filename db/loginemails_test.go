package db_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// The mail worker's settings in these tests.
const (
	lease       = time.Minute
	maxAttempts = 3
)

// askForCode asks for a login code for email from clientAddr and resolves
// the request, as the mail worker does once the request has committed.
func askForCode(t *testing.T, b *dbtest.Bundle, email, clientAddr string) {
	t.Helper()
	if err := b.Store.RequestLoginCode(b.Ctx, email, clientAddr); err != nil {
		t.Fatal(err)
	}
	resolveRequests(t, b)
}

func resolveRequests(t *testing.T, b *dbtest.Bundle) db.LoginRequestsResolved {
	t.Helper()
	got, err := b.Store.ResolveLoginRequests(b.Ctx, db.System, 100)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// requestCode asks for a login code for email and returns it as the mail
// worker gets it from the outbox.
func requestCode(t *testing.T, b *dbtest.Bundle, email string) string {
	t.Helper()
	askForCode(t, b, email, "192.0.2.1")
	emails := claimEmails(t, b)
	if len(emails) != 1 || emails[0].Status != db.LoginEmailSending {
		t.Fatalf("claimed %+v, want one email to send", emails)
	}
	return emails[0].Code
}

func claimEmails(t *testing.T, b *dbtest.Bundle) []db.LoginEmail {
	t.Helper()
	emails, err := b.Store.ClaimLoginEmails(b.Ctx, db.System, 10, lease, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	return emails
}

func record(t *testing.T, b *dbtest.Bundle, o db.LoginEmailOutcome) db.LoginEmailStatus {
	t.Helper()
	status, err := b.Store.RecordLoginEmail(b.Ctx, db.System, o, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

// loginEmailRow is an outbox row as the database holds it.
type loginEmailRow struct {
	Status   db.LoginEmailStatus
	HasCode  bool
	Attempts int
	Sent     bool
	Error    string
}

func loginEmailRows(t *testing.T, b *dbtest.Bundle) []loginEmailRow {
	t.Helper()
	rows, err := b.Pool.Query(b.Ctx, `SELECT status, sealed_code IS NOT NULL, attempts, sent_at IS NOT NULL, COALESCE(last_error, '') FROM login_emails ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []loginEmailRow
	for rows.Next() {
		var r loginEmailRow
		if err := rows.Scan(&r.Status, &r.HasCode, &r.Attempts, &r.Sent, &r.Error); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantRows(t *testing.T, b *dbtest.Bundle, want ...loginEmailRow) {
	t.Helper()
	if diff := cmp.Diff(want, loginEmailRows(t, b)); diff != "" {
		t.Fatalf("login_emails (-want +got):\n%s", diff)
	}
}

func TestLoginEmailIsQueuedWithTheCodeSealed(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	askForCode(t, b, m.Email, "192.0.2.1")
	var row string
	if err := b.Pool.QueryRow(b.Ctx, `SELECT row_to_json(e)::text FROM login_emails e`).Scan(&row); err != nil {
		t.Fatal(err)
	}
	emails := claimEmails(t, b)
	if len(emails) != 1 {
		t.Fatalf("claimed %+v, want the one email", emails)
	}
	e := emails[0]
	if e.MemberID != m.ID || e.Email != m.Email || e.Attempts != 1 || !e.ExpiresAt.Equal(b.Clock.Now().Add(db.LoginCodeTTL)) {
		t.Fatalf("claimed %+v for member %s <%s>", e, m.ID, m.Email)
	}
	// Neither the address nor the code in clear: a copy of the table gives
	// away no member's address and lets nobody sign in.
	for _, secret := range []string{m.Email, e.Code} {
		if strings.Contains(row, secret) {
			t.Fatalf("the outbox row holds %q: %s", secret, row)
		}
	}
	if _, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, e.Code, "192.0.2.1"); err != nil {
		t.Fatalf("the emailed code does not sign in: %v", err)
	}
}

func TestLoginEmailIsSentToTheAddressOfTheMomentItGoes(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	askForCode(t, b, m.Email, "192.0.2.1")
	moved := "moved." + m.Email
	if _, err := b.Store.UpdateMyContact(b.Ctx, b.Actor(m), db.ContactUpdate{Email: &moved}); err != nil {
		t.Fatal(err)
	}
	if emails := claimEmails(t, b); len(emails) != 1 || emails[0].Email != moved {
		t.Fatalf("claimed %+v, want the email to %s", emails, moved)
	}
}

func TestLoginEmailHoldsNoCodeOnceFinal(t *testing.T) {
	b := setup(t)
	for range 3 {
		askForCode(t, b, b.Member(db.RoleMember).Email, "192.0.2.1")
	}
	emails := claimEmails(t, b)
	if len(emails) != 3 {
		t.Fatalf("claimed %d emails, want 3", len(emails))
	}
	wantRows(t, b,
		loginEmailRow{Status: db.LoginEmailSending, HasCode: true, Attempts: 1},
		loginEmailRow{Status: db.LoginEmailSending, HasCode: true, Attempts: 1},
		loginEmailRow{Status: db.LoginEmailSending, HasCode: true, Attempts: 1})
	statuses := []db.LoginEmailStatus{
		record(t, b, db.LoginEmailOutcome{ID: emails[0].ID, Result: db.LoginEmailDelivered}),
		record(t, b, db.LoginEmailOutcome{ID: emails[1].ID, Result: db.LoginEmailRejected, Error: "RCPT TO 550 5.1.1"}),
		record(t, b, db.LoginEmailOutcome{ID: emails[2].ID, Result: db.LoginEmailRetry, At: b.Clock.Now().Add(time.Second), Error: "timeout"}),
	}
	if diff := cmp.Diff([]db.LoginEmailStatus{db.LoginEmailSent, db.LoginEmailFailed, db.LoginEmailPending}, statuses); diff != "" {
		t.Fatalf("statuses recorded (-want +got):\n%s", diff)
	}
	wantRows(t, b,
		loginEmailRow{Status: db.LoginEmailSent, Attempts: 1, Sent: true},
		loginEmailRow{Status: db.LoginEmailFailed, Attempts: 1, Error: "RCPT TO 550 5.1.1"},
		loginEmailRow{Status: db.LoginEmailPending, HasCode: true, Attempts: 1, Error: "timeout"})

	// The database holds the rule too: no final email keeps its code.
	_, err := b.Pool.Exec(b.Ctx, `UPDATE login_emails SET status = 'SENT' WHERE status = 'PENDING'`)
	if _, constraint := pgCode(err); constraint != "login_emails_code_only_while_unsent" {
		t.Fatalf("a sent email with its code: %v, want login_emails_code_only_while_unsent refusing it", err)
	}
}

func TestLoginEmailIsRetriedWithBackoffThenFails(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	askForCode(t, b, m.Email, "192.0.2.1")
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		emails := claimEmails(t, b)
		if len(emails) != 1 || emails[0].Attempts != attempt || emails[0].Code == "" {
			t.Fatalf("attempt %d claimed %+v", attempt, emails)
		}
		want := db.LoginEmailPending
		if attempt == maxAttempts {
			want = db.LoginEmailFailed
		}
		if got := record(t, b, db.LoginEmailOutcome{ID: emails[0].ID, Result: db.LoginEmailRetry, At: b.Clock.Now().Add(5 * time.Second), Error: "RCPT TO 451 4.3.0"}); got != want {
			t.Fatalf("attempt %d recorded %s, want %s", attempt, got, want)
		}
		if early := claimEmails(t, b); len(early) != 0 {
			t.Fatalf("claimed %+v during the backoff", early)
		}
		b.Clock.Advance(5 * time.Second)
	}
	wantRows(t, b, loginEmailRow{Status: db.LoginEmailFailed, Attempts: maxAttempts, Error: "RCPT TO 451 4.3.0"})
	if emails := claimEmails(t, b); len(emails) != 0 {
		t.Fatalf("a failed email was claimed again: %+v", emails)
	}
}

func TestPostponedLoginEmailUsesNoAttempt(t *testing.T) {
	b := setup(t)
	askForCode(t, b, b.Member(db.RoleMember).Email, "192.0.2.1")
	for range maxAttempts + 1 {
		emails := claimEmails(t, b)
		if len(emails) != 1 || emails[0].Attempts != 1 {
			t.Fatalf("claimed %+v, want the email on its first attempt", emails)
		}
		if got := record(t, b, db.LoginEmailOutcome{ID: emails[0].ID, Result: db.LoginEmailPostponed, At: b.Clock.Now()}); got != db.LoginEmailPending {
			t.Fatalf("postponed: %s", got)
		}
	}
}

func TestLoginEmailOfAWorkerThatDiedGoesOutAgain(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	code := requestCode(t, b, m.Email)
	// The worker that claimed it never records: it died.
	if emails := claimEmails(t, b); len(emails) != 0 {
		t.Fatalf("a claimed email was claimed again within its lease: %+v", emails)
	}
	b.Clock.Advance(lease)
	emails := claimEmails(t, b)
	if len(emails) != 1 || emails[0].Attempts != 2 || emails[0].Code != code {
		t.Fatalf("after the lease claimed %+v, want the email again with code %s", emails, code)
	}
	// Its last attempt under a lease that lapses too: given up.
	b.Clock.Advance(lease)
	if emails = claimEmails(t, b); len(emails) != 1 || emails[0].Attempts != 3 {
		t.Fatalf("claimed %+v, want the third attempt", emails)
	}
	b.Clock.Advance(lease)
	emails = claimEmails(t, b)
	if len(emails) != 1 || emails[0].Status != db.LoginEmailFailed || emails[0].LastError != "out of attempts" || emails[0].Code != "" {
		t.Fatalf("claimed %+v, want the email closed as out of attempts", emails)
	}
	// A late record of the dead worker changes nothing.
	if got := record(t, b, db.LoginEmailOutcome{ID: emails[0].ID, Result: db.LoginEmailDelivered}); got != "" {
		t.Fatalf("a record for an email no longer claimed: %s", got)
	}
	wantRows(t, b, loginEmailRow{Status: db.LoginEmailFailed, Attempts: 3, Error: "out of attempts"})
}

func TestExpiredLoginEmailIsNotSent(t *testing.T) {
	b := setup(t)
	askForCode(t, b, b.Member(db.RoleMember).Email, "192.0.2.1")
	b.Clock.Advance(db.LoginCodeTTL)
	emails := claimEmails(t, b)
	if len(emails) != 1 || emails[0].Status != db.LoginEmailFailed || emails[0].Code != "" || emails[0].LastError != "expired before it could be sent" {
		t.Fatalf("claimed %+v, want the email closed as expired", emails)
	}
	wantRows(t, b, loginEmailRow{Status: db.LoginEmailFailed, Error: "expired before it could be sent"})
}

func TestNewerCodeSupersedesTheUnsentEmail(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	for range 2 {
		askForCode(t, b, m.Email, "192.0.2.1")
	}
	wantRows(t, b,
		loginEmailRow{Status: db.LoginEmailSuperseded},
		loginEmailRow{Status: db.LoginEmailPending, HasCode: true})
	emails := claimEmails(t, b)
	if len(emails) != 1 {
		t.Fatalf("claimed %+v, want the newest email only", emails)
	}
	if _, err := b.Store.VerifyLoginCode(b.Ctx, m.Email, emails[0].Code, "192.0.2.1"); err != nil {
		t.Fatalf("the newest email's code: %v", err)
	}
}

func TestSealedCodeOpensOnlyForItsMember(t *testing.T) {
	b := setup(t)
	m := b.Member(db.RoleMember)
	askForCode(t, b, m.Email, "192.0.2.1")
	if _, err := b.Pool.Exec(b.Ctx, `UPDATE login_emails SET member_id = $1`, b.Member(db.RoleMember).ID); err != nil {
		t.Fatal(err)
	}
	emails := claimEmails(t, b)
	if len(emails) != 1 || emails[0].Code != "" || emails[0].Status != db.LoginEmailFailed {
		t.Fatalf("a code moved to another member's email was claimed as %+v, want it closed unopened", emails)
	}
}

func TestWorkersNeverClaimTheSameLoginEmail(t *testing.T) {
	b := setup(t)
	const n = 40
	for i := range n {
		// Each from an address of its own, under the per-address limit.
		askForCode(t, b, b.Member(db.RoleMember).Email, "192.0.2."+strconv.Itoa(i))
	}
	var (
		mu      sync.Mutex
		claimed = map[int64]int{}
	)
	drainTogether(t, 3, func() (int, error) {
		emails, err := b.Store.ClaimLoginEmails(b.Ctx, db.System, 3, lease, maxAttempts)
		mu.Lock()
		defer mu.Unlock()
		for _, e := range emails {
			claimed[e.ID]++
		}
		return len(emails), err
	})
	if len(claimed) != n {
		t.Fatalf("%d emails claimed, want %d", len(claimed), n)
	}
	for id, times := range claimed {
		if times != 1 {
			t.Fatalf("email %d claimed %d times", id, times)
		}
	}
}

// An email whose code will not open (sealed under another secret) is closed
// as FAILED by the claim, and the emails queued after it still go out.
func TestUnopenableLoginEmailDoesNotHoldUpTheRest(t *testing.T) {
	b := setup(t)
	stuck, next := b.Member(db.RoleMember), b.Member(db.RoleMember)
	askForCode(t, b, stuck.Email, "192.0.2.1")
	if _, err := b.Pool.Exec(b.Ctx, `UPDATE login_emails SET sealed_code = '\xdeadbeef' WHERE member_id = $1`, stuck.ID); err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(time.Second)
	askForCode(t, b, next.Email, "192.0.2.1")
	got := map[string]db.LoginEmail{}
	for _, e := range claimEmails(t, b) {
		got[e.MemberID] = e
	}
	if e := got[stuck.ID]; e.Status != db.LoginEmailFailed || e.Code != "" || e.LastError != "sealed code does not open" {
		t.Errorf("the unopenable email was claimed as %+v, want FAILED with no code", e)
	}
	if e := got[next.ID]; e.Status != db.LoginEmailSending || len(e.Code) != 6 {
		t.Errorf("the email after it was claimed as %+v, want one to send", e)
	}
	var status string
	var hasCode bool
	if err := b.Pool.QueryRow(b.Ctx, `SELECT status, sealed_code IS NOT NULL FROM login_emails WHERE member_id = $1`, stuck.ID).Scan(&status, &hasCode); err != nil {
		t.Fatal(err)
	}
	if status != "FAILED" || hasCode {
		t.Errorf("the unopenable email's row is %s (code kept: %v), want FAILED without its code", status, hasCode)
	}
}
