package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/picketline/picketline/db"
)

// Server is the SMTP server login emails go through, as SMTP_URL names it.
type Server struct {
	Host string
	Port int
	// ImplicitTLS (smtps://) speaks TLS from the first byte; otherwise
	// (smtp://) the connection turns to TLS with STARTTLS.
	ImplicitTLS bool
	// Username and Password, when given, sign in with SMTP AUTH.
	Username string
	Password string
}

// startTLSPolicy is how an smtp:// connection turns to TLS. STARTTLS is
// required: anyone on the path can strip the server's offer of it, and the
// email would then carry the code and the member's address in clear. Only
// a mail server on this host (a relay or a development catcher, which
// nobody else can reach on the path) may be spoken to in clear when it
// offers no STARTTLS.
func (s Server) startTLSPolicy() gomail.TLSPolicy {
	if s.Host == "localhost" {
		return gomail.TLSOpportunistic
	}
	if ip := net.ParseIP(s.Host); ip != nil && ip.IsLoopback() {
		return gomail.TLSOpportunistic
	}
	return gomail.TLSMandatory
}

// ParseServer reads smtp://[user:password@]host[:port] (port 587 unless
// given, STARTTLS) or smtps://[user:password@]host[:port]
// (port 465, implicit TLS). The user and password are percent-encoded.
func ParseServer(raw string) (Server, error) {
	const want = "want smtp://[user:password@]host[:port] or smtps://[user:password@]host[:port]"
	u, err := url.Parse(raw)
	if err != nil {
		// url's error quotes the URL, password and all.
		return Server{}, errors.New("not a URL; " + want)
	}
	var s Server
	switch u.Scheme {
	case "smtp":
		s.Port = 587
	case "smtps":
		s.Port, s.ImplicitTLS = 465, true
	default:
		return Server{}, fmt.Errorf("scheme %q is not smtp or smtps; %s", u.Scheme, want)
	}
	if s.Host = u.Hostname(); s.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Server{}, errors.New("a host and nothing after it; " + want)
	}
	if p := u.Port(); p != "" {
		if s.Port, err = strconv.Atoi(p); err != nil || s.Port < 1 || s.Port > 65535 {
			return Server{}, fmt.Errorf("port %q is not a port number", p)
		}
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

// ParseFrom reads the sender of login emails: an address, with a display
// name or without ("Picketline <no-reply@union.example>").
func ParseFrom(raw string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address: %w", raw, err)
	}
	return a, nil
}

// stepTimeout bounds the connection and, again, the message: go-mail sets
// the connection's deadline at both. The worker's SendTimeout bounds the
// whole.
const stepTimeout = 20 * time.Second

// authMechanisms are the SMTP AUTH mechanisms tried, the first the server
// offers taken. PLAIN and LOGIN carry the password as it is, so go-mail
// refuses them on a connection without TLS (except to this host itself).
var authMechanisms = []gomail.SMTPAuthType{gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}

// SMTP sends login emails through an SMTP server.
type SMTP struct {
	server Server
	from   *netmail.Address
	tls    *tls.Config
}

// NewSMTP returns a sender through server, from from. roots verify the
// server's certificate; nil means the system's.
func NewSMTP(server Server, from *netmail.Address, roots *x509.CertPool) *SMTP {
	return &SMTP{
		server: server,
		from:   from,
		tls:    &tls.Config{ServerName: server.Host, MinVersion: tls.VersionTLS12, RootCAs: roots},
	}
}

// Send implements Sender: one connection for one message. A client of its
// own per send keeps concurrent sends apart (go-mail's client settles the
// AUTH mechanism on itself). Every error is a *SendError.
func (s *SMTP) Send(ctx context.Context, e db.LoginEmail) error {
	msg, err := s.message(e)
	if err != nil {
		return err
	}
	// go-mail watches the context only while dialling, and leaves the
	// connection open when the conversation fails before a message (a
	// refused AUTH, say): the connection is closed here when the context
	// ends, which stops a stalled conversation and a stopping server's at
	// once, and in any case when the send is over.
	var raw net.Conn
	var unwatch func() bool
	defer func() {
		if raw != nil {
			unwatch()
			raw.Close()
		}
	}()
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var err error
		if s.server.ImplicitTLS {
			raw, err = (&tls.Dialer{Config: s.tls}).DialContext(dctx, network, addr)
		} else {
			raw, err = (&net.Dialer{}).DialContext(dctx, network, addr)
		}
		if err != nil {
			raw = nil
			return nil, err
		}
		conn := raw
		unwatch = context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}
	opts := []gomail.Option{
		gomail.WithPort(s.server.Port),
		gomail.WithTimeout(stepTimeout),
		gomail.WithTLSConfig(s.tls),
		gomail.WithDialContextFunc(dial),
		gomail.WithoutNoop(),
	}
	if s.server.ImplicitTLS {
		// Tells go-mail not to try STARTTLS on a connection already in TLS.
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(s.server.startTLSPolicy()))
	}
	if s.server.Username != "" {
		opts = append(opts, gomail.WithOpportunisticSMTPAuth(authMechanisms...),
			gomail.WithUsername(s.server.Username), gomail.WithPassword(s.server.Password))
	}
	client, err := gomail.NewClient(s.server.Host, opts...)
	if err != nil {
		return &SendError{Class: "client setup"}
	}
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err == nil {
		err = client.SendWithSMTPClient(conn, msg)
		// Once the server has taken the message, a failed QUIT changes
		// nothing: sending again would only repeat the email.
		client.CloseWithSMTPClient(conn)
	}
	if err != nil && ctx.Err() != nil {
		// The connection was closed under go-mail, which then reports
		// only that.
		err = ctx.Err()
	}
	return classify(err)
}

// message is the email carrying e's code.
func (s *SMTP) message(e db.LoginEmail) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(s.from)
	if err := m.To(e.Email); err != nil {
		return nil, &SendError{Class: "recipient address refused", Permanent: true}
	}
	m.Subject(Subject)
	m.SetDate()
	m.SetMessageIDWithValue(rand.Text() + "@" + domainOf(s.from.Address))
	// Asks mail servers not to answer with an out-of-office reply.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	text, html := bodies(e.Code)
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)
	return m, nil
}

func domainOf(address string) string {
	return address[strings.LastIndexByte(address, '@')+1:]
}

// classify turns go-mail's error into a SendError that keeps only the
// kind of failure: its words can name the recipient ("affected
// recipient(s): ...") or quote a server that does.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var sendErr *gomail.SendError
	if errors.As(err, &sendErr) {
		class := stage(sendErr.Reason)
		if code := sendErr.ErrorCode(); code != 0 {
			class += " " + strconv.Itoa(code)
		}
		if esc := sendErr.EnhancedStatusCode(); esc != "" {
			class += " " + esc
		}
		// Only a 5xx answer is final: a connection lost half-way carries
		// no code and is worth another try.
		return &SendError{Class: class, Permanent: sendErr.ErrorCode() >= 500}
	}
	var (
		netErr   net.Error
		protoErr *textproto.Error
		certErr  *tls.CertificateVerificationError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &SendError{Class: "timeout"}
	case errors.Is(err, context.Canceled):
		return &SendError{Class: "cancelled"}
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alertErr), strings.HasPrefix(err.Error(), "tls: "):
		return &SendError{Class: "tls"}
	case errors.Is(err, gosmtp.ErrUnencrypted), errors.Is(err, gomail.ErrNoSupportedAuthDiscovered),
		strings.Contains(err.Error(), "SMTP AUTH"):
		return &SendError{Class: "auth"}
	case errors.As(err, &protoErr):
		return &SendError{Class: "smtp " + strconv.Itoa(protoErr.Code)}
	case errors.As(err, &netErr):
		return &SendError{Class: "network"}
	}
	return &SendError{Class: unclassified}
}

// stage names the step of the SMTP conversation a send failed at.
func stage(r gomail.SendErrReason) string {
	switch r {
	case gomail.ErrSMTPMailFrom:
		return "MAIL FROM"
	case gomail.ErrSMTPRcptTo:
		return "RCPT TO"
	case gomail.ErrSMTPData:
		return "DATA"
	case gomail.ErrSMTPDataClose:
		return "end of DATA"
	case gomail.ErrWriteContent:
		return "message content"
	case gomail.ErrConnCheck:
		return "connection check"
	case gomail.ErrNoUnencoded:
		return "8BITMIME"
	}
	return "send"
}
