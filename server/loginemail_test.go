package main

// Login codes by email, end to end: a real SMTP server (go-smtp, through
// mailtest) takes the server's mail, and members sign in with the code read
// from the message that arrived.

import (
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/mail/mailtest"
)

const smtpFrom = "Picketline <no-reply@union.example>"

// withSMTP sends a test server's login codes by email through mt, retrying
// a failed send after a millisecond rather than seconds.
func withSMTP(mt *mailtest.Server) func(env map[string]string) {
	return func(env map[string]string) {
		env["LOGIN_CODE_SENDER"] = "smtp"
		env["SMTP_URL"] = mt.URL
		env["SMTP_FROM"] = smtpFrom
		env["LOGIN_EMAIL_BACKOFF_MS"] = "1"
	}
}

// startMailServer is a mail server that wants the credentials SMTP_URL
// carries, as a provider's relay does.
func startMailServer(t *testing.T) *mailtest.Server {
	return mailtest.Start(t, mailtest.Options{Username: "picketline", Password: "relay-password-7c1e"})
}

var emailedCodePattern = regexp.MustCompile(`\b\d{6}\b`)

// askForCode asks for a login code over HTTP, which must answer true at
// once, whatever becomes of the email.
func (s *testServer) askForCode(t testing.TB, email string) {
	t.Helper()
	r := s.gql(t, "", `mutation($e: String!) { requestLoginCode(email: $e) }`, map[string]any{"e": email})
	if string(r.Body) != `{"data":{"requestLoginCode":true}}` {
		t.Fatalf("requestLoginCode: %s", r)
	}
}

// emailedCode waits for the next message at mt, which must be to email,
// and returns the code it carries.
func emailedCode(t testing.TB, mt *mailtest.Server, email string) string {
	t.Helper()
	msg := mt.Next(t)
	if len(msg.To) != 1 || msg.To[0] != email {
		t.Fatalf("an email to %v, want one to %s", msg.To, email)
	}
	code := emailedCodePattern.FindString(msg.Text)
	if code == "" {
		t.Fatalf("no code in the email:\n%s", msg.Text)
	}
	return code
}

// signInWith exchanges a code for a session over HTTP and checks that its
// token works.
func (s *testServer) signInWith(t testing.TB, email, code string) authPayload {
	t.Helper()
	var out struct{ VerifyLoginCode authPayload }
	s.do(t, "", verifyMutation, map[string]any{"e": email, "c": code}, &out)
	var me struct{ Me struct{ Email string } }
	s.do(t, out.VerifyLoginCode.AccessToken, `{ me { email } }`, nil, &me)
	if me.Me.Email != email {
		t.Fatalf("signed in as %q, want %s", me.Me.Email, email)
	}
	return out.VerifyLoginCode
}

// loginEmail is what the outbox holds of a member's newest email.
func (s *testServer) loginEmail(t testing.TB, memberID string) (status string, hasCode bool, attempts int) {
	t.Helper()
	err := s.bundle.Pool.QueryRow(context.Background(),
		`SELECT status, sealed_code IS NOT NULL, attempts FROM login_emails WHERE member_id = $1 ORDER BY id DESC LIMIT 1`, memberID).
		Scan(&status, &hasCode, &attempts)
	if err != nil {
		t.Fatal(err)
	}
	return status, hasCode, attempts
}

// waitSent waits until the member's newest email is recorded as sent (the
// record follows the mail server's answer by a moment) and returns the
// attempt that sent it.
func (s *testServer) waitSent(t testing.TB, memberID string) (attempts int) {
	t.Helper()
	var id int64
	if err := s.bundle.Pool.QueryRow(context.Background(), `SELECT max(id) FROM login_emails WHERE member_id = $1`, memberID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	sent := regexp.MustCompile(`login email sent.*(id=|"id":)` + strconv.FormatInt(id, 10) + `\b`)
	s.log.waitAfter(t, 0, waitTimeout, sent.MatchString)
	status, hasCode, attempts := s.loginEmail(t, memberID)
	if status != "SENT" || hasCode {
		t.Fatalf("the sent email's row: %s, code kept %v; want SENT without its code", status, hasCode)
	}
	return attempts
}

func TestSignInWithTheEmailedCode(t *testing.T) {
	t.Parallel()
	mt := startMailServer(t)
	s := startServer(t, withSMTP(mt))
	m := s.addMember(t, db.RoleMember)

	s.askForCode(t, m.Email)
	code := emailedCode(t, mt, m.Email)
	s.signInWith(t, m.Email, code)
	if attempts := s.waitSent(t, m.ID); attempts != 1 {
		t.Errorf("sent on attempt %d, want the first", attempts)
	}

	t.Run("the sent email is counted", func(t *testing.T) {
		s.log.waitAfter(t, 0, waitTimeout, func(l string) bool { return strings.Contains(l, "login email sent") })
		s.scrape(t).want(t, "picketline_login_emails_sent_total", map[string]string{}, 1)
	})
	t.Run("a stranger's email gets the same answer and no email", func(t *testing.T) {
		s.askForCode(t, "nobody@example.org")
		// The mail worker resolves requests oldest first: once the code a
		// member asked for next has arrived, the stranger's request is
		// done with.
		other := s.addMember(t, db.RoleMember)
		s.askForCode(t, other.Email)
		s.signInWith(t, other.Email, emailedCode(t, mt, other.Email))
		if got := mt.Attempts(); got != 2 {
			t.Fatalf("the mail server was offered %d emails, want the two members' alone", got)
		}
		var queued, requests int
		if err := s.bundle.Pool.QueryRow(context.Background(),
			`SELECT (SELECT count(*) FROM login_emails WHERE member_id NOT IN ($1, $2)), (SELECT count(*) FROM login_requests)`, m.ID, other.ID).
			Scan(&queued, &requests); err != nil {
			t.Fatal(err)
		}
		if queued != 0 || requests != 0 {
			t.Fatalf("%d emails queued for a stranger and %d requests left unresolved", queued, requests)
		}
	})
	t.Run("neither the code nor the address is logged", func(t *testing.T) {
		for _, l := range s.log.Lines() {
			if strings.Contains(l, code) || strings.Contains(l, m.Email) || strings.Contains(l, "nobody@example.org") {
				t.Fatalf("the log holds the code or an address: %s", l)
			}
		}
	})
}

func TestSignInThroughASlowMailServer(t *testing.T) {
	t.Parallel()
	mt := startMailServer(t)
	// Seconds to take the message, as a loaded relay scanning mail is.
	mt.DelayData(1500 * time.Millisecond)
	s := startServer(t, withSMTP(mt))
	m := s.addMember(t, db.RoleMember)
	s.askForCode(t, m.Email)
	s.signInWith(t, m.Email, emailedCode(t, mt, m.Email))
	s.waitSent(t, m.ID)
}

func TestSignInAfterTheMailServerRefusedOnce(t *testing.T) {
	t.Parallel()
	mt := startMailServer(t)
	mt.Refuse(mailtest.Temporary)
	s := startServer(t, withSMTP(mt))
	m := s.addMember(t, db.RoleMember)
	s.askForCode(t, m.Email)
	s.signInWith(t, m.Email, emailedCode(t, mt, m.Email))
	if attempts := s.waitSent(t, m.ID); attempts != 2 {
		t.Errorf("sent on attempt %d, want the second", attempts)
	}
	if got := mt.Attempts(); got != 2 {
		t.Errorf("the mail server was offered the email %d times, want 2", got)
	}
	s.log.waitAfter(t, 0, waitTimeout, func(l string) bool {
		return strings.Contains(l, "login email not sent; will retry") && strings.Contains(l, "RCPT TO 451 4.3.0")
	})
}

func TestRestartLosesNoLoginEmail(t *testing.T) {
	t.Parallel()
	stalled := startMailServer(t)
	held, _ := stalled.HoldData()
	first := startServer(t, withSMTP(stalled))
	m := first.addMember(t, db.RoleMember)
	// Answered at once, though the mail server has not taken the email.
	first.askForCode(t, m.Email)
	select {
	case <-held:
	case <-time.After(waitTimeout):
		t.Fatal("the email never reached the mail server")
	}
	if err := first.stop(); err != nil {
		t.Fatalf("stopping the first server: %v", err)
	}
	if status, hasCode, attempts := first.loginEmail(t, m.ID); status != "PENDING" || !hasCode || attempts != 0 {
		t.Fatalf("after the stop the email is %s with %d attempts (code kept %v), want PENDING with none used", status, attempts, hasCode)
	}

	working := startMailServer(t)
	next := startServerWith(t, first.DBURL, withSMTP(working))
	next.signInWith(t, m.Email, emailedCode(t, working, m.Email))
	next.waitSent(t, m.ID)
}

func TestProdKeepsLoginCodesOutOfTheLog(t *testing.T) {
	t.Parallel()
	mt := startMailServer(t)
	// One email refused once, then sent; another refused for good.
	mt.Refuse(mailtest.Temporary)
	s := startServer(t, withSMTP(mt), func(env map[string]string) { env["APP_ENV"] = "prod" })
	member := s.addMember(t, db.RoleMember)
	s.askForCode(t, member.Email)
	code := emailedCode(t, mt, member.Email)
	s.signInWith(t, member.Email, code)
	s.waitSent(t, member.ID)

	mt.Refuse(mailtest.Permanent)
	refused := s.addMember(t, db.RoleMember)
	s.askForCode(t, refused.Email)
	failure := s.log.waitAfter(t, 0, waitTimeout, func(l string) bool { return strings.Contains(l, `"msg":"login email not delivered"`) })
	if !strings.Contains(failure, `"error":"RCPT TO 550 5.1.1"`) || !regexp.MustCompile(`"id":\d+`).MatchString(failure) {
		t.Errorf("the failure line says neither which row nor why: %s", failure)
	}
	if status, hasCode, _ := s.loginEmail(t, refused.ID); status != "FAILED" || hasCode {
		t.Errorf("the refused email is %s (code kept %v), want FAILED without its code", status, hasCode)
	}
	for _, l := range s.log.Lines() {
		for _, secret := range []string{code, member.Email, refused.Email} {
			if strings.Contains(l, secret) {
				t.Fatalf("the prod log holds %q: %s", secret, l)
			}
		}
	}
}

func TestProdRefusesToLogLoginCodes(t *testing.T) {
	t.Parallel()
	prod := func(change map[string]string) map[string]string {
		env := map[string]string{"APP_ENV": "prod", "JWT_SECRET": testSecret, "DATABASE_URL": "postgres://localhost/x", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir()}
		for k, v := range change {
			env[k] = v
		}
		return env
	}
	for name, c := range map[string]struct {
		env     map[string]string
		mention string
	}{
		"no sender":                   {prod(nil), "APP_ENV=prod refuses LOGIN_CODE_SENDER=log"},
		"the log":                     {prod(map[string]string{"LOGIN_CODE_SENDER": "log"}), "APP_ENV=prod refuses LOGIN_CODE_SENDER=log"},
		"smtp without a server":       {prod(map[string]string{"LOGIN_CODE_SENDER": "smtp", "SMTP_FROM": smtpFrom}), "SMTP_URL"},
		"smtp without a sender":       {prod(map[string]string{"LOGIN_CODE_SENDER": "smtp", "SMTP_URL": "smtp://mail.union.example"}), "SMTP_FROM"},
		"smtp without either, in dev": {map[string]string{"LOGIN_CODE_SENDER": "smtp", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir()}, "SMTP_URL"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, []string{"serve"}, getenvOf(c.env), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("serve returned %v, want an error saying %q", err, c.mention)
			}
		})
	}

	t.Run("an SMTP URL is refused without showing its password", func(t *testing.T) {
		_, err := loadConfig(getenvOf(map[string]string{"SMTP_URL": "smtp://mailer:hunter2@mail union.example"}))
		if err == nil || !strings.Contains(err.Error(), "SMTP_URL") || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("a broken SMTP_URL: %v, want an error naming SMTP_URL without the password", err)
		}
	})

	t.Run("commands that send no email need no sender", func(t *testing.T) {
		env := prod(map[string]string{"DATABASE_URL": dbtest.NewDatabase(t)})
		if _, err := runCLI(t, env, "migrate"); err != nil {
			t.Fatal(err)
		}
		if _, err := runCLI(t, env, "member", "add", "--email", "prod@example.org", "--name", "Prod Member"); err != nil {
			t.Fatal(err)
		}
		if out, err := runCLI(t, env, "token", "--email", "prod@example.org"); err != nil || strings.Count(out, ".") != 2 {
			t.Fatalf("token in prod: %q, %v", out, err)
		}
		if out, err := runCLI(t, env, "purge"); err != nil || !strings.Contains(out, "login_codes") {
			t.Fatalf("purge in prod: %q, %v", out, err)
		}
	})
}

// The dev default, the log sender, goes through the same outbox: the
// email is written and its row loses the code once it is logged.
func TestDevLogSenderDrainsTheOutbox(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	s.signInWith(t, m.Email, s.requestCode(t, m.Email))
	s.waitSent(t, m.ID)
}
