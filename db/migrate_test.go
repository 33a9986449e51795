package db_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// An urgent announcement half fanned out when the server is upgraded goes
// on with the members it had not reached yet, none lost and none told
// twice, once migration 006 has cut its audience into batches.
func TestMigrationKeepsFanOutsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbtest.NewEmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := db.MigrateTo(ctx, conn, 5); err != nil {
		t.Fatal(err)
	}
	const audience, done = 2500, 1000
	var announcement string
	err = conn.QueryRow(ctx, `
WITH author AS (
    INSERT INTO members (name, email, role) VALUES ('Coordinator', 'coordinator@local.test', 'COORDINATOR') RETURNING id
), action AS (
    INSERT INTO job_actions (name, kind, employer, starts_at) VALUES ('Strike', 'STRIKE', 'Employer', now()) RETURNING id
)
INSERT INTO announcements (job_action_id, author_id, body, urgent)
SELECT action.id, author.id, 'Everyone out', true FROM action, author
RETURNING id`).Scan(&announcement)
	if err != nil {
		t.Fatal(err)
	}
	var recipients []string
	err = conn.QueryRow(ctx, `
WITH m AS (
    INSERT INTO members (name, email) SELECT 'Member ' || g, 'member' || g || '@local.test' FROM generate_series(1, $2::int) g RETURNING id
), f AS (
    INSERT INTO announcement_fanouts (announcement_id, recipients, done, created_at)
    SELECT $1, array_agg(id ORDER BY id), $3, now() FROM m
    RETURNING recipients
)
SELECT recipients::text[] FROM f`, announcement, audience, done).Scan(&recipients)
	if err != nil {
		t.Fatal(err)
	}

	if err := db.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT announcement_id::text, batch, recipients::text[] FROM announcement_fanout_batches ORDER BY batch`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	batch := 0
	for rows.Next() {
		var (
			id      string
			n       int
			members []string
		)
		if err := rows.Scan(&id, &n, &members); err != nil {
			t.Fatal(err)
		}
		if id != announcement || n != batch || len(members) > db.DefaultFanOutBatch {
			t.Fatalf("batch %d of %s holds %d members, want batch %d of %s with at most %d", n, id, len(members), batch, announcement, db.DefaultFanOutBatch)
		}
		batch++
		got = append(got, members...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := recipients[done:]; !slices.Equal(got, want) {
		t.Fatalf("batches hold %d members, want the %d not yet told, in order", len(got), len(want))
	}

	// The worker takes the batches from there.
	pool := dbtest.PoolFor(t, conn.Config().ConnString())
	store := db.NewStore(pool, dbtest.NewClock(time.Now()), []byte("pepper"))
	told := 0
	for {
		n, err := store.FanOutAnnouncements(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		told += n
	}
	var events int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT member_id) FROM member_events WHERE announcement_id = $1`, announcement).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if told != audience-done || events != audience-done {
		t.Fatalf("told %d members, %d with an event; want %d", told, events, audience-done)
	}
}
