package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/mail"
	"github.com/picketline/picketline/server/push"
)

// TestConfigurationTableMatchesREADME keeps README.md's Configuration
// table the one the settings declare: same variables, order, defaults and
// meanings.
func TestConfigurationTableMatchesREADME(t *testing.T) {
	var want strings.Builder
	want.WriteString("| variable | default | meaning |\n| --- | --- | --- |\n")
	seen := map[string]bool{}
	for _, s := range (&config{}).settings() {
		if seen[s.Name] {
			t.Errorf("%s is declared twice", s.Name)
		}
		seen[s.Name] = true
		if (s.Default == "") == (s.Unset == "") || s.Meaning == "" {
			t.Errorf("%s needs a meaning and either a default or what unset means", s.Name)
		}
		def := s.Unset
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		want.WriteString("| `" + s.Name + "` | " + def + " | " + s.Meaning + " |\n")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	in := false
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| variable | default | meaning |") {
			in = true
		}
		if in && !strings.HasPrefix(line, "|") {
			break
		}
		if in {
			got.WriteString(line + "\n")
		}
	}
	if got.String() != want.String() {
		t.Errorf("README.md's Configuration table differs from the settings in config.go (-want +got):\n%s\nthe table the settings declare:\n\n%s",
			cmp.Diff(strings.Split(want.String(), "\n"), strings.Split(got.String(), "\n")), want.String())
	}
}

func TestConfigurationDefaults(t *testing.T) {
	got, err := loadConfig(getenvOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Env:                            "dev",
		Port:                           8080,
		DBMaxConns:                     16,
		DBStatementTimeout:             5 * time.Second,
		DataDir:                        ".data",
		LogLevel:                       slog.LevelInfo,
		DrainTimeout:                   15 * time.Second,
		EventRetention:                 7 * 24 * time.Hour,
		WSMaxSubscriptions:             50,
		WSMaxUnauthenticatedPerAddress: 20,
		Limits:                         db.Limits{LoginPerAddressPerHour: 30, DevicesPerMember: 10, UrgentPerHour: 6, WSConnectionsPerMember: 10},
		MutationsPerMemberPerMinute:    120,
		Push:                           push.Config{Rate: 6000, Concurrency: 32, MaxAttempts: 8, Lease: time.Minute, BaseBackoff: 2 * time.Second, Poll: time.Second, SendTimeout: 30 * time.Second},
		LoginCodeSender:                "log",
		MaxBodyBytes:                   1 << 20,
		HTTP:                           httpLimits{ReadHeader: 10 * time.Second, Read: 20 * time.Second, Write: 30 * time.Second, Idle: 120 * time.Second, MaxHeaderBytes: 64 << 10},
		LoginEmail:                     mail.Config{MaxAttempts: 5, BaseBackoff: 5 * time.Second, Lease: 2 * time.Minute, Poll: time.Second, Concurrency: 8, SendTimeout: 30 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("configuration of an empty environment (-want +got):\n%s", diff)
	}
}

// TestStartupLineShowsEverySetting checks the configuration the server
// logs at start: every variable under its name, with the value the server
// runs with, and no secret.
func TestStartupLineShowsEverySetting(t *testing.T) {
	const (
		jwtSecret  = "startup-line-secret-0123456789abcdefghij"
		dbPassword = "db-password-canary"
		fcmPass    = "fcm-password-canary"
		smtpPass   = "smtp-password-canary"
	)
	// What each variable is given, and what the line must show: every
	// setting has a row, so a new one is checked for how it prints.
	cases := map[string]struct{ given, shown string }{
		"PORT":                                  {"9090", "9090"},
		"HOST":                                  {"127.0.0.1", "127.0.0.1"},
		"DATABASE_URL":                          {"postgres://picket:" + dbPassword + "@db.example:6432/strike?sslmode=disable", "postgres://picket@db.example:6432/strike"},
		"DATABASE_MAX_CONNS":                    {"24", "24"},
		"DATABASE_STATEMENT_TIMEOUT":            {"1m30s", "1m30s"},
		"JWT_SECRET":                            {jwtSecret, "(40 bytes)"},
		"ALLOWED_ORIGINS":                       {" https://a.example , https://b.example,", "https://a.example,https://b.example"},
		"APP_ENV":                               {"dev", "dev"},
		"DATA_DIR":                              {"/var/lib/picketline", "/var/lib/picketline"},
		"LOG_LEVEL":                             {"warn", "WARN"},
		"DRAIN_TIMEOUT_SECONDS":                 {"20", "20"},
		"UNREADY_DELAY_SECONDS":                 {"5", "5"},
		"EVENT_RETENTION_DAYS":                  {"3", "3"},
		"WS_MAX_SUBSCRIPTIONS":                  {"10", "10"},
		"WS_MAX_CONNECTIONS_PER_MEMBER":         {"0", "1"},
		"WS_MAX_UNAUTHENTICATED_PER_ADDRESS":    {"100", "100"},
		"RATE_LIMIT_MEMBER_PER_MINUTE":          {"0", "0"},
		"RATE_LIMIT_LOGIN_PER_ADDRESS_PER_HOUR": {"60", "60"},
		"MAX_DEVICES_PER_MEMBER":                {"0", "1"},
		"RATE_LIMIT_URGENT_PER_HOUR":            {"12", "12"},
		"TRUSTED_PROXIES":                       {" 10.0.0.0/8 , 192.0.2.10,::ffff:198.51.100.1", "10.0.0.0/8,192.0.2.10/32,198.51.100.1/32"},
		"LOGIN_CODE_SENDER":                     {"smtp", "smtp"},
		"SMTP_URL":                              {"smtp://mailer:" + smtpPass + "@smtp.union.example:587", "smtp://mailer:xxxxx@smtp.union.example:587"},
		"SMTP_FROM":                             {"Picketline <no-reply@union.example>", "Picketline <no-reply@union.example>"},
		"LOGIN_EMAIL_MAX_ATTEMPTS":              {"0", "1"},
		"LOGIN_EMAIL_BACKOFF_MS":                {"250", "250"},
		"FIREBASE_PROJECT_ID":                   {"picketline-prod", "picketline-prod"},
		"GOOGLE_APPLICATION_CREDENTIALS":        {"/etc/picketline/firebase.json", "/etc/picketline/firebase.json"},
		"FCM_ENDPOINT":                          {"http://fcm:" + fcmPass + "@127.0.0.1:9999", "http://fcm:xxxxx@127.0.0.1:9999"},
		"PUSH_RATE":                             {"0", "1"},
		"PUSH_CONCURRENCY":                      {"16", "16"},
		"PUSH_MAX_ATTEMPTS":                     {"4", "4"},
		"PUSH_BACKOFF_MS":                       {"1500", "1500"},
		"MAX_BODY_BYTES":                        {"2097152", "2097152"},
		"HTTP_READ_HEADER_TIMEOUT":              {"5s", "5s"},
		"HTTP_READ_TIMEOUT":                     {"1m", "1m0s"},
		"HTTP_WRITE_TIMEOUT":                    {"45s", "45s"},
		"HTTP_IDLE_TIMEOUT":                     {"2m", "2m0s"},
		"MAX_HEADER_BYTES":                      {"32768", "32768"},
		"DEBUG_ADDR":                            {"127.0.0.1:6060", "127.0.0.1:6060"},
		"METRICS_ADDR":                          {"127.0.0.1:9191", "127.0.0.1:9191"},
	}
	env := map[string]string{}
	want := map[string]string{}
	for _, s := range (&config{}).settings() {
		c, ok := cases[s.Name]
		if !ok {
			t.Errorf("no case for %s: say what it is given and how the start-up line shows it", s.Name)
			continue
		}
		env[s.Name], want[s.Name] = c.given, c.shown
	}
	cfg, err := loadConfig(getenvOf(env))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting picketline", "config", cfg)
	for _, secret := range []string{jwtSecret, dbPassword, fcmPass, smtpPass} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the start-up line holds a secret: %s", buf.String())
		}
	}
	var line struct{ Config map[string]string }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, line.Config); diff != "" {
		t.Errorf("start-up line (-want +got):\n%s", diff)
	}

	// Unset, the database and the secret say where they come from.
	cfg, err = loadConfig(getenvOf(map[string]string{"DATA_DIR": "/srv/data"}))
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{}
	for _, a := range cfg.LogValue().Group() {
		shown[a.Key] = a.Value.String()
	}
	for name, want := range map[string]string{"DATABASE_URL": "embedded PostgreSQL in /srv/data/postgres", "JWT_SECRET": "(from data dir)"} {
		if shown[name] != want {
			t.Errorf("%s unset shows %q, want %q", name, shown[name], want)
		}
	}
}
