package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/picketline/picketline/server/auth"
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
	// UnreadyDelay is how long the server keeps serving with /readyz at 503
	// after a stop signal, so load balancers stop sending before sockets close.
	UnreadyDelay time.Duration
	// EventRetention is how long line and member events are kept for
	// clients resuming by cursor.
	EventRetention time.Duration
	// WSMaxSubscriptions caps the subscriptions of one websocket.
	WSMaxSubscriptions int
	// FirebaseProjectID enables push through FCM; without it push
	// notifications are only logged.
	FirebaseProjectID string
	// FCMEndpoint replaces FCM's address (a fake in tests).
	FCMEndpoint string
	// GoogleCredentials is the service account file, if any.
	GoogleCredentials string
	Push              push.Config
	// LoginCodeSender names how login codes reach members. "log" writes
	// them to the server log; prod must choose it explicitly.
	LoginCodeSender string
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) there.
	DebugAddr string
}

func (c config) dev() bool { return c.Env == "dev" }

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		Env:             envOr(getenv, "APP_ENV", "dev"),
		Host:            getenv("HOST"),
		DatabaseURL:     getenv("DATABASE_URL"),
		DataDir:         envOr(getenv, "DATA_DIR", ".data"),
		LoginCodeSender: getenv("LOGIN_CODE_SENDER"),
		DebugAddr:       getenv("DEBUG_ADDR"),
	}
	var err error
	if c.Env != "dev" && c.Env != "prod" {
		return c, fmt.Errorf("APP_ENV must be dev or prod, not %q", c.Env)
	}
	if c.Port, err = intEnv(getenv, "PORT", 8080); err != nil {
		return c, err
	}
	if c.DBMaxConns, err = intEnv(getenv, "DATABASE_MAX_CONNS", 16); err != nil {
		return c, err
	}
	drain, err := intEnv(getenv, "DRAIN_TIMEOUT_SECONDS", 15)
	if err != nil {
		return c, err
	}
	c.DrainTimeout = time.Duration(drain) * time.Second
	unready, err := intEnv(getenv, "UNREADY_DELAY_SECONDS", 0)
	if err != nil {
		return c, err
	}
	c.UnreadyDelay = time.Duration(unready) * time.Second
	days, err := intEnv(getenv, "EVENT_RETENTION_DAYS", 7)
	if err != nil {
		return c, err
	}
	c.EventRetention = time.Duration(days) * 24 * time.Hour
	if c.WSMaxSubscriptions, err = intEnv(getenv, "WS_MAX_SUBSCRIPTIONS", 50); err != nil {
		return c, err
	}
	c.FirebaseProjectID = getenv("FIREBASE_PROJECT_ID")
	c.FCMEndpoint = getenv("FCM_ENDPOINT")
	c.GoogleCredentials = getenv("GOOGLE_APPLICATION_CREDENTIALS")
	c.Push = push.DefaultConfig
	rateLimit, err := intEnv(getenv, "PUSH_RATE", int(push.DefaultConfig.Rate))
	if err != nil {
		return c, err
	}
	c.Push.Rate = float64(max(rateLimit, 1))
	if c.Push.Concurrency, err = intEnv(getenv, "PUSH_CONCURRENCY", push.DefaultConfig.Concurrency); err != nil {
		return c, err
	}
	c.Push.Concurrency = max(c.Push.Concurrency, 1)
	if c.Push.MaxAttempts, err = intEnv(getenv, "PUSH_MAX_ATTEMPTS", push.DefaultConfig.MaxAttempts); err != nil {
		return c, err
	}
	backoff, err := intEnv(getenv, "PUSH_BACKOFF_MS", int(push.DefaultConfig.BaseBackoff/time.Millisecond))
	if err != nil {
		return c, err
	}
	c.Push.BaseBackoff = time.Duration(max(backoff, 1)) * time.Millisecond
	if err := c.LogLevel.UnmarshalText([]byte(envOr(getenv, "LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	for _, o := range strings.Split(getenv("ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if s := getenv("JWT_SECRET"); s != "" {
		c.JWTSecret = []byte(s)
	}
	switch {
	case c.Env == "prod" && len(c.JWTSecret) < auth.MinSecretBytes:
		return c, fmt.Errorf("APP_ENV=prod needs JWT_SECRET of at least %d bytes", auth.MinSecretBytes)
	case c.Env == "prod" && c.DatabaseURL == "":
		return c, errors.New("APP_ENV=prod needs DATABASE_URL")
	case c.Env == "prod" && c.LoginCodeSender != "log":
		return c, errors.New("APP_ENV=prod needs LOGIN_CODE_SENDER=log (login codes are written to the server log)")
	case c.JWTSecret != nil && len(c.JWTSecret) < auth.MinSecretBytes:
		return c, fmt.Errorf("JWT_SECRET must be at least %d bytes", auth.MinSecretBytes)
	}
	if c.LoginCodeSender == "" {
		c.LoginCodeSender = "log"
	}
	if c.LoginCodeSender != "log" {
		return c, fmt.Errorf("LOGIN_CODE_SENDER %q is not known (only log)", c.LoginCodeSender)
	}
	return c, nil
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

// logValue prints the configuration with secrets masked.
func (c config) LogValue() slog.Value {
	dbURL := "embedded PostgreSQL in " + filepath.Join(c.DataDir, "postgres")
	if c.DatabaseURL != "" {
		dbURL = maskURL(c.DatabaseURL)
	}
	return slog.GroupValue(
		slog.String("env", c.Env),
		slog.String("addr", c.Host+":"+strconv.Itoa(c.Port)),
		slog.String("database", dbURL),
		slog.Int("dbMaxConns", c.DBMaxConns),
		slog.String("jwtSecret", mask(c.JWTSecret)),
		slog.Any("allowedOrigins", c.AllowedOrigins),
		slog.String("dataDir", c.DataDir),
		slog.String("logLevel", c.LogLevel.String()),
		slog.Duration("drainTimeout", c.DrainTimeout),
		slog.Duration("unreadyDelay", c.UnreadyDelay),
		slog.Duration("eventRetention", c.EventRetention),
		slog.Int("wsMaxSubscriptions", c.WSMaxSubscriptions),
		slog.String("firebaseProject", c.FirebaseProjectID),
		slog.String("fcmEndpoint", c.FCMEndpoint),
		slog.Float64("pushRate", c.Push.Rate),
		slog.Int("pushConcurrency", c.Push.Concurrency),
		slog.Int("pushMaxAttempts", c.Push.MaxAttempts),
		slog.String("loginCodeSender", c.LoginCodeSender),
	)
}

func mask(secret []byte) string {
	if len(secret) == 0 {
		return "(from data dir)"
	}
	return fmt.Sprintf("(%d bytes)", len(secret))
}

// maskURL names the database without any secret, whatever form the
// connection string takes (a URL with the password in its user part or in
// a parameter, or keyword=value pairs).
func maskURL(raw string) string {
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		return "(unparsable)"
	}
	u := url.URL{Scheme: "postgres", User: url.User(cfg.User), Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + cfg.Database}
	return u.String()
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func intEnv(getenv func(string) string, key string, def int) (int, error) {
	v := getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a whole number, not %q", key, v)
	}
	return n, nil
}
