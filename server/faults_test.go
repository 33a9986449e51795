package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
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

	// A storm of sign-ups on a small shift of the line runs across the
	// outage: the database stops once some are acknowledged.
	storm := k.ShiftOn(l.line, 72*time.Hour, 3)
	queue := make(chan *member, 30)
	for range cap(queue) {
		queue <- s.addMember(t, db.RoleMember)
	}
	close(queue)
	var (
		mu      sync.Mutex
		acked   = map[string]string{} // sign-up: the status acknowledged
		refusal = map[string]int{}    // code: how many
		wg      sync.WaitGroup
	)
	someAcked := make(chan struct{})
	var once sync.Once
	for range 6 {
		wg.Go(func() {
			for m := range queue {
				body, _ := json.Marshal(map[string]any{"query": httpSignUp, "variables": map[string]any{"s": storm.ID}})
				r, err := s.tryPost(m.Token, "application/json", body)
				mu.Lock()
				switch {
				case err != nil:
					refusal["no answer: "+err.Error()]++
				case r.Code() != "":
					refusal[r.Code()]++
				default:
					var out struct {
						SignUpForShift struct{ ID, Status string } `json:"signUpForShift"`
					}
					json.Unmarshal(r.Data, &out)
					acked[out.SignUpForShift.ID] = out.SignUpForShift.Status
					if len(acked) == 5 {
						once.Do(func() { close(someAcked) })
					}
				}
				mu.Unlock()
			}
		})
	}
	<-someAcked

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
		if code := r.Code(); code != "UNAVAILABLE" {
			t.Errorf("sign-up during the outage: %s, want UNAVAILABLE", r)
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
	// attempt, which the listener logs. The pool then pings the connections
	// it kept from before the restart and drops the dead ones, so readiness
	// answers at once.
	s.log.waitAfter(t, mark, 2*time.Minute, func(line string) bool { return strings.Contains(line, "event listener reconnected") })
	if code := s.readyz(t); code != http.StatusOK {
		t.Fatalf("GET /readyz once the database is back: %d, want 200", code)
	}

	wg.Wait()
	t.Run("the storm's sign-ups were written whole or refused cleanly", func(t *testing.T) {
		for code := range refusal {
			if code != "UNAVAILABLE" {
				t.Errorf("sign-ups of the storm answered %s (%d of them)", code, refusal[code])
			}
		}
		rows, err := k.Pool.Query(k.Ctx, `SELECT id, status FROM signups WHERE shift_id = $1`, storm.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]string{}
		counted := map[string]int{}
		for rows.Next() {
			var id, status string
			if err := rows.Scan(&id, &status); err != nil {
				t.Fatal(err)
			}
			stored[id] = status
			counted[status]++
		}
		for id, status := range acked {
			if stored[id] != status {
				t.Errorf("acknowledged sign-up %s (%s) is stored as %q", id, status, stored[id])
			}
		}
		sh := k.ReloadShift(storm.ID)
		if sh.SignedUpCount != counted["SIGNED_UP"] || sh.WaitlistCount != counted["WAITLISTED"] || sh.SignedUpCount > storm.Capacity {
			t.Errorf("the shift counts %d signed up and %d waitlisted of capacity %d; its rows say %v", sh.SignedUpCount, sh.WaitlistCount, storm.Capacity, counted)
		}
		t.Logf("%d acknowledged, %d stored, refused %v", len(acked), len(stored), refusal)
	})
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
		// The storm's, the one written past the server, then one through it.
		s.signUpOverHTTP(t, refused.Token, l.shift.ID)
		var latest int
		if err := k.Pool.QueryRow(k.Ctx, `SELECT event_seq FROM picket_lines WHERE id = $1`, l.line.ID).Scan(&latest); err != nil {
			t.Fatal(err)
		}
		for seq := first.Seq; seq < latest; {
			m := ws.next()
			var body struct {
				Data   map[string]event `json:"data"`
				Errors []gqlError       `json:"errors"`
			}
			if m.Type != "next" || json.Unmarshal(m.Payload, &body) != nil {
				t.Fatalf("got %s %s, want the next event", m.Type, m.Payload)
			}
			// An event handed out as the database went away could not
			// load its shift: it says so, and still carries its place.
			for _, e := range body.Errors {
				if e.Extensions.Code != "UNAVAILABLE" {
					t.Fatalf("event %s", m.Payload)
				}
			}
			e := body.Data["picketLineEvents"]
			if e.Seq != seq+1 {
				t.Fatalf("event %d after %d: a gap or a repeat", e.Seq, seq)
			}
			seq = e.Seq
		}
	})
}
