package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
	"github.com/picketline/picketline/server/mail"
	"github.com/picketline/picketline/server/push"
)

// config is the server's configuration, read once from the environment.
type config struct {
	Env            string
	Host           string
	Port           int
	DatabaseURL    string
	DBMaxConns     int
	JWTSecret      []byte
	AllowedOrigins []string
	DataDir        string
	LogLevel       slog.Level
	DrainTimeout   time.Duration
	// DBStatementTimeout bounds every statement of the connection pool.
	DBStatementTimeout time.Duration
	// UnreadyDelay is how long the server keeps serving with /readyz at 503
	// after a stop signal, so load balancers stop sending before sockets close.
	UnreadyDelay time.Duration
	// EventRetention is how long line and member events are kept for
	// clients resuming by cursor.
	EventRetention time.Duration
	// WSMaxSubscriptions caps the subscriptions of one websocket.
	WSMaxSubscriptions int
	// WSMaxUnauthenticatedPerAddress caps the websocket handshakes of one
	// client address not yet authenticated, on each replica.
	WSMaxUnauthenticatedPerAddress int
	// Limits are the rate limits and caps the store enforces.
	Limits db.Limits
	// MutationsPerMemberPerMinute is the per-member mutation limit; 0
	// turns it off.
	MutationsPerMemberPerMinute int
	// TrustedProxies are the peers whose forwarding headers name the
	// client address.
	TrustedProxies auth.TrustedProxies
	// FirebaseProjectID enables push through FCM; without it push
	// notifications are only logged.
	FirebaseProjectID string
	// FCMEndpoint replaces FCM's address (a fake in tests).
	FCMEndpoint string
	// GoogleCredentials is the service account file, if any.
	GoogleCredentials string
	Push              push.Config
	// LoginCodeSender names how login codes reach members: "smtp" by
	// email, "log" in the server log (dev only).
	LoginCodeSender string
	// SMTPURL and SMTPFrom are the mail server and the sender of login
	// emails, for the smtp sender.
	SMTPURL  string
	SMTPFrom string
	// LoginEmail tunes the worker that sends login emails.
	LoginEmail mail.Config
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) there.
	DebugAddr string
	// MaxBodyBytes is the largest request body /graphql reads.
	MaxBodyBytes int
	// HTTP bounds how long and how large a client's request may be.
	HTTP httpLimits
	// MetricsAddr, when set, serves the Prometheus metrics there; unset,
	// they are on /metrics of the API's listener, which only dev allows.
	MetricsAddr string
}

// httpLimits are the HTTP server's timeouts and header bound.
type httpLimits struct {
	ReadHeader, Read, Write, Idle time.Duration
	MaxHeaderBytes                int
}

// prodMetricsAddr is where prod serves metrics when METRICS_ADDR is unset:
// never on the public listener.
const prodMetricsAddr = "127.0.0.1:9090"

func (c config) dev() bool { return c.Env == "dev" }

// A setting is one environment variable of the server. The parser, the
// defaults, the start-up line and README.md's Configuration table (checked
// by a test) all come from the one list in settings, so they cannot
// disagree.
type setting struct {
	Name string
	// Default is the value taken when the variable is unset or empty.
	// Where there is none, Unset says what an unset variable means.
	Default string
	Unset   string
	Meaning string
	// Var is the setting's field of the config.
	Var settingVar
}

// settings declares every variable, in the order of the README's table,
// each bound to its field of c.
func (c *config) settings() []setting {
	d, m, l := push.DefaultConfig, mail.DefaultConfig, db.DefaultLimits
	return []setting{
		{Name: "PORT", Default: "8080", Meaning: "HTTP port",
			Var: count(&c.Port)},
		{Name: "HOST", Unset: "all interfaces", Meaning: "address to listen on",
			Var: textVar{&c.Host}},
		{Name: "DATABASE_URL", Unset: "embedded PostgreSQL in `DATA_DIR/postgres`", Meaning: "PostgreSQL URL; required in `prod`",
			Var: databaseVar{url: &c.DatabaseURL, dataDir: &c.DataDir}},
		{Name: "DATABASE_MAX_CONNS", Default: "16", Meaning: "connections to PostgreSQL each server process pools, at most; it also opens one for `LISTEN` and one while migrating, so keep replicas × (this + 2) under the database's `max_connections`",
			Var: count(&c.DBMaxConns)},
		{Name: "DATABASE_STATEMENT_TIMEOUT", Default: "5s", Meaning: "longest a database statement may run (a Go duration, e.g. `500ms`); a request that hits it answers `UNAVAILABLE` and writes nothing; migrations are not bound by it, and each batch of the purge has a minute",
			Var: durationVar{&c.DBStatementTimeout}},
		{Name: "JWT_SECRET", Unset: "created in `DATA_DIR/jwt-secret` in `dev`", Meaning: fmt.Sprintf("access-token signing secret; at least %d bytes, required in `prod`", auth.MinSecretBytes),
			Var: secretVar{&c.JWTSecret}},
		{Name: "ALLOWED_ORIGINS", Unset: "none", Meaning: "comma-separated browser origins allowed by CORS",
			Var: listVar{&c.AllowedOrigins}},
		{Name: "APP_ENV", Default: "dev", Meaning: "`dev` (text logs, GraphiQL, introspection) or `prod` (JSON logs, no introspection or suggestions)",
			Var: choiceVar{p: &c.Env, allowed: []string{"dev", "prod"}}},
		{Name: "DATA_DIR", Default: ".data", Meaning: "where the embedded database and the dev secret live",
			Var: textVar{&c.DataDir}},
		{Name: "LOG_LEVEL", Default: "info", Meaning: "`debug`, `info`, `warn`, `error`",
			Var: levelVar{&c.LogLevel}},
		{Name: "DRAIN_TIMEOUT_SECONDS", Default: "15", Meaning: "how long shutdown waits for requests in flight",
			Var: seconds(&c.DrainTimeout)},
		{Name: "UNREADY_DELAY_SECONDS", Default: "0", Meaning: "on a stop signal, how long to keep serving with `/readyz` at 503 before closing websockets (set it to your load balancer's probe interval)",
			Var: seconds(&c.UnreadyDelay)},
		{Name: "EVENT_RETENTION_DAYS", Default: "7", Meaning: "how long live events are kept for clients resuming by cursor",
			Var: days(&c.EventRetention)},
		{Name: "WS_MAX_SUBSCRIPTIONS", Default: "50", Meaning: "subscriptions allowed on one websocket",
			Var: count(&c.WSMaxSubscriptions)},
		{Name: "WS_MAX_CONNECTIONS_PER_MEMBER", Default: strconv.Itoa(l.WSConnectionsPerMember), Meaning: "websockets one member may hold open, on all replicas together (counted in PostgreSQL once `connection_init` names the member); one more is closed with 4429, which graphql-ws clients take as final, and closing one frees its slot",
			Var: count(&c.Limits.WSConnectionsPerMember).atLeast(1)},
		{Name: "WS_MAX_UNAUTHENTICATED_PER_ADDRESS", Default: "20", Meaning: fmt.Sprintf("websocket handshakes one client address may have in progress (from the upgrade until `connection_ack` or the close, at most the %s init timeout), counted in memory on each replica; one more is answered 429 before the upgrade, with `Retry-After` and `RATE_LIMITED`", wsInitTimeout),
			Var: count(&c.WSMaxUnauthenticatedPerAddress).atLeast(1)},
		{Name: "RATE_LIMIT_LOGIN_PER_ADDRESS_PER_HOUR", Default: strconv.Itoa(l.LoginPerAddressPerHour), Meaning: "`requestLoginCode` calls, and apart from them `verifyLoginCode` calls, allowed per client address per hour (besides 5 requests per email per 15 minutes and 5 tries per code); past it they answer `RATE_LIMITED` with `retryAfterSeconds`, the same for members and strangers",
			Var: count(&c.Limits.LoginPerAddressPerHour).atLeast(1)},
		{Name: "RATE_LIMIT_MEMBER_PER_MINUTE", Default: strconv.Itoa(db.DefaultMutationsPerMinute), Meaning: "mutations a signed-in member may make per minute, over HTTP and websockets alike, each mutation field of an operation counting one (`requestLoginCode`, `verifyLoginCode` and `refreshSession` have the limits above instead); past it an operation answers `RATE_LIMITED` with `retryAfterSeconds` and none of it runs; replicas share their counts every second (see Security for the tolerance); `0` turns the limit off, and a very high value counts without refusing",
			Var: count(&c.MutationsPerMemberPerMinute)},
		{Name: "MAX_DEVICES_PER_MEMBER", Default: strconv.Itoa(l.DevicesPerMember), Meaning: "push devices a member may register; registering one more forgets the one registered or seen longest ago; `myDevices` lists (and the cost limit counts) at most this many",
			Var: count(&c.Limits.DevicesPerMember).atLeast(1)},
		{Name: "RATE_LIMIT_URGENT_PER_HOUR", Default: strconv.Itoa(l.UrgentPerHour), Meaning: "urgent announcements and coverage calls together, per poster (captain or coordinator alike) per hour, besides one coverage call per shift per 30 minutes; past it they answer `RATE_LIMITED` with `retryAfterSeconds`",
			Var: count(&c.Limits.UrgentPerHour).atLeast(1)},
		{Name: "TRUSTED_PROXIES", Unset: "none", Meaning: "comma-separated IP addresses and CIDR prefixes (e.g. `10.0.0.0/8,192.0.2.10`) of the load balancers in front of the server; from these peers only, the client address the per-address limits count (over HTTP and websockets) is the rightmost hop of `X-Forwarded-For` (or, without it, of `Forwarded`'s `for=`) not itself listed, so the proxies must append to the header they set; an IPv6 client counts by its /64",
			Var: proxiesVar{&c.TrustedProxies}},
		{Name: "LOGIN_CODE_SENDER", Default: "log", Meaning: "how login codes reach members: `smtp` (by email through `SMTP_URL`) or `log` (written to the server log, for development; `prod` refuses it)",
			Var: choiceVar{p: &c.LoginCodeSender, allowed: []string{"log", "smtp"}}},
		{Name: "SMTP_URL", Unset: "none", Meaning: "the mail server login emails go through: `smtp://user:password@host:port` (port 587 unless given; STARTTLS required, except to a server on this host) or `smtps://user:password@host:port` (implicit TLS, port 465 unless given); user and password percent-encoded, and the password never sent in clear; required with `LOGIN_CODE_SENDER=smtp`",
			Var: smtpVar{urlVar{&c.SMTPURL}}},
		{Name: "SMTP_FROM", Unset: "none", Meaning: "the sender of login emails, e.g. `Picketline <no-reply@union.example>`; required with `LOGIN_CODE_SENDER=smtp`",
			Var: addressVar{&c.SMTPFrom}},
		{Name: "LOGIN_EMAIL_MAX_ATTEMPTS", Default: strconv.Itoa(m.MaxAttempts), Meaning: "sends a login email gets before it is given up (logged without the address, and counted)",
			Var: count(&c.LoginEmail.MaxAttempts).atLeast(1)},
		{Name: "LOGIN_EMAIL_BACKOFF_MS", Default: strconv.Itoa(int(m.BaseBackoff / time.Millisecond)), Meaning: "first retry delay of a login email; it doubles each attempt",
			Var: milliseconds(&c.LoginEmail.BaseBackoff).atLeast(1)},
		{Name: "FIREBASE_PROJECT_ID", Unset: "none", Meaning: "send push notifications through Firebase Cloud Messaging; without it they are logged",
			Var: textVar{&c.FirebaseProjectID}},
		{Name: "GOOGLE_APPLICATION_CREDENTIALS", Unset: "none", Meaning: "the service account file the Firebase Admin SDK uses",
			Var: textVar{&c.GoogleCredentials}},
		{Name: "FCM_ENDPOINT", Unset: "FCM", Meaning: "another FCM address (a fake for tests; without credentials it is called unauthenticated)",
			Var: urlVar{&c.FCMEndpoint}},
		{Name: "PUSH_RATE", Default: strconv.Itoa(int(d.Rate)), Meaning: "push messages handed to FCM per second, at most (FCM allows 10,000 per project)",
			Var: count(&c.Push.Rate).atLeast(1)},
		{Name: "PUSH_CONCURRENCY", Default: strconv.Itoa(d.Concurrency), Meaning: "push sends in flight",
			Var: count(&c.Push.Concurrency).atLeast(1)},
		{Name: "PUSH_MAX_ATTEMPTS", Default: strconv.Itoa(d.MaxAttempts), Meaning: "attempts before a message is dead-lettered (`push_outbox.status = 'DEAD'`)",
			Var: count(&c.Push.MaxAttempts)},
		{Name: "PUSH_BACKOFF_MS", Default: strconv.Itoa(int(d.BaseBackoff / time.Millisecond)), Meaning: "first retry delay; it doubles each attempt, and never undercuts FCM's `Retry-After`",
			Var: milliseconds(&c.Push.BaseBackoff).atLeast(1)},
		{Name: "MAX_BODY_BYTES", Default: strconv.Itoa(1 << 20), Meaning: "largest request body `/graphql` reads; a larger one is answered 413 with code `PAYLOAD_TOO_LARGE`",
			Var: count(&c.MaxBodyBytes).atLeast(1)},
		{Name: "HTTP_READ_HEADER_TIMEOUT", Default: "10s", Meaning: "time a client has to send a request's headers (a Go duration)",
			Var: durationVar{&c.HTTP.ReadHeader}},
		{Name: "HTTP_READ_TIMEOUT", Default: "20s", Meaning: "time a client has to send a whole request, headers and body; a stalled body is cut off then",
			Var: durationVar{&c.HTTP.Read}},
		{Name: "HTTP_WRITE_TIMEOUT", Default: "30s", Meaning: "time from the end of a request's headers to the end of its answer; websockets, once open, are not bound by it",
			Var: durationVar{&c.HTTP.Write}},
		{Name: "HTTP_IDLE_TIMEOUT", Default: "120s", Meaning: "how long a kept-alive connection may wait for its next request",
			Var: durationVar{&c.HTTP.Idle}},
		{Name: "MAX_HEADER_BYTES", Default: strconv.Itoa(64 << 10), Meaning: "largest request line and headers a client may send; larger ones are answered 431",
			Var: count(&c.HTTP.MaxHeaderBytes).atLeast(1)},
		{Name: "DEBUG_ADDR", Unset: "off", Meaning: "serve Go's profiler (`/debug/pprof/`) on this address, e.g. `127.0.0.1:6060`; keep it private",
			Var: textVar{&c.DebugAddr}},
		{Name: "METRICS_ADDR", Unset: "`" + prodMetricsAddr + "` in `prod`; `/metrics` on `PORT` in `dev`", Meaning: "serve the Prometheus metrics on this address (only there, in any `APP_ENV`); keep it private",
			Var: textVar{&c.MetricsAddr}},
	}
}

// loadConfig reads every setting from the environment, an empty variable
// counting as unset, then checks the rules that span settings.
func loadConfig(getenv func(string) string) (config, error) {
	// The workers' timings that no variable sets keep their defaults.
	c := config{Push: push.DefaultConfig, LoginEmail: mail.DefaultConfig}
	for _, s := range c.settings() {
		v := getenv(s.Name)
		if v == "" {
			v = s.Default
		}
		if err := s.Var.Set(s.Name, v); err != nil {
			return c, err
		}
	}
	if c.Env == "prod" && c.MetricsAddr == "" {
		c.MetricsAddr = prodMetricsAddr
	}
	return c, c.check()
}

// check applies the rules that span settings. Those about the login code
// sender are the serve command's alone (see newLoginSender): the other
// commands send no email.
func (c *config) check() error {
	switch {
	case c.Env == "prod" && len(c.JWTSecret) < auth.MinSecretBytes:
		return fmt.Errorf("APP_ENV=prod needs JWT_SECRET of at least %d bytes", auth.MinSecretBytes)
	case c.Env == "prod" && c.DatabaseURL == "":
		return errors.New("APP_ENV=prod needs DATABASE_URL")
	case c.JWTSecret != nil && len(c.JWTSecret) < auth.MinSecretBytes:
		return fmt.Errorf("JWT_SECRET must be at least %d bytes", auth.MinSecretBytes)
	}
	return nil
}

// ensureSecret loads the token secret kept in the data directory, creating
// it on first use, so dev tokens survive restarts without configuration.
func (c *config) ensureSecret() error {
	if c.JWTSecret != nil {
		return nil
	}
	path := filepath.Join(c.DataDir, "jwt-secret")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= auth.MinSecretBytes {
		c.JWTSecret = []byte(strings.TrimSpace(string(b)))
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	c.JWTSecret = []byte(hex.EncodeToString(secret))
	return os.WriteFile(path, append(c.JWTSecret, '\n'), 0o600)
}

// LogValue is the start-up line's view of the configuration: every
// setting under its variable's name, secrets masked.
func (c config) LogValue() slog.Value {
	settings := c.settings()
	attrs := make([]slog.Attr, len(settings))
	for i, s := range settings {
		attrs[i] = slog.String(s.Name, s.Var.String())
	}
	return slog.GroupValue(attrs...)
}
