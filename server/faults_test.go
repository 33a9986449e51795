package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/realtime"
)

// readyz returns the status /readyz answers.
func (s *testServer) readyz(t *testing.T) int {
	t.Helper()
	resp, err := s.http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestDatabaseRestartWhileSignupsAndSubscriptionsRun(t *testing.T) {
	t.Parallel()
	pg := dbtest.StartCluster(t)
	s := startServerWith(t, pg.URL())
	k := s.kit(t)
	l := s.liveLine(t, 50)
	ws := s.dialWS(t, nil)
	ws.init(l.captain.Token)
	ws.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID, "after": s.lineCursor(t, l.captain.Token, l.line.ID)})
	before := s.addMember(t, db.RoleMember)
	s.signUpOverHTTP(t, before.Token, l.shift.ID)
	first := ws.nextEvent("1", "picketLineEvents")
	refused := s.addMember(t, db.RoleMember)

	mark := s.log.mark()
	pg.Stop()

	t.Run("readiness shows the outage", func(t *testing.T) {
		if code := s.readyz(t); code != http.StatusServiceUnavailable {
			t.Errorf("GET /readyz during the outage: %d, want 503", code)
		}
	})
	t.Run("requests fail cleanly and at once", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"query": httpSignUp, "variables": map[string]any{"s": l.shift.ID}})
		// The harness's client gives up after 30 s: an answer at all shows
		// the request did not hang on the missing database.
		r := s.post(t, refused.Token, "application/json", body)
		if code := r.Code(); code != "UNAVAILABLE" && code != "INTERNAL" {
			t.Errorf("sign-up during the outage: %s, want UNAVAILABLE or INTERNAL", r)
		}
		if strings.Contains(r.String(), "connect") || strings.Contains(r.String(), "127.0.0.1") {
			t.Errorf("the answer tells of the database: %s", r)
		}
	})
	t.Run("a websocket opened meanwhile is told to try again later", func(t *testing.T) {
		during := s.dialWS(t, nil)
		payload, _ := json.Marshal(map[string]string{"authorization": "Bearer " + refused.Token})
		during.send(wsMsg{Type: "connection_init", Payload: payload})
		during.expectClose(realtime.CloseTryAgainLater)
	})

	pg.Start()
	// The kit's connections died with the old postmaster.
	k.Pool.Reset()
	// Written past the server while its listener is still away: only the
	// hub's re-read when the listener is back finds it.
	k.SignUp(k.NewMember(), l.shift)
	// Nothing tells the server that the database is back but its own next
	// attempt: the listener logs it; readiness is asked for until it says so.
	s.log.waitAfter(t, mark, 2*time.Minute, func(line string) bool { return strings.Contains(line, "event listener reconnected") })
	for attempt := 0; s.readyz(t) != http.StatusOK; attempt++ {
		if attempt == 100 {
			t.Fatal("/readyz did not recover after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("no sign-up is half-written", func(t *testing.T) {
		sh := k.ReloadShift(l.shift.ID)
		var rows int
		if err := k.Pool.QueryRow(k.Ctx, `SELECT count(*) FROM signups WHERE shift_id = $1 AND status = 'SIGNED_UP'`, l.shift.ID).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if sh.SignedUpCount != 2 || rows != 2 {
			t.Errorf("after the outage the shift counts %d signed up and holds %d sign-ups, want the one made before and the one after", sh.SignedUpCount, rows)
		}
	})
	t.Run("subscribers get every event committed since, in order", func(t *testing.T) {
		// The one written past the server, then one through it.
		s.signUpOverHTTP(t, refused.Token, l.shift.ID)
		seq := first.Seq
		for want := 2; want > 0; {
			e := ws.nextEvent("1", "picketLineEvents")
			if e.Seq != seq+1 {
				t.Fatalf("event %d after %d: a gap or a repeat", e.Seq, seq)
			}
			seq = e.Seq
			if e.Kind == "SIGNUP_CHANGED" {
				want--
			}
		}
	})
}
