package db_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// An urgent announcement half fanned out when the server is upgraded goes
// on with the members it had not reached yet, none lost and none told
// twice, once migration 006 has cut its audience into batches: even when a
// replica of the previous release is telling a batch as the migration runs,
// and when such a replica posts another urgent announcement afterwards.
func TestMigrationKeepsFanOutsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewEmptyDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := db.MigrateTo(ctx, conn, 5); err != nil {
		t.Fatal(err)
	}
	pool := dbtest.PoolFor(t, url)
	const audience, done, batch = 2500, 1000, 1000
	if _, err := pool.Exec(ctx, `
WITH author AS (
    INSERT INTO members (name, email, role) VALUES ('Coordinator', 'coordinator@local.test', 'COORDINATOR') RETURNING id
), action AS (
    INSERT INTO job_actions (name, kind, employer, starts_at) VALUES ('Strike', 'STRIKE', 'Employer', now()) RETURNING id
)
INSERT INTO announcements (job_action_id, author_id, body, urgent)
SELECT action.id, author.id, body, true FROM action, author, (VALUES ('Everyone out'), ('Second gate')) AS b(body)`); err != nil {
		t.Fatal(err)
	}
	announcements, err := queryStrings(ctx, pool, `SELECT id::text FROM announcements ORDER BY body`)
	if err != nil {
		t.Fatal(err)
	}
	inFlight, later := announcements[0], announcements[1]
	recipients, err := queryStrings(ctx, pool, `
WITH m AS (
    INSERT INTO members (name, email) SELECT 'Member ' || g, 'member' || g || '@local.test' FROM generate_series(1, $1::int) g RETURNING id
)
SELECT id::text FROM m ORDER BY id`, audience)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO announcement_fanouts (announcement_id, recipients, done, created_at) VALUES ($1, $2, $3, now())`, inFlight, recipients, done); err != nil {
		t.Fatal(err)
	}

	// A replica of the previous release takes the next batch, as its
	// fan-out did, and commits only once the migration has had to wait.
	old, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback(ctx)
	if _, err := old.Exec(ctx, `SELECT 1 FROM announcement_fanouts ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(ctx, `UPDATE announcement_fanouts SET done = done + $2 WHERE announcement_id = $1`, inFlight, batch); err != nil {
		t.Fatal(err)
	}
	migrated := make(chan error, 1)
	go func() { migrated <- db.Migrate(ctx, conn) }()
	// PostgreSQL tells no one when a backend starts waiting for a lock;
	// pg_locks is the only place it shows, so the test looks there until
	// it does (or the migration ends, which fails the test).
	for waiting := false; !waiting; {
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)`, conn.PgConn().PID()).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-migrated:
			t.Fatalf("the migration finished (%v) while a batch was being told", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := old.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-migrated; err != nil {
		t.Fatal(err)
	}
	left := recipients[done+batch:]
	if got := queuedMembers(ctx, t, pool, inFlight); !slices.Equal(got, left) {
		t.Fatalf("batches hold %d members, want the %d not yet told, in order", len(got), len(left))
	}

	// The previous release posts another urgent announcement.
	tag, err := pool.Exec(ctx, `INSERT INTO announcement_fanouts (announcement_id, recipients, created_at) VALUES ($1, $2, now())`, later, recipients[:1500])
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("posting the old way: %v, %d rows", err, tag.RowsAffected())
	}
	if got := queuedMembers(ctx, t, pool, later); !slices.Equal(got, recipients[:1500]) {
		t.Fatalf("the old way queued %d members, want 1500 in order", len(got))
	}
	var oldRows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM announcement_fanouts`).Scan(&oldRows); err != nil || oldRows != 0 {
		t.Fatalf("%d fan-outs left the old way (%v)", oldRows, err)
	}

	// The worker takes the batches from there.
	store := db.NewStore(pool, dbtest.NewClock(time.Now()), []byte("pepper"))
	told := 0
	for {
		n, err := store.FanOutAnnouncements(ctx, db.System)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		told += n
	}
	var events, twice int
	if err := pool.QueryRow(ctx, `
SELECT count(*), count(*) FILTER (WHERE n > 1)
FROM (SELECT count(*) AS n FROM member_events GROUP BY member_id, announcement_id) e`).Scan(&events, &twice); err != nil {
		t.Fatal(err)
	}
	if want := len(left) + 1500; told != want || events != want || twice != 0 {
		t.Fatalf("told %d members, %d with an event, %d twice; want %d, none twice", told, events, twice, want)
	}
}

// queuedMembers lists the members queued in an announcement's batches, in
// batch order, and checks the batches are numbered from 0 and not too big.
func queuedMembers(ctx context.Context, t *testing.T, pool *pgxpool.Pool, announcement string) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT batch, recipients::text[] FROM announcement_fanout_batches WHERE announcement_id = $1 ORDER BY batch`, announcement)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for want := 0; rows.Next(); want++ {
		var (
			n       int
			members []string
		)
		if err := rows.Scan(&n, &members); err != nil {
			t.Fatal(err)
		}
		if n != want || len(members) > db.DefaultFanOutBatch {
			t.Fatalf("batch %d holds %d members, want batch %d with at most %d", n, len(members), want, db.DefaultFanOutBatch)
		}
		got = append(got, members...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func queryStrings(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) ([]string, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
