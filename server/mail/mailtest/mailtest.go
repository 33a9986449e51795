// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp)
// for tests, as net/http/httptest runs an HTTP one: it keeps the messages
// it accepts, and can be slow or refuse the way real mail servers are.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// WaitTimeout bounds every wait on the server.
const WaitTimeout = 20 * time.Second

// Refusals a server can answer with.
var (
	// Temporary asks the sender to try again later (451).
	Temporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
	// Permanent refuses the message for good (550).
	Permanent = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Mailbox unavailable"}
)

// Options says what kind of server to start.
type Options struct {
	// Username and Password, when set, must be given through AUTH PLAIN
	// before a message is taken.
	Username string
	Password string
	// STARTTLS offers STARTTLS, with a certificate for 127.0.0.1 that
	// Server.RootCAs verifies.
	STARTTLS bool
	// ImplicitTLS speaks TLS from the first byte, as smtps:// expects.
	ImplicitTLS bool
	// Host is the loopback address to listen on; 127.0.0.1 when empty.
	Host string
}

// Message is a message the server accepted.
type Message struct {
	// From and To are the envelope's.
	From string
	To   []string
	// TLS says the message came over TLS; Authenticated, after AUTH.
	TLS           bool
	Authenticated bool
	Header        netmail.Header
	// Text and HTML are the decoded text/plain and text/html parts.
	Text string
	HTML string
	Raw  []byte
}

// Server is a running SMTP server on a free loopback port.
type Server struct {
	// URL names the server as SMTP_URL does, credentials included.
	URL string
	// Addr is its host:port.
	Addr string
	// RootCAs verifies the server's certificate, when it has one.
	RootCAs *x509.CertPool

	opts     Options
	srv      *smtp.Server
	closed   chan struct{}
	messages chan *Message

	mu       sync.Mutex
	refusals []error
	always   error
	delay    time.Duration
	hold     *hold
	attempts int
}

// hold keeps the answer to one message's DATA until released.
type hold struct {
	held    chan struct{}
	release chan struct{}
}

// Start starts a server that stops at the end of the test.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{opts: o, closed: make(chan struct{}), messages: make(chan *Message, 100)}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "mailtest.localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	var ln net.Listener
	var err error
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	if o.STARTTLS || o.ImplicitTLS {
		var cfg *tls.Config
		cfg, s.RootCAs = certificate(t)
		if o.ImplicitTLS {
			ln = tls.NewListener(ln, cfg)
		} else {
			s.srv.TLSConfig = cfg
		}
	}
	s.Addr = ln.Addr().String()
	u := url.URL{Scheme: "smtp", Host: s.Addr}
	if o.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if o.Username != "" {
		u.User = url.UserPassword(o.Username, o.Password)
	}
	s.URL = u.String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		close(s.closed)
		s.srv.Close()
		<-served
	})
	return s
}

// Refuse makes the server refuse the next len(errs) messages, each with
// its error, at RCPT TO.
func (s *Server) Refuse(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals = append(s.refusals, errs...)
}

// RefuseAll makes the server refuse every message with err, at RCPT TO.
func (s *Server) RefuseAll(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.always = err
}

// DelayData makes the server wait d after each message before answering it,
// as a busy server scanning its mail does.
func (s *Server) DelayData(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// HoldData makes the server keep the answer to the next message until
// release is called (or the server stops): held is closed once the message
// has arrived and waits.
func (s *Server) HoldData() (held <-chan struct{}, release func()) {
	h := &hold{held: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.hold = h
	s.mu.Unlock()
	var once sync.Once
	return h.held, func() { once.Do(func() { close(h.release) }) }
}

// Attempts is how many messages the server was offered (RCPT TO), accepted
// or not.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Next waits for the next message the server accepts, failing the test
// after WaitTimeout.
func (s *Server) Next(t testing.TB) *Message {
	t.Helper()
	select {
	case m := <-s.messages:
		return m
	case <-time.After(WaitTimeout):
		t.Fatalf("no message arrived at the SMTP server within %v (%d offered)", WaitTimeout, s.Attempts())
		return nil
	}
}

// Received returns the messages accepted and not yet taken by Next.
func (s *Server) Received() []*Message {
	var out []*Message
	for {
		select {
		case m := <-s.messages:
			out = append(out, m)
		default:
			return out
		}
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, tlsOn := c.TLSConnectionState()
	return &session{s: b.s, msg: &Message{TLS: tlsOn}}, nil
}

// session is one connection's conversation.
type session struct {
	s   *Server
	msg *Message
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.msg.Authenticated = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && !ss.msg.Authenticated {
		return smtp.ErrAuthRequired
	}
	ss.msg.From = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if s.always != nil {
		return s.always
	}
	if len(s.refusals) > 0 {
		err := s.refusals[0]
		s.refusals = s.refusals[1:]
		return err
	}
	ss.msg.To = append(ss.msg.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := *ss.msg
	m.Raw = raw
	if err := m.parse(); err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unreadable message: " + err.Error()}
	}
	s := ss.s
	s.mu.Lock()
	delay, h := s.delay, s.hold
	s.hold = nil
	s.mu.Unlock()
	if h != nil {
		close(h.held)
		select {
		case <-h.release:
		case <-s.closed:
			return errors.New("server stopped")
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-s.closed:
			return errors.New("server stopped")
		}
	}
	s.messages <- &m
	return nil
}

func (ss *session) Reset() {
	ss.msg = &Message{TLS: ss.msg.TLS, Authenticated: ss.msg.Authenticated}
}

func (ss *session) Logout() error { return nil }

// parse reads the headers and the text and HTML parts of m.Raw.
func (m *Message) parse() error {
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	return m.readPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
}

func (m *Message) readPart(contentType, encoding string, body io.Reader) error {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			// multipart decodes quoted-printable parts itself.
			if err := m.readPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	if strings.EqualFold(encoding, "base64") {
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	switch mediaType {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
	return nil
}

// certificate makes a self-signed certificate for 127.0.0.1 and the pool
// that trusts it.
func certificate(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}
