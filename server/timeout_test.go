package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/realtime"
)

// holdLock runs lockSQL in a transaction of the test's own, which keeps
// the lock until the returned function (or the end of the test) ends it.
func holdLock(t *testing.T, s *testServer, lockSQL string, args ...any) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.bundle.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, lockSQL, args...); err != nil {
		tx.Rollback(ctx)
		t.Fatal(err)
	}
	var done bool
	release = func() {
		if !done {
			done = true
			tx.Rollback(ctx)
		}
	}
	t.Cleanup(release)
	return release
}

// A request whose statement waits longer than DATABASE_STATEMENT_TIMEOUT
// (here for a lock another transaction holds) is answered UNAVAILABLE
// without waiting for the lock, writes nothing, and the app's retry
// succeeds once the database has caught up.
func TestStatementTimeoutAnswersUnavailable(t *testing.T) {
	t.Parallel()
	// Long enough for every ordinary statement on a busy test machine,
	// and far shorter than the lock below, which is held until the answer.
	const timeout = 250 * time.Millisecond
	s := startServer(t, func(env map[string]string) { env["DATABASE_STATEMENT_TIMEOUT"] = timeout.String() })
	k := s.kit(t)
	m := s.addMember(t, db.RoleMember)
	sh := k.ShiftOn(k.Line(), 48*time.Hour, 3)
	vars := map[string]any{"s": sh.ID, "k": "tap-1"}

	t.Run("a sign-up waiting for its shift's lock", func(t *testing.T) {
		release := holdLock(t, s, `SELECT 1 FROM shifts WHERE id = $1 FOR UPDATE`, sh.ID)
		mark := s.log.mark()
		start := time.Now()
		r := s.gql(t, m.Token, signUpMutation, vars)
		took := time.Since(start)
		release()
		if r.Code() != string(db.CodeUnavailable) || !r.NoData() {
			t.Fatalf("sign-up behind a held lock: %s, want UNAVAILABLE and no data", r)
		}
		if took > 10*time.Second {
			t.Errorf("UNAVAILABLE came after %v, with the statement timeout at %v", took, timeout)
		}
		var counts struct{ signups, events, signedUp int }
		if err := s.bundle.Pool.QueryRow(context.Background(), `
SELECT (SELECT count(*) FROM signups WHERE shift_id = $1),
       (SELECT count(*) FROM line_events WHERE shift_id = $1 AND kind = 'SIGNUP_CHANGED'),
       (SELECT signed_up_count FROM shifts WHERE id = $1)`, sh.ID).Scan(&counts.signups, &counts.events, &counts.signedUp); err != nil {
			t.Fatal(err)
		}
		if counts.signups != 0 || counts.events != 0 || counts.signedUp != 0 {
			t.Fatalf("the sign-up that timed out left %+v behind", counts)
		}
		for _, l := range s.log.Lines()[mark:] {
			if strings.Contains(l, "level=ERROR") {
				t.Errorf("a timeout is no internal error, yet the log says: %s", l)
			}
		}
		var out struct{ SignUpForShift struct{ Status string } }
		s.do(t, m.Token, signUpMutation, vars, &out)
		if out.SignUpForShift.Status != "SIGNED_UP" {
			t.Fatalf("the retry with the same key: %+v, want SIGNED_UP", out)
		}
	})

	t.Run("a session check that cannot read the sessions", func(t *testing.T) {
		release := holdLock(t, s, `LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`)
		r := s.gql(t, m.Token, `{ me { id } }`, nil)
		release()
		// Not 401: the app would sign its member out.
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("session check behind a lock: %s, want HTTP 503", r)
		}
		var body gqlResponse
		if err := json.Unmarshal(r.Body, &body); err != nil || body.Code() != string(db.CodeUnavailable) {
			t.Fatalf("session check behind a lock: %s (%v), want UNAVAILABLE", r.Body, err)
		}
		s.do(t, m.Token, `{ me { id } }`, nil, nil)
	})

	t.Run("a websocket whose session cannot be checked closes 1013", func(t *testing.T) {
		release := holdLock(t, s, `LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`)
		ws := s.dialWS(t, nil)
		ws.send(wsMsg{Type: "connection_init", Payload: []byte(`{"authorization":"Bearer ` + m.Token + `"}`)})
		// Not 4403: the token is good, and an app told 4403 signs out.
		ws.expectClose(realtime.CloseTryAgainLater)
		release()
	})
}

// Migrations run without a statement timeout, neither the server's nor
// one the database sets for every session: building an index on a big
// table, or waiting for another replica's migrations, takes its time.
func TestMigrationsHaveNoStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewEmptyDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	// Far less than any migration takes.
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` SET statement_timeout = '5ms'`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	env := testEnv(t, url)
	env["DATABASE_STATEMENT_TIMEOUT"] = "1ms"
	if _, err := runCLI(t, env, "migrate"); err != nil {
		t.Fatalf("migrating under a statement timeout: %v", err)
	}
}
