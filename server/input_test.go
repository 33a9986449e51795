package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/auth"
)

// wantBadInput checks that r refused the operation with BAD_USER_INPUT
// naming field, and ran none of it.
func wantBadInput(t *testing.T, r *gqlResponse, field string) {
	t.Helper()
	if len(r.Errors) == 0 || !r.NoData() {
		t.Fatalf("answer %s, want BAD_USER_INPUT on %s and no data", r, field)
	}
	e := r.Errors[0].Extensions
	if diff := cmp.Diff([]string{string(db.CodeBadUserInput), field}, []string{e.Code, e.Field}); diff != "" {
		t.Errorf("code and field (-want +got):\n%s\nanswer %s", diff, r)
	}
}

const createLine = `mutation($in: CreatePicketLineInput!) { createPicketLine(input: $in) { id } }`

func TestBadTextAndNumbersAnswerBadUserInput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	staff := s.addMember(t, db.RoleCoordinator)
	ja := s.kit(t).JobAction()
	line := func(change func(in map[string]any)) map[string]any {
		in := map[string]any{"jobActionId": ja.ID, "name": "Gate", "address": "1 Main St", "latitude": 53.5, "longitude": -113.5}
		change(in)
		return map[string]any{"in": in}
	}

	t.Run("a NUL character in a name, from variables and inline", func(t *testing.T) {
		wantBadInput(t, s.gql(t, staff.Token, createLine, line(func(in map[string]any) { in["name"] = "Ga\x00te" })), "input.name")
		wantBadInput(t, s.gql(t, staff.Token, `mutation { updateMyContact(input: {name: "A\u0000B"}) { id } }`, nil), "input.name")
	})
	t.Run("bytes that are not UTF-8 in the raw body", func(t *testing.T) {
		body := []byte(`{"query":"mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id } }","variables":{"in":{"name":"Ana ` + "\xff\xfe" + `"}}}`)
		wantBadInput(t, s.post(t, staff.Token, "application/json", body), "input.name")
	})
	t.Run("a latitude that is not a finite number", func(t *testing.T) {
		for _, v := range []string{"NaN", "Infinity", "-Infinity", "+Inf"} {
			wantBadInput(t, s.gql(t, staff.Token, createLine, line(func(in map[string]any) { in["latitude"] = v })), "input.latitude")
		}
	})
	t.Run("a text one character over its limit, and at it", func(t *testing.T) {
		over := strings.Repeat("é", 201)
		wantBadInput(t, s.gql(t, staff.Token, createLine, line(func(in map[string]any) { in["name"] = over })), "input.name")
		wantBadInput(t, s.gql(t, staff.Token, `mutation($e: String!) { requestLoginCode(email: $e) }`,
			map[string]any{"e": strings.Repeat("a", 243) + "@example.org"}), "email")
		var created struct{ CreatePicketLine struct{ ID string } }
		s.do(t, staff.Token, createLine, line(func(in map[string]any) { in["name"] = over[2:] }), &created)
		if created.CreatePicketLine.ID == "" {
			t.Fatal("a name of exactly 200 characters was refused")
		}
	})
	t.Run("a NUL character over a websocket", func(t *testing.T) {
		ws := s.dialWS(t, nil)
		ws.init(staff.Token)
		ws.subscribe("1", myEventsSub, map[string]any{"after": "c\x00"})
		m := ws.next()
		var r gqlResponse
		if m.Type != "next" || json.Unmarshal(m.Payload, &r) != nil {
			t.Fatalf("got %s %s, want a result with errors", m.Type, m.Payload)
		}
		wantBadInput(t, &r, "after")
	})
	t.Run("an ID over its limit", func(t *testing.T) {
		wantBadInput(t, s.gql(t, staff.Token, `query($id: ID!) { shift(id: $id) { id } }`, map[string]any{"id": strings.Repeat("1", 65)}), "id")
	})
}

// wantTransportError checks an answer refused before GraphQL: a GraphQL
// JSON error with code, at status, holding nothing of the request's body.
func wantTransportError(t *testing.T, r *gqlResponse, status int, code, marker string) {
	t.Helper()
	if r.Status != status || r.Code() != code {
		t.Errorf("answer %s, want HTTP %d with code %s", r, status, code)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if marker != "" && bytes.Contains(r.Body, []byte(marker)) {
		t.Errorf("the answer echoes the body: %s", r.Body)
	}
}

func TestTransportErrorsAreGraphQLWithACode(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["MAX_BODY_BYTES"] = "4096" })
	const marker = "MARKER-4f1c"
	query := []byte(`{"query":"{ __typename } # ` + marker + `"}`)

	t.Run("a body over MAX_BODY_BYTES", func(t *testing.T) {
		body := []byte(`{"query":"{ __typename }","variables":{"pad":"` + marker + strings.Repeat("x", 4096) + `"}}`)
		wantTransportError(t, s.post(t, "", "application/json", body), http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", marker)
	})
	t.Run("a batched array", func(t *testing.T) {
		body := []byte(`[` + string(query) + `,` + string(query) + `]`)
		wantTransportError(t, s.post(t, "", "application/json", body), http.StatusBadRequest, "BATCHING_NOT_SUPPORTED", marker)
	})
	t.Run("a body that is not a JSON object", func(t *testing.T) {
		wantTransportError(t, s.post(t, "", "application/json", []byte(`{"query": "`+marker)), http.StatusBadRequest, "BAD_REQUEST", marker)
	})
	t.Run("a member of the wrong type", func(t *testing.T) {
		for _, body := range []string{
			`{"query": 7, "pad": "` + marker + `"}`,
			`{"query": "{ __typename }", "variables": "` + marker + `"}`,
			`{"query": "{ __typename }", "operationName": ["` + marker + `"]}`,
			`{"query": "{ __typename }", "extensions": "` + marker + `"}`,
			`{"query": null, "pad": "` + marker + `"}`,
		} {
			wantTransportError(t, s.post(t, "", "application/json", []byte(body)), http.StatusBadRequest, "BAD_REQUEST", marker)
		}
	})
	t.Run("an unsupported content type", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
			wantTransportError(t, s.post(t, "", ct, query), http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", marker)
		}
	})
	t.Run("an unsupported method", func(t *testing.T) {
		for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodGet} {
			req, err := http.NewRequest(method, s.URL+"/graphql?query="+marker, bytes.NewReader(query))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			r := s.send(t, req)
			wantTransportError(t, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", marker)
			if r.Header.Get("Allow") == "" {
				t.Errorf("%s answered without Allow", method)
			}
		}
	})
	t.Run("a 401 in the type the client accepts", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(query))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer not-a-token")
		req.Header.Set("Accept", "application/graphql-response+json, application/json;q=0.9")
		r := s.send(t, req)
		if ct := r.Header.Get("Content-Type"); r.Status != http.StatusUnauthorized || ct != auth.GraphQLResponseType || r.Code() != string(db.CodeUnauthenticated) {
			t.Errorf("answer %s as %q, want 401 UNAUTHENTICATED as %s", r, ct, auth.GraphQLResponseType)
		}
	})
}

func TestStalledBodyIsCutOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["HTTP_READ_TIMEOUT"] = "300ms" })
	waitForStalledCutOff(t, s)
}

// waitForStalledCutOff sends a request's headers and half its body, then
// nothing, and returns once the server has closed the connection without
// answering it 200.
func waitForStalledCutOff(t *testing.T, s *testServer) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"query":"{ __typename }"}`
	if _, err := io.WriteString(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	// A guard against a server that never cuts off, far above the timeout.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a stalled body was answered %d", resp.StatusCode)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection with a stalled body was still open after 10s")
	}
}

func TestTokensOverTheMaximumLifetimeAreRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	mint := func(lifetime time.Duration, iat bool) string {
		now := time.Now()
		claims := auth.Claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer:    auth.Issuer,
				Subject:   m.ID,
				Audience:  jwt.ClaimStrings{auth.Audience},
				NotBefore: jwt.NewNumericDate(now),
				ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
			},
			SessionID: m.SessionID,
		}
		if iat {
			claims.IssuedAt = jwt.NewNumericDate(now)
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["typ"] = auth.TokenType
		// The kid the server's key set knows, taken from a token it issued.
		parsed, _, err := jwt.NewParser().ParseUnverified(m.Token, &auth.Claims{})
		if err != nil {
			t.Fatal(err)
		}
		tok.Header["kid"] = parsed.Header["kid"]
		signed, err := tok.SignedString([]byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	if r := s.gql(t, mint(auth.MaxTTL, true), `{ me { id } }`, nil); r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("a token living exactly 24h: %s", r)
	}
	for name, tok := range map[string]string{
		"living 24h and a second": mint(auth.MaxTTL+time.Second, true),
		"living 30 days":          mint(30*24*time.Hour, true),
		"without iat":             mint(time.Hour, false),
	} {
		if r := s.gql(t, tok, `{ me { id } }`, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("a token %s: %s, want 401", name, r)
		}
	}
}

func TestTokenCommandRefusesLongLifetimes(t *testing.T) {
	t.Parallel()
	env := testEnv(t, dbtest.NewDatabase(t))
	addMembers(t, env, "ana@example.org")
	for _, c := range []struct {
		env  string
		args []string
	}{
		{"dev", []string{"--email", "ana@example.org", "--ttl", "25h"}},
		{"dev", []string{"--emails", "-", "--ttl", "25h"}},
		{"prod", []string{"--email", "ana@example.org", "--ttl", "2h"}},
		{"prod", []string{"--emails", "-", "--ttl", "2h"}},
	} {
		e := maps.Clone(env)
		e["APP_ENV"] = c.env
		out, err := runCLIWithInput(t, e, "ana@example.org\n", append([]string{"token"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), "--ttl") || out != "" {
			t.Errorf("token %v in %s: %q, %v; want a refusal naming --ttl", c.args, c.env, out, err)
		}
	}
	for _, c := range []struct{ env, ttl string }{{"dev", "24h"}, {"prod", "1h"}} {
		e := maps.Clone(env)
		e["APP_ENV"] = c.env
		if out, err := runCLI(t, e, "token", "--email", "ana@example.org", "--ttl", c.ttl); err != nil || strings.Count(out, ".") != 2 {
			t.Errorf("token --ttl %s in %s: %q, %v; want a token", c.ttl, c.env, out, err)
		}
	}
}

// TestWebsocketsOutliveTheWriteTimeout checks that HTTP_WRITE_TIMEOUT and
// HTTP_READ_TIMEOUT, which bound an HTTP request and its answer, do not
// cut an open websocket: the upgrade clears the deadlines the HTTP server
// set. A stalled request opened after the websocket marks when the
// timeouts have run out.
func TestWebsocketsOutliveTheWriteTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) {
		env["HTTP_WRITE_TIMEOUT"] = "300ms"
		env["HTTP_READ_TIMEOUT"] = "300ms"
	})
	l := s.liveLine(t, 1)
	ws := s.dialWS(t, nil)
	ws.init(l.captain.Token)
	ws.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID, "after": s.lineCursor(t, l.captain.Token, l.line.ID)})
	waitForStalledCutOff(t, s)
	s.signUpOverHTTP(t, s.addMember(t, db.RoleMember).Token, l.shift.ID)
	if e := ws.nextEvent("1", "picketLineEvents"); e.Kind != "SIGNUP_CHANGED" {
		t.Fatalf("event %+v, want SIGNUP_CHANGED", e)
	}
}
