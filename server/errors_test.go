package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/introspection"
	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/graph"
)

func TestBadInputNamesTheField(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	staff := s.addMember(t, db.RoleCoordinator)
	ja := k.JobAction()
	line := k.LineOf(ja)
	sh := k.ShiftOn(line, 48*time.Hour, 3)
	start := time.Now().Add(24 * time.Hour)
	shiftInput := func(edit func(in map[string]any)) map[string]any {
		in := map[string]any{"picketLineId": line.ID, "startsAt": ts(start), "endsAt": ts(start.Add(4 * time.Hour)), "capacity": 5}
		edit(in)
		return map[string]any{"in": in}
	}
	const createShift = `mutation($in: CreateShiftInput!) { createShift(input: $in) { id } }`
	cases := []struct {
		name, query string
		vars        map[string]any
		field       string
	}{
		{"capacity 0", createShift, shiftInput(func(in map[string]any) { in["capacity"] = 0 }), "capacity"},
		{"capacity too large", createShift, shiftInput(func(in map[string]any) { in["capacity"] = 10001 }), "capacity"},
		{"start in the past", createShift, shiftInput(func(in map[string]any) { in["startsAt"] = ts(time.Now().Add(-time.Hour)) }), "startsAt"},
		{"end before start", createShift, shiftInput(func(in map[string]any) { in["endsAt"] = ts(start.Add(-time.Hour)) }), "endsAt"},
		{"longer than a day", createShift, shiftInput(func(in map[string]any) { in["endsAt"] = ts(start.Add(25 * time.Hour)) }), "endsAt"},
		{"malformed time", createShift, shiftInput(func(in map[string]any) { in["startsAt"] = "next tuesday" }), "startsAt"},
		{"capacity below the signed up", `mutation($in: UpdateShiftInput!) { updateShift(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"id": sh.ID, "capacity": 0}}, "capacity"},
		{"latitude", `mutation($in: CreatePicketLineInput!) { createPicketLine(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"jobActionId": ja.ID, "name": "Gate", "address": "1 Main St", "latitude": 91, "longitude": 0}}, "latitude"},
		{"geofence", `mutation($in: UpdatePicketLineInput!) { updatePicketLine(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"id": line.ID, "geofenceMeters": 5}}, "geofenceMeters"},
		{"empty name", `mutation($in: CreateJobActionInput!) { createJobAction(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"name": "  ", "kind": "STRIKE", "employer": "E", "startsAt": ts(start)}}, "name"},
		{"cutoff", `mutation($in: UpdateJobActionInput!) { updateJobAction(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"id": ja.ID, "cancelCutoffMinutes": -1}}, "cancelCutoffMinutes"},
		{"two announcement targets", `mutation($in: PostAnnouncementInput!) { postAnnouncement(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"picketLineId": line.ID, "jobActionId": ja.ID, "body": "Hello"}}, "picketLineId"},
		{"empty announcement", `mutation($in: PostAnnouncementInput!) { postAnnouncement(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"picketLineId": line.ID, "body": " "}}, "body"},
		{"long idempotency key", signUpMutation, map[string]any{"s": sh.ID, "k": strings.Repeat("k", 129)}, "idempotencyKey"},
		{"page too large", `{ openShifts(first: 101) { edges { cursor } } }`, nil, "first"},
		{"bad cursor", `{ openShifts(after: "not-a-cursor") { edges { cursor } } }`, nil, "after"},
		{"bad phone", `mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"phone": "call me maybe"}}, "phone"},
		{"bad email", `mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"email": "not-an-email"}}, "email"},
	}
	// The shift above holds one member, so its capacity cannot go to 0
	// for that reason as well as for the range.
	k.SignUp(k.NewMember(), sh)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.fails(t, staff.Token, c.query, c.vars, "BAD_USER_INPUT")
			if got := r.Errors[0].Extensions.Field; got != c.field {
				t.Errorf("extensions.field %q, want %q (%s)", got, c.field, r)
			}
			if !r.NoData() {
				t.Errorf("answered data %s", r.Data)
			}
		})
	}
	t.Run("another member's email is a conflict on the email field", func(t *testing.T) {
		other := s.addMember(t, db.RoleMember)
		r := s.fails(t, staff.Token, `mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"email": strings.ToUpper(other.Email)}}, "CONFLICT")
		if r.Errors[0].Extensions.Field != "email" {
			t.Fatalf("taking another member's email: %s, want field email", r)
		}
	})
	t.Run("a login code for a malformed address is bad input on the email", func(t *testing.T) {
		r := s.fails(t, "", `mutation { requestLoginCode(email: "nobody") }`, nil, "BAD_USER_INPUT")
		if r.Errors[0].Extensions.Field != "email" {
			t.Fatalf("requestLoginCode(nobody): %s, want field email", r)
		}
	})
}

func TestUnknownIDs(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	staff := s.addMember(t, db.RoleCoordinator)
	line := s.kit(t).Line()
	for name, id := range map[string]string{"unknown id": "0b7c6f4e-1c1d-4e8a-9d5e-000000000000", "malformed id": "not-an-id"} {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct{ name, query string }{
				{"updateJobAction", `mutation($id: ID!) { updateJobAction(input: {id: $id, name: "x"}) { id } }`},
				{"endJobAction", `mutation($id: ID!) { endJobAction(id: $id) { id } }`},
				{"updatePicketLine", `mutation($id: ID!) { updatePicketLine(input: {id: $id, name: "x"}) { id } }`},
				{"createPicketLine", `mutation($id: ID!) { createPicketLine(input: {jobActionId: $id, name: "x", address: "y", latitude: 1, longitude: 1}) { id } }`},
				{"createShift", `mutation($id: ID!) { createShift(input: {picketLineId: $id, startsAt: "2099-01-01T06:00:00Z", endsAt: "2099-01-01T10:00:00Z", capacity: 2}) { id } }`},
				{"updateShift", `mutation($id: ID!) { updateShift(input: {id: $id, capacity: 2}) { id } }`},
				{"cancelShift", `mutation($id: ID!) { cancelShift(id: $id) { id } }`},
				{"signUpForShift", `mutation($id: ID!) { signUpForShift(shiftId: $id) { id } }`},
				{"cancelSignup", `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`},
				{"postAnnouncement to a line", `mutation($id: ID!) { postAnnouncement(input: {picketLineId: $id, body: "x"}) { id } }`},
				{"postAnnouncement to a job action", `mutation($id: ID!) { postAnnouncement(input: {jobActionId: $id, body: "x"}) { id } }`},
				{"assignCaptain", `mutation($id: ID!) { assignCaptain(picketLineId: $id, memberId: $id) { assignedAt } }`},
			} {
				t.Run(c.name+" is not found", func(t *testing.T) {
					s.fails(t, staff.Token, c.query, map[string]any{"id": id}, "NOT_FOUND")
				})
			}
			t.Run("assignCaptain names which of the two is missing", func(t *testing.T) {
				r := s.fails(t, staff.Token, `mutation($l: ID!, $m: ID!) { assignCaptain(picketLineId: $l, memberId: $m) { assignedAt } }`,
					map[string]any{"l": line.ID, "m": id}, "NOT_FOUND")
				if !strings.Contains(r.Errors[0].Message, "member") {
					t.Fatalf("assignCaptain of an unknown member: %s", r)
				}
			})
			t.Run("queries of one object answer null without an error", func(t *testing.T) {
				var out map[string]any
				s.do(t, staff.Token, `query($id: ID!) { jobAction(id: $id) { id } picketLine(id: $id) { id } shift(id: $id) { id } }`, map[string]any{"id": id}, &out)
				for k, v := range out {
					if v != nil {
						t.Errorf("%s(%s) = %v, want null", k, id, v)
					}
				}
			})
			t.Run("removeCaptain answers false", func(t *testing.T) {
				var rc struct{ RemoveCaptain bool }
				s.do(t, staff.Token, `mutation($l: ID!, $m: ID!) { removeCaptain(picketLineId: $l, memberId: $m) }`, map[string]any{"l": line.ID, "m": id}, &rc)
				if rc.RemoveCaptain {
					t.Fatalf("removeCaptain of an unknown member answered true")
				}
			})
		})
	}
}

func TestInternalErrorsLeakNothing(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	staff := s.addMember(t, db.RoleCoordinator)
	// A constraint the code knows nothing about makes the insert fail with
	// a PostgreSQL error, which is an internal error to the API.
	s.sql(t, `ALTER TABLE job_actions ADD CONSTRAINT job_actions_secret_rule CHECK (employer <> 'Forbidden Corp')`)
	mark := s.log.mark()
	r := s.gql(t, staff.Token, `mutation { createJobAction(input: {name: "Strike", kind: STRIKE, employer: "Forbidden Corp", startsAt: "2026-01-01T00:00:00Z"}) { id } }`, nil)
	if r.Code() != "INTERNAL" || !r.NoData() {
		t.Fatalf("got %s, want INTERNAL", r)
	}
	id := r.Errors[0].Extensions.RequestID

	t.Run("the answer gives the request id and nothing else", func(t *testing.T) {
		if id == "" || id != r.Header.Get("X-Request-Id") {
			t.Fatalf("requestId %q, X-Request-Id %q: want the same, not empty", id, r.Header.Get("X-Request-Id"))
		}
		if msg := r.Errors[0].Message; msg != "internal error (request "+id+")" {
			t.Fatalf("message %q, want only the request id", msg)
		}
		for _, secret := range []string{"job_actions", "constraint", "SQLSTATE", "violates", "CreateJobAction", "Forbidden Corp"} {
			if bytes.Contains(r.Body, []byte(secret)) {
				t.Errorf("the answer leaks %q: %s", secret, r.Body)
			}
		}
	})
	t.Run("the server log holds the detail under the same request id", func(t *testing.T) {
		s.log.waitAfter(t, mark, waitTimeout, func(l string) bool {
			return strings.Contains(l, `msg="internal error"`) && strings.Contains(l, "requestId="+id) && strings.Contains(l, "job_actions_secret_rule")
		})
	})
	t.Run("a client cannot choose its request id", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+staff.Token)
		req.Header.Set("X-Request-Id", "forged-id")
		if got := s.send(t, req).Header.Get("X-Request-Id"); got == "" || got == "forged-id" {
			t.Fatalf("X-Request-Id %q: want a fresh id of the server's", got)
		}
	})
}

func TestErrorPresenterHidesInternalErrors(t *testing.T) {
	t.Parallel()
	ctx := db.WithRequestID(context.Background(), "REQ123")

	t.Run("an internal error shows only the request id and is reported", func(t *testing.T) {
		var reported []error
		present := graph.ErrorPresenter(func(ctx context.Context, err error) { reported = append(reported, err) })
		plain := errors.New(`ERROR: relation "members" does not exist (SQLSTATE 42P01)`)
		got := present(ctx, fmt.Errorf("Me: %w", plain))
		if got.Message != "internal error (request REQ123)" {
			t.Errorf("message %q, want only the request id", got.Message)
		}
		if diff := cmp.Diff(map[string]any{"code": "INTERNAL", "requestId": "REQ123"}, got.Extensions); diff != "" {
			t.Errorf("extensions (-want +got):\n%s", diff)
		}
		if len(reported) != 1 || !errors.Is(reported[0], plain) {
			t.Errorf("reported %v, want the internal error once", reported)
		}
	})

	t.Run("a domain error keeps its message and code, even wrapped, and is not reported", func(t *testing.T) {
		var reported []error
		present := graph.ErrorPresenter(func(ctx context.Context, err error) { reported = append(reported, err) })
		got := present(ctx, fmt.Errorf("CreateShift: %w", &db.Error{Code: db.CodeBadUserInput, Field: "capacity", Message: "must be between 1 and 10000"}))
		if got.Message != "must be between 1 and 10000" || got.Extensions["code"] != "BAD_USER_INPUT" || got.Extensions["field"] != "capacity" {
			t.Errorf("domain error presented as %q %v", got.Message, got.Extensions)
		}
		got = present(ctx, &db.Error{Code: db.CodeRateLimited, Message: "too many attempts", RetryAfterSeconds: 42})
		if got.Extensions["retryAfterSeconds"] != 42 {
			t.Errorf("rate limit presented with %v", got.Extensions)
		}
		if len(reported) != 0 {
			t.Errorf("domain errors were reported as internal: %v", reported)
		}
	})
}

func TestRequestLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)

	refused := func(t *testing.T, r *gqlResponse, what string) {
		t.Helper()
		if r.Status/100 == 2 && len(r.Errors) == 0 {
			t.Fatalf("%s accepted: %s", what, r)
		}
		if !r.NoData() {
			t.Fatalf("%s answered data: %s", what, r)
		}
	}

	t.Run("only JSON POST", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/graphql?query=%7B%20me%20%7B%20id%20%7D%20%7D", nil)
		req.Header.Set("Authorization", "Bearer "+m.Token)
		refused(t, s.send(t, req), "GET /graphql")
		body := []byte(`{"query":"{ me { id } }"}`)
		refused(t, s.post(t, m.Token, "text/plain", body), "a text/plain POST")
		refused(t, s.post(t, m.Token, "", body), "a POST without Content-Type")
		refused(t, s.post(t, m.Token, "application/x-www-form-urlencoded", []byte("query=%7B+me+%7B+id+%7D+%7D")), "a form POST")
		refused(t, s.post(t, m.Token, "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{ me { id } }\"}\r\n--x--\r\n")), "a multipart POST")
		refused(t, s.post(t, m.Token, "application/json", []byte(`[{"query":"{ me { id } }"},{"query":"{ me { id } }"}]`)), "a batch")
		// The control: the same body as JSON works.
		if r := s.post(t, m.Token, "application/json; charset=utf-8", body); r.Status != 200 || !r.HasData() {
			t.Fatalf("JSON POST: %s", r)
		}
	})

	t.Run("body size", func(t *testing.T) {
		// Blanks are free in GraphQL, so the query stays cheap to parse.
		pad := func(n int) []byte {
			return []byte(`{"query":"{ me { id } }` + strings.Repeat(" ", n) + `"}`)
		}
		if r := s.post(t, m.Token, "application/json", pad(1000<<10)); r.Status != 200 || !r.HasData() {
			t.Fatalf("a 1000 KiB body: %s", r)
		}
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(pad(1100<<10)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+m.Token)
		r, err := s.trySend(req)
		if err != nil {
			// The server may close the connection while the client is
			// still sending; that is a refusal too.
			t.Logf("a 1100 KiB body: %v", err)
			return
		}
		refused(t, r, "a 1100 KiB body")
		if bytes.Contains(r.Body, []byte(strings.Repeat(" ", 1000))) {
			t.Fatalf("the refusal echoes the body back (%d bytes)", len(r.Body))
		}
	})

	t.Run("introspection in dev", func(t *testing.T) {
		var out struct {
			Schema struct {
				QueryType struct{ Name string }   `json:"queryType"`
				Types     []struct{ Name string } `json:"types"`
			} `json:"__schema"`
		}
		s.do(t, "", `{ __schema { queryType { name } types { name } } }`, nil, &out)
		if out.Schema.QueryType.Name != "Query" || len(out.Schema.Types) < 10 {
			t.Fatalf("introspection = %+v", out.Schema)
		}
	})

	t.Run("GraphiQL's introspection query in dev", func(t *testing.T) {
		// GraphiQL at / and code generators send the full introspection
		// query, whose type references nest deeper than 12 levels.
		var out struct {
			Schema struct {
				Types []struct{ Name string } `json:"types"`
			} `json:"__schema"`
		}
		s.do(t, "", introspection.Query, nil, &out)
		if len(out.Schema.Types) < 10 {
			t.Fatalf("full introspection = %+v", out.Schema)
		}
	})

	t.Run("depth", func(t *testing.T) {
		// nested(n) asks for n levels of fields: myShifts, edges, node,
		// shift, mySignup, shift, ... and then id; only the edges are a
		// list, so the cost stays small.
		nested := func(n int) string {
			q := "id"
			for i := n - 1; i >= 1; i-- {
				field := "mySignup"
				switch {
				case i == 1:
					field = "myShifts"
				case i == 2:
					field = "edges"
				case i == 3:
					field = "node"
				case i%2 == 0:
					field = "shift"
				}
				q = field + " { " + q + " }"
			}
			return "{ " + q + " }"
		}
		if r := s.gql(t, m.Token, nested(12), nil); r.Status != 200 || len(r.Errors) > 0 {
			t.Fatalf("12 levels refused: %s\n%s", r, nested(12))
		}
		r := s.gql(t, m.Token, nested(13), nil)
		refused(t, r, "13 levels")
		if !strings.Contains(r.Errors[0].Message, "deep") {
			t.Fatalf("13 levels: %s", r)
		}
		// Fragments do not hide depth.
		frag := `query { ...A } fragment A on Query { myShifts { edges { node { shift { mySignup { shift { ...B } } } } } } }
			fragment B on Shift { mySignup { shift { mySignup { shift { mySignup { shift { id } } } } } } }`
		r = s.gql(t, m.Token, frag, nil)
		refused(t, r, "13 levels through fragments")
		if !strings.Contains(r.Errors[0].Message, "deep") {
			t.Fatalf("13 levels through fragments: %s", r)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		// 16,000 tokens in about 180 KiB: under the body limit, over the
		// parser's.
		query := "{ me { id } " + strings.Repeat("__typename ", 16000) + "}"
		r := s.gql(t, m.Token, query, nil)
		refused(t, r, "a query of 16,000 tokens")
		if !strings.Contains(r.Errors[0].Message, "token") {
			t.Fatalf("a query of 16,000 tokens: %s", r)
		}
	})

	t.Run("unknown field", func(t *testing.T) {
		r := s.gql(t, m.Token, `{ me { id password } }`, nil)
		refused(t, r, "an unknown field")
	})
}

// A database failure while checking a token is the server's fault, not the
// client's: answering 401 would make every app sign its member out.
func TestDatabaseOutageIsNotAnAuthenticationFailure(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	s.do(t, m.Token, `{ me { id } }`, nil, nil)
	s.sql(t, `ALTER TABLE sessions RENAME TO sessions_gone`)
	mark := s.log.mark()
	r := s.gql(t, m.Token, `{ me { id } }`, nil)
	id := r.Header.Get("X-Request-Id")

	t.Run("the answer is a 5xx, never 401", func(t *testing.T) {
		if r.Status == http.StatusUnauthorized || r.Status/100 != 5 {
			t.Fatalf("with the sessions table gone: %s, want a 5xx, never 401", r)
		}
	})
	t.Run("the answer leaks nothing", func(t *testing.T) {
		for _, secret := range []string{"sessions", "relation", "SQLSTATE", "SessionActor"} {
			if bytes.Contains(r.Body, []byte(secret)) {
				t.Errorf("the answer leaks %q: %s", secret, r.Body)
			}
		}
	})
	t.Run("the answer is a GraphQL error INTERNAL with the request id", func(t *testing.T) {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q for a GraphQL-shaped error, want application/json", ct)
		}
		var body gqlResponse
		if err := json.Unmarshal(r.Body, &body); err != nil || body.Code() != "INTERNAL" {
			t.Fatalf("body %s (%v), want a GraphQL error with code INTERNAL", r.Body, err)
		}
		if got := body.Errors[0].Extensions.RequestID; got == "" || got != id {
			t.Errorf("extensions.requestId %q, want the request's id %q for bug reports", got, id)
		}
	})
	t.Run("the operator finds what happened by the request id", func(t *testing.T) {
		if _, ok := s.log.waitFor(mark, 2*time.Second, nil, func(l string) bool { return strings.Contains(l, id) }); id == "" || !ok {
			t.Errorf("the server log says nothing about request %q:\n%s", id, strings.Join(s.log.Lines()[mark:], "\n"))
		}
	})
	t.Run("once the database is back, so is the session", func(t *testing.T) {
		s.sql(t, `ALTER TABLE sessions_gone RENAME TO sessions`)
		s.do(t, m.Token, `{ me { id } }`, nil, nil)
	})
}

// The limits exist so that no request costs the server much: a document
// under every limit (110 KiB, 10,000 tokens) must not take seconds to
// refuse, even when nobody is signed in.
func TestLargeDocumentsAreCheapToRefuse(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	query := "{ " + strings.Repeat("__typename ", 10000) + "}"
	start := time.Now()
	r := s.gql(t, "", query, nil)
	took := time.Since(start)
	if len(r.Errors) == 0 || !r.NoData() {
		t.Fatalf("10,000 fields: %s, want a refusal", r)
	}
	if took > time.Second {
		t.Fatalf("refusing 10,000 repeated fields took %v (%s): a few such requests keep every core busy", took.Round(time.Millisecond), r.Errors[0].Message)
	}
}
