package main

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// expiredRows writes, at the database's now, an expired login code, an
// ended rate-limit window and a current one; the purge must take the first
// two and leave the third.
func expiredRows(t *testing.T, pool *pgxpool.Pool, now time.Time) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `
WITH m AS (INSERT INTO members (name, email) VALUES ('Ana Purge', 'ana.purge@example.org') RETURNING id),
     c AS (INSERT INTO login_codes (member_id, code_hash, expires_at) SELECT id, '\x00', $1::timestamptz - interval '2 days' FROM m)
INSERT INTO rate_limits (key, window_start, hits) VALUES ('ended', $1::timestamptz - interval '2 hours', 1), ('current', $1, 1)`, now); err != nil {
		t.Fatal(err)
	}
}

// rateLimitKeys are the keys of the rate-limit windows left.
func rateLimitKeys(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT key FROM rate_limits ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

var purgeLinePattern = regexp.MustCompile(`^(\w+) +(\d+)$`)

// `picketline purge` runs the purge once against the database and prints
// how many rows went from each table, every table the purge visits.
func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	pool := dbtest.PoolFor(t, dbURL)
	expiredRows(t, pool, time.Now())
	out, err := runCLI(t, testEnv(t, dbURL), "purge")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := purgeLinePattern.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("purge printed %q, want one table and its count a line:\n%s", line, out)
		}
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	want := map[string]int{
		"login_codes": 1, "login_emails": 0, "login_requests": 0, "refresh_tokens": 0, "sessions": 0, "rate_limits": 1, "member_mutations": 0,
		"line_events": 0, "member_events": 0, "push_outbox": 0, "shift_reminders": 0, "ws_connections": 0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("purge counts (-want +got):\n%s\noutput:\n%s", diff, out)
	}
	if diff := cmp.Diff([]string{"current"}, rateLimitKeys(t, pool)); diff != "" {
		t.Errorf("rate-limit windows after the purge (-want +got):\n%s", diff)
	}
}

// The server runs the same purge every purgeInterval on its clock.
func TestServerPurgesOnSchedule(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	expiredRows(t, b.Pool, b.Clock.Now())
	log := newLogSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		purgeLoop(ctx, b.Store, b.Clock, db.Retention{Events: 7 * 24 * time.Hour}, slog.New(slog.NewJSONHandler(log, nil)))
	}()
	t.Cleanup(func() { cancel(); <-done })

	if err := b.Clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"current", "ended"}, rateLimitKeys(t, b.Pool)); diff != "" {
		t.Fatalf("before the first purge is due (-want +got):\n%s", diff)
	}
	b.Clock.Advance(purgeInterval)
	line := log.waitAfter(t, 0, waitTimeout, func(l string) bool { return strings.Contains(l, `"msg":"purged"`) })
	for _, count := range []string{`"login_codes":1`, `"rate_limits":1`} {
		if !strings.Contains(line, count) {
			t.Errorf("the purge's log line %s, want %s in it", line, count)
		}
	}
	if diff := cmp.Diff([]string{"current"}, rateLimitKeys(t, b.Pool)); diff != "" {
		t.Errorf("after the scheduled purge (-want +got):\n%s", diff)
	}
}
