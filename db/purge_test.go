package db_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// TestPurgeKeepsWhatIsLiveAndDeletesTheRest writes rows into every table
// the purge visits, through the use-cases on the fake clock where they
// make them (old ones first, the clock moving on to now), and directly
// where none makes old rows (push messages in every state). Each window
// gets a row just past it and one just inside.
func TestPurgeKeepsWhatIsLiveAndDeletesTheRest(t *testing.T) {
	b := setup(t)
	const events = 7 * 24 * time.Hour
	// The purge runs at 08:00, 41 days after the kit's epoch.
	now := dbtest.Epoch.Add(41 * 24 * time.Hour)
	ago := func(d time.Duration) {
		t.Helper()
		step := now.Add(-d).Sub(b.Clock.Now())
		if step < 0 {
			t.Fatalf("the timeline runs backwards at %v before the purge", d)
		}
		b.Clock.Advance(step)
	}
	line := b.Line()
	// Names for ids, so that what is left reads as what it was.
	names := map[string]string{}
	session := func(name string) *db.Session {
		m := b.Member(db.RoleMember)
		sess := b.Session(m.ID)
		names[sess.ID] = name
		return sess
	}
	logout := func(sess *db.Session) {
		t.Helper()
		if err := b.Store.Logout(b.Ctx, db.Actor{MemberID: sess.Member.ID, Role: sess.Member.Role, SessionID: sess.ID}); err != nil {
			t.Fatal(err)
		}
	}
	refresh := func(token string) string {
		t.Helper()
		sess, err := b.Store.RefreshSession(b.Ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		return sess.RefreshToken
	}
	// A cancelled shift writes line events and a member event for the
	// member signed up.
	lineAndMemberEvents := func() {
		sh := b.ShiftOn(line, 48*time.Hour, 2)
		b.SignUp(b.NewMember(), sh)
		if _, err := b.Store.CancelShift(b.Ctx, b.Staff, sh.ID); err != nil {
			t.Fatal(err)
		}
	}
	// A member signed up for a shift starting in half an hour gets one
	// reminder recorded.
	reminder := func() {
		sh := b.ShiftOn(line, 30*time.Minute, 2)
		b.SignUp(b.NewMember(), sh)
		if _, err := b.Store.ScheduleReminders(b.Ctx, db.System); err != nil {
			t.Fatal(err)
		}
	}
	loginCode := func(name string) {
		t.Helper()
		m := b.Member(db.RoleMember)
		names[m.ID] = name
		askForCode(t, b, m.Email, "192.0.2.1")
	}

	ago(31*24*time.Hour + time.Hour)
	session("expired 25h ago")
	ago(30*24*time.Hour + 23*time.Hour)
	session("expired 23h ago")
	ago(30*24*time.Hour + time.Hour)
	// The live session's first refresh token was rotated 30 days and an
	// hour ago, its second 29 days ago; the third is its current one.
	live := session("live")
	second := refresh(live.RefreshToken)
	ago(29 * 24 * time.Hour)
	refresh(second)
	ago(8 * 24 * time.Hour)
	lineAndMemberEvents()
	ago(6 * 24 * time.Hour)
	lineAndMemberEvents()
	ago(26 * time.Hour)
	logout(session("revoked 26h ago"))
	ago(25*time.Hour + 30*time.Minute)
	reminder()
	ago(23*time.Hour + 30*time.Minute)
	reminder()
	ago(23 * time.Hour)
	logout(session("revoked 23h ago"))
	// Each code asked for is also counted in the rate-limit windows of its
	// email, 15 minutes long: 06:45 (ended more than an hour ago), 07:00
	// (just within the hour) and 07:45; and of the address, an hour long:
	// 06:00 (ended) and 07:00.
	ago(time.Hour + 11*time.Minute)
	loginCode("expired 1h01m ago")
	ago(time.Hour + 9*time.Minute)
	loginCode("expired 59m ago")
	ago(59 * time.Minute)
	loginCode("expired 49m ago")
	// A member's mutations shared at 07:49 (ended more than ten minutes
	// ago) and at 07:51 (just within them).
	mutations := db.NewMutationLimiter(b.Store, 10)
	mutator := b.Actor(b.Member(db.RoleMember))
	for _, at := range []time.Duration{11 * time.Minute, 9 * time.Minute} {
		ago(at)
		if err := mutations.Admit(mutator, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := mutations.FlushMutationCounts(b.Ctx, db.System); err != nil {
			t.Fatal(err)
		}
	}
	ago(5 * time.Minute)
	loginCode("live")
	// Websockets of a replica that died, one refreshed last just before
	// its rows went stale, one just after.
	ago(db.ConnectionStaleAfter + time.Second)
	if _, _, err := b.Store.AdmitSession(b.Ctx, db.System, live.ID, live.Member.ID, replicaA); err != nil {
		t.Fatal(err)
	}
	ago(db.ConnectionStaleAfter - time.Second)
	if _, _, err := b.Store.AdmitSession(b.Ctx, db.System, live.ID, live.Member.ID, replicaA); err != nil {
		t.Fatal(err)
	}
	ago(0)

	for _, p := range []struct {
		status string
		age    time.Duration
	}{
		{"SENT", 7*24*time.Hour + time.Minute}, {"SENT", 7*24*time.Hour - time.Minute},
		{"CANCELLED", 8 * 24 * time.Hour}, {"CANCELLED", 6 * 24 * time.Hour},
		{"FAILED", 31 * 24 * time.Hour}, {"FAILED", 29 * 24 * time.Hour},
		{"DEAD", 31 * 24 * time.Hour}, {"DEAD", 29 * 24 * time.Hour},
		// Still the worker's, however old.
		{"PENDING", 40 * 24 * time.Hour}, {"SENDING", 40 * 24 * time.Hour},
	} {
		created := now.Add(-p.age)
		if _, err := b.Pool.Exec(b.Ctx, `
INSERT INTO push_outbox (event_id, member_id, device_token, kind, status, next_attempt_at, expires_at, created_at)
VALUES (gen_random_uuid(), $1, 'a device', 'SHIFT_REMINDER', $2, $3, $3, $3)`, b.Staff.MemberID, p.status, created); err != nil {
			t.Fatal(err)
		}
	}

	// Finished login emails either side of their day; the codes asked for
	// above left one PENDING email each, which stays.
	for _, e := range []struct {
		status string
		age    time.Duration
	}{
		{"SENT", 25 * time.Hour}, {"SENT", 23 * time.Hour},
		{"FAILED", 25 * time.Hour}, {"SUPERSEDED", 25 * time.Hour}, {"SUPERSEDED", 23 * time.Hour},
	} {
		created := now.Add(-e.age)
		if _, err := b.Pool.Exec(b.Ctx, `
INSERT INTO login_emails (member_id, status, next_attempt_at, expires_at, created_at)
VALUES ($1, $2, $3, $3, $3)`, b.Staff.MemberID, e.status, created); err != nil {
			t.Fatal(err)
		}
	}

	// Requests for codes no worker resolved, either side of a code's ten
	// minutes.
	for _, age := range []time.Duration{db.LoginRequestRetention + time.Minute, db.LoginRequestRetention - time.Minute} {
		if _, err := b.Pool.Exec(b.Ctx, `INSERT INTO login_requests (sealed_email, requested_at) VALUES ('\x00', $1)`, now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}

	// What each table holds, one label a row: names, or how long before
	// the purge a row's time is.
	age := `to_char($1::timestamptz - %s, 'DD"d"HH24"h"MI"m"')`
	tables := map[string]string{
		"login_codes":      `SELECT member_id::text FROM login_codes`,
		"login_emails":     `SELECT status || ' ' || ` + fmt.Sprintf(age, "created_at") + ` FROM login_emails`,
		"login_requests":   `SELECT ` + fmt.Sprintf(age, "requested_at") + ` FROM login_requests`,
		"sessions":         `SELECT id::text FROM sessions`,
		"refresh_tokens":   `SELECT session_id::text || CASE WHEN used_at IS NULL THEN '' ELSE ' used ' || ` + fmt.Sprintf(age, "used_at") + ` END FROM refresh_tokens`,
		"rate_limits":      `SELECT to_char(window_start AT TIME ZONE 'UTC', 'HH24:MI') FROM rate_limits`,
		"member_mutations": `SELECT to_char(window_start AT TIME ZONE 'UTC', 'HH24:MI') FROM member_mutations`,
		"line_events":      `SELECT ` + fmt.Sprintf(age, "occurred_at") + ` FROM line_events`,
		"member_events":    `SELECT ` + fmt.Sprintf(age, "occurred_at") + ` FROM member_events`,
		"push_outbox":      `SELECT status || ' ' || ` + fmt.Sprintf(age, "created_at") + ` FROM push_outbox`,
		"shift_reminders":  `SELECT 'shift started ' || ` + fmt.Sprintf(age, "shift_starts_at") + ` FROM shift_reminders`,
		"ws_connections":   `SELECT 'seen ' || to_char($1::timestamptz - seen_at, 'MI"m"SS"s"') FROM ws_connections`,
	}
	contents := func() map[string][]string {
		t.Helper()
		out := map[string][]string{}
		for table, query := range tables {
			var args []any
			if strings.Contains(query, "$1") {
				args = append(args, now)
			}
			rows, err := queryStrings(b.Ctx, b.Pool, query, args...)
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			for i, r := range rows {
				for id, name := range names {
					if len(r) >= len(id) && r[:len(id)] == id {
						rows[i] = name + r[len(id):]
					}
				}
			}
			slices.Sort(rows)
			out[table] = rows
		}
		return out
	}
	before := contents()
	eventsAt := func(table, age string) int64 {
		return int64(len(slices.DeleteFunc(slices.Clone(before[table]), func(r string) bool { return r != age })))
	}
	if eventsAt("line_events", "08d00h00m") == 0 || eventsAt("member_events", "08d00h00m") == 0 {
		t.Fatalf("the old events were not written: %v", before)
	}

	report, err := b.Store.Purge(b.Ctx, db.System, db.Retention{Events: events})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string][]string{
		"login_codes": {"expired 49m ago", "expired 59m ago", "live"},
		"login_emails": slices.DeleteFunc(slices.Clone(before["login_emails"]), func(r string) bool {
			return r == "SENT 01d01h00m" || r == "FAILED 01d01h00m" || r == "SUPERSEDED 01d01h00m"
		}),
		"login_requests": {"00d00h09m"},
		"sessions":       {"expired 23h ago", "live", "revoked 23h ago"},
		"refresh_tokens": {
			"expired 23h ago",
			"live",
			"live used 29d00h00m",
			"revoked 23h ago",
		},
		"rate_limits":      {"07:00", "07:00", "07:45"},
		"member_mutations": {"07:51"},
		"line_events":      slices.DeleteFunc(slices.Clone(before["line_events"]), func(r string) bool { return r == "08d00h00m" }),
		"member_events": slices.DeleteFunc(slices.Clone(before["member_events"]), func(r string) bool {
			return r == "08d00h00m"
		}),
		"push_outbox": {
			"CANCELLED 06d00h00m",
			"DEAD 29d00h00m",
			"FAILED 29d00h00m",
			"PENDING 40d00h00m",
			"SENDING 40d00h00m",
			"SENT 06d23h59m",
		},
		"shift_reminders": {"shift started 00d23h00m"},
		"ws_connections":  {"seen 01m29s"},
	}
	if diff := cmp.Diff(want, contents()); diff != "" {
		t.Errorf("what the purge left (-want +got):\n%s\nbefore the purge: %v", diff, before)
	}
	wantReport := db.PurgeReport{
		{Table: "login_codes", Rows: 1},
		{Table: "login_emails", Rows: 3},
		{Table: "login_requests", Rows: 1},
		// The expired, the revoked and the live session's token rotated
		// more than 30 days ago.
		{Table: "refresh_tokens", Rows: 3},
		{Table: "sessions", Rows: 2},
		{Table: "rate_limits", Rows: 3},
		{Table: "member_mutations", Rows: 1},
		{Table: "line_events", Rows: eventsAt("line_events", "08d00h00m")},
		{Table: "member_events", Rows: eventsAt("member_events", "08d00h00m")},
		{Table: "push_outbox", Rows: 4},
		{Table: "shift_reminders", Rows: 1},
		{Table: "ws_connections", Rows: 1},
	}
	if diff := cmp.Diff(wantReport, report); diff != "" {
		t.Errorf("purge report (-want +got):\n%s", diff)
	}

	t.Run("a second purge finds nothing", func(t *testing.T) {
		again, err := b.Store.Purge(b.Ctx, db.System, db.Retention{Events: events})
		if err != nil || again.Total() != 0 {
			t.Fatalf("a second purge deleted %v (%v), want nothing", again, err)
		}
	})
}

// TestPurgeGoesInBatches: a backlog bigger than a batch goes entirely, in
// one purge.
func TestPurgeGoesInBatches(t *testing.T) {
	b := setup(t)
	old := b.Clock.Now().Add(-2 * db.RateLimitRetention)
	backlog := 2*db.PurgeBatch + 1
	if _, err := b.Pool.Exec(b.Ctx, `
INSERT INTO rate_limits (key, window_start, hits)
SELECT 'backlog:' || g, $1::timestamptz, 1 FROM generate_series(1, $2::int) g
UNION ALL SELECT 'current', $3::timestamptz, 1`, old, backlog, b.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	report, err := b.Store.Purge(b.Ctx, db.System, db.Retention{Events: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(report, func(p db.PurgedRows) bool { return p.Table == "rate_limits" }); i < 0 || report[i].Rows != int64(backlog) {
		t.Fatalf("purge report %v, want %d rate-limit windows", report, backlog)
	}
	left, err := queryStrings(b.Ctx, b.Pool, `SELECT key FROM rate_limits`)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"current"}, left); diff != "" {
		t.Fatalf("windows left (-want +got):\n%s", diff)
	}
}
