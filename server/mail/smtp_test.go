package mail

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	gomail "github.com/wneessen/go-mail"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/mail/mailtest"
)

func TestParseServer(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]Server{
		"smtp://mail.union.example":                    {Host: "mail.union.example", Port: 587},
		"smtp://mailer:s%40cret@mail.union.example:25": {Host: "mail.union.example", Port: 25, Username: "mailer", Password: "s@cret"},
		"smtps://mail.union.example":                   {Host: "mail.union.example", Port: 465, ImplicitTLS: true},
		"smtps://mailer:pw@mail.union.example:2465/":   {Host: "mail.union.example", Port: 2465, ImplicitTLS: true, Username: "mailer", Password: "pw"},
	} {
		got, err := ParseServer(raw)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", raw, diff)
		}
	}
	for _, raw := range []string{
		"mail.union.example:587",
		"http://mail.union.example",
		"smtp://",
		"smtp://mail.union.example/inbox",
		"smtp://mail.union.example?tls=no",
		"smtp://mailer:hunter2@mail.union.example:99999",
		"smtp://mailer:hunter2@mail union.example",
	} {
		_, err := ParseServer(raw)
		if err == nil {
			t.Errorf("%s was taken", raw)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", raw, err)
		}
	}
}

func TestParseFrom(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"no-reply@union.example", "Picketline <no-reply@union.example>"} {
		if a, err := ParseFrom(raw); err != nil || a.Address != "no-reply@union.example" {
			t.Errorf("%s: %v, %v", raw, a, err)
		}
	}
	for _, raw := range []string{"", "picketline", "no-reply@", "<no-reply@union.example"} {
		if _, err := ParseFrom(raw); err == nil {
			t.Errorf("%q was taken", raw)
		}
	}
}

// send sends one email for a new member through the fixture's server and
// returns what the sender answered.
func (f *fixture) send(s *SMTP) (*db.Member, error) {
	f.T.Helper()
	m := f.Member(db.RoleMember)
	return m, s.Send(context.Background(), db.LoginEmail{ID: 1, MemberID: m.ID, Email: m.Email, Code: "123456"})
}

func TestSMTPSignsInOverSTARTTLS(t *testing.T) {
	f := setup(t, mailtest.Options{STARTTLS: true, Username: "mailer", Password: "s3cret"})
	if _, err := f.send(f.sender()); err != nil {
		t.Fatal(err)
	}
	if msg := f.smtp.Next(t); !msg.TLS || !msg.Authenticated {
		t.Fatalf("message came with TLS %v and AUTH %v, want both", msg.TLS, msg.Authenticated)
	}
}

func TestSMTPSignsInOverImplicitTLS(t *testing.T) {
	f := setup(t, mailtest.Options{ImplicitTLS: true, Username: "mailer", Password: "s3cret"})
	if !strings.HasPrefix(f.smtp.URL, "smtps://") {
		t.Fatalf("server URL %s", f.smtp.URL)
	}
	if _, err := f.send(f.sender()); err != nil {
		t.Fatal(err)
	}
	if msg := f.smtp.Next(t); !msg.TLS || !msg.Authenticated {
		t.Fatalf("message came with TLS %v and AUTH %v, want both", msg.TLS, msg.Authenticated)
	}
}

func TestSMTPRefusesAServerItCannotTrust(t *testing.T) {
	f := setup(t, mailtest.Options{STARTTLS: true})
	server, err := ParseServer(f.smtp.URL)
	if err != nil {
		t.Fatal(err)
	}
	from, _ := ParseFrom(testFrom)
	// The system's roots do not know the test server's certificate: the
	// sender stops there rather than go on in clear.
	_, err = f.send(NewSMTP(server, from, nil))
	var sendErr *SendError
	if !errors.As(err, &sendErr) || sendErr.Class != "tls" || sendErr.Permanent {
		t.Fatalf("sending to an untrusted server: %v, want a tls failure worth retrying", err)
	}
	if got := f.smtp.Attempts(); got != 0 {
		t.Fatalf("the server was offered the email %d times, want none", got)
	}
}

func TestSMTPNeverSendsThePasswordInClear(t *testing.T) {
	// Another loopback address than the one go-mail trusts in clear as this
	// host itself: to it, a server without TLS is as any other.
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address here: %v", err)
	}
	probe.Close()
	f := setup(t, mailtest.Options{Host: "127.0.0.2", Username: "mailer", Password: "s3cret"})
	_, err = f.send(f.sender())
	var sendErr *SendError
	if !errors.As(err, &sendErr) || sendErr.Class != "auth" {
		t.Fatalf("AUTH without TLS: %v, want an auth failure", err)
	}
	if got := f.smtp.Attempts(); got != 0 {
		t.Fatalf("the server was offered the email %d times, want none", got)
	}
}

// STARTTLS is required of every mail server but one on this host: anyone
// on the path could strip its offer and read the code and the address.
func TestSTARTTLSIsRequiredExceptOnThisHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]gomail.TLSPolicy{
		"mail.union.example": gomail.TLSMandatory,
		"192.0.2.25":         gomail.TLSMandatory,
		"2001:db8::25":       gomail.TLSMandatory,
		"localhost":          gomail.TLSOpportunistic,
		"127.0.0.1":          gomail.TLSOpportunistic,
		"::1":                gomail.TLSOpportunistic,
	} {
		if got := (Server{Host: host}).startTLSPolicy(); got != want {
			t.Errorf("%s: %v, want %v", host, got, want)
		}
	}
}
