package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/mail/mailtest"
)

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	const origin = "https://app.picketline.example"
	s := startServer(t, func(env map[string]string) { env["ALLOWED_ORIGINS"] = origin + ", https://other.example" })

	t.Run("livez and readyz answer 200 with a request id", func(t *testing.T) {
		for _, path := range []string{"/livez", "/readyz"} {
			resp, err := s.http.Get(s.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d, want 200", path, resp.StatusCode)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("GET %s: no X-Request-Id", path)
			}
		}
	})

	t.Run("GraphiQL is served in dev", func(t *testing.T) {
		resp, err := s.http.Get(s.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "/graphql") {
			t.Fatalf("GET / in dev: %d", resp.StatusCode)
		}
	})

	preflight := func(t *testing.T, from string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, s.URL+"/graphql", nil)
		req.Header.Set("Origin", from)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := s.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	t.Run("a browser app on an allowed origin may call", func(t *testing.T) {
		resp := preflight(t, origin)
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Fatalf("preflight from an allowed origin: %d %v", resp.StatusCode, resp.Header)
		}
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		if r := s.send(t, req); r.Header.Get("Access-Control-Allow-Origin") != origin || r.Status != 200 {
			t.Fatalf("POST from an allowed origin: %s %v", r, r.Header)
		}
	})
	t.Run("other origins get no permission", func(t *testing.T) {
		if resp := preflight(t, "https://evil.example"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight from another origin allowed: %v", resp.Header)
		}
	})
}

func TestProfilerOnlyWhereAsked(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["DEBUG_ADDR"] = "127.0.0.1:0" })

	t.Run("the profiler answers on DEBUG_ADDR", func(t *testing.T) {
		line, ok := s.log.waitFor(0, waitTimeout, nil, func(l string) bool { return strings.Contains(l, "profiler listening") })
		m := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
		if !ok || m == nil {
			t.Fatalf("no profiler address logged: %q", line)
		}
		resp, err := s.http.Get("http://" + m[1] + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
			t.Fatalf("profiler: %d %.100s", resp.StatusCode, body)
		}
	})
	t.Run("never on the API's own address", func(t *testing.T) {
		r, err := s.http.Get(s.URL + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			t.Fatalf("the API serves the profiler: HTTP %d", r.StatusCode)
		}
	})
}

func TestCommands(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	env := testEnv(t, dbURL)

	t.Run("migrate on a migrated database changes nothing", func(t *testing.T) {
		out, err := runCLI(t, env, "migrate")
		if err != nil || !strings.Contains(out, "migrations applied") {
			t.Fatalf("migrate on a migrated database: %q, %v", out, err)
		}
		if out, err := runCLI(t, env, "migrate"); err != nil {
			t.Fatalf("migrate a second time: %q, %v", out, err)
		}
	})

	var id string
	if !t.Run("member add prints the member's id", func(t *testing.T) {
		out, err := runCLI(t, env, "member", "add", "--email", "Ana@Example.org", "--name", "Ana Organizer", "--phone", "+1 780 555 0101", "--role", "coordinator")
		id = strings.TrimSpace(out)
		if err != nil || !uuidPattern.MatchString(id) || strings.Count(out, "\n") != 1 {
			t.Fatalf("member add printed %q (%v), want one UUID line", out, err)
		}
	}) {
		// The commands below act on that member.
		t.FailNow()
	}

	t.Run("member add refuses what it cannot add", func(t *testing.T) {
		for what, args := range map[string][]string{
			"a taken email":   {"--email", "ana@example.org", "--name", "Ana Again"},
			"an unknown role": {"--email", "x@example.org", "--name", "X", "--role", "boss"},
			"no email":        {"--name", "No Email"},
		} {
			if _, err := runCLI(t, env, append([]string{"member", "add"}, args...)...); err == nil {
				t.Errorf("member add with %s succeeded", what)
			}
		}
	})

	t.Run("unknown commands fail and help prints the usage", func(t *testing.T) {
		if _, err := runCLI(t, env, "member", "remove"); err == nil {
			t.Errorf("member remove succeeded")
		}
		if _, err := runCLI(t, env, "frobnicate"); err == nil {
			t.Errorf("an unknown command succeeded")
		}
		if out, err := runCLI(t, env, "help"); err != nil || !strings.Contains(out, "usage: picketline") {
			t.Errorf("help: %q, %v", out, err)
		}
	})

	t.Run("token refuses an unknown email and a lifetime of zero", func(t *testing.T) {
		if _, err := runCLI(t, env, "token", "--email", "nobody@example.org"); err == nil {
			t.Errorf("token for an unknown email succeeded")
		}
		if _, err := runCLI(t, env, "token", "--email", "ana@example.org", "--ttl", "0s"); err == nil {
			t.Errorf("token with --ttl 0s succeeded")
		}
	})

	s := startServerWith(t, dbURL)
	t.Run("token prints an access token that the server takes", func(t *testing.T) {
		out, err := runCLI(t, env, "token", "--email", "ana@example.org")
		token := strings.TrimSpace(out)
		if err != nil || strings.Count(token, ".") != 2 {
			t.Fatalf("token printed %q (%v), want a JWT", out, err)
		}
		var me struct{ Me memberJSON }
		s.do(t, token, `{ me { id name email phone role } }`, nil, &me)
		if me.Me.ID != id || me.Me.Name != "Ana Organizer" || me.Me.Email == nil || *me.Me.Email != "ana@example.org" || me.Me.Role != "COORDINATOR" {
			t.Fatalf("me with the printed token = %+v", me.Me)
		}
		short, err := runCLI(t, env, "token", "--email", "ana@example.org", "--ttl", "1m")
		if err != nil {
			t.Fatal(err)
		}
		s.do(t, strings.TrimSpace(short), `{ me { id } }`, nil, &me)
	})
	t.Run("a token printed under another secret is refused", func(t *testing.T) {
		other := testEnv(t, dbURL)
		other["JWT_SECRET"] = strings.Repeat("z", 40)
		out, err := runCLI(t, other, "token", "--email", "ana@example.org")
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, s.gql(t, strings.TrimSpace(out), `{ me { id } }`, nil), "token signed with another secret")
	})
}

func TestConfigurationErrors(t *testing.T) {
	t.Parallel()
	const longSecret = "0123456789012345678901234567890123456789"
	cases := []struct {
		name    string
		env     map[string]string
		mention string
	}{
		{"prod with a short secret", map[string]string{"APP_ENV": "prod", "JWT_SECRET": "short", "DATABASE_URL": "postgres://localhost/x"}, "JWT_SECRET"},
		{"prod without a secret", map[string]string{"APP_ENV": "prod", "DATABASE_URL": "postgres://localhost/x"}, "JWT_SECRET"},
		{"prod without a database", map[string]string{"APP_ENV": "prod", "JWT_SECRET": longSecret}, "DATABASE_URL"},
		{"unknown login code sender", map[string]string{"LOGIN_CODE_SENDER": "carrier-pigeon"}, "LOGIN_CODE_SENDER"},
		{"an SMTP URL that is none", map[string]string{"SMTP_URL": "https://mail.union.example"}, "SMTP_URL"},
		{"a sender that is no address", map[string]string{"SMTP_FROM": "Picketline"}, "SMTP_FROM"},
		{"dev with a short secret", map[string]string{"JWT_SECRET": "short"}, "JWT_SECRET"},
		{"unknown environment", map[string]string{"APP_ENV": "staging"}, "APP_ENV"},
		{"bad port", map[string]string{"PORT": "eighty"}, "PORT"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"no statement timeout", map[string]string{"DATABASE_STATEMENT_TIMEOUT": "0"}, "DATABASE_STATEMENT_TIMEOUT"},
		{"a statement timeout without its unit", map[string]string{"DATABASE_STATEMENT_TIMEOUT": "5"}, "DATABASE_STATEMENT_TIMEOUT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Were the configuration taken, nothing should land outside the test.
			c.env["HOST"], c.env["DATA_DIR"] = "127.0.0.1", t.TempDir()
			for _, cmd := range []string{"serve", "migrate"} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := run(ctx, []string{cmd}, getenvOf(c.env), nil, io.Discard, io.Discard)
				cancel()
				if err == nil || !strings.Contains(err.Error(), c.mention) {
					t.Errorf("%s: run returned %v, want an error mentioning %s", cmd, err, c.mention)
				}
			}
		})
	}
}

func TestProdServer(t *testing.T) {
	t.Parallel()
	s := startServer(t, withSMTP(mailtest.Start(t, mailtest.Options{})), func(env map[string]string) {
		env["APP_ENV"] = "prod"
	})
	m := s.addMember(t, db.RoleMember)

	t.Run("the log is JSON and never holds the secret", func(t *testing.T) {
		for _, l := range s.log.Lines() {
			var v map[string]any
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("prod log line is not JSON: %s", l)
			}
			if strings.Contains(l, testSecret) {
				t.Fatalf("the log holds the token secret: %s", l)
			}
		}
	})
	// The same requests to a dev server show what prod holds back.
	dev := startServer(t)
	devMember := dev.addMember(t, db.RoleMember)
	// errorLines are the ERROR lines the prod server logged after mark.
	errorLines := func(mark int) []string {
		return slices.DeleteFunc(s.log.Lines()[mark:], func(l string) bool { return !strings.Contains(l, `"level":"ERROR"`) })
	}

	for _, c := range []struct{ name, query string }{
		{"__schema", `{ __schema { queryType { name } } }`},
		{"__type", `{ __type(name: "Member") { fields { name } } }`},
	} {
		t.Run("introspection through "+c.name+" is a validation error, logged as none", func(t *testing.T) {
			mark := s.log.mark()
			r := s.gql(t, m.Token, c.query, nil)
			if r.Code() != "GRAPHQL_VALIDATION_FAILED" || !r.NoData() {
				t.Fatalf("introspection in prod: %s, want GRAPHQL_VALIDATION_FAILED and no data", r)
			}
			if lines := errorLines(mark); len(lines) > 0 {
				t.Fatalf("refusing introspection logged errors:\n%s", strings.Join(lines, "\n"))
			}
			dev.do(t, devMember.Token, c.query, nil, nil)
		})
	}
	t.Run("__typename is still answered", func(t *testing.T) {
		s.do(t, m.Token, `{ __typename me { __typename id } }`, nil, nil)
	})
	t.Run("GraphiQL is not served", func(t *testing.T) {
		for _, c := range []struct {
			srv  *testServer
			want int
		}{{s, http.StatusNotFound}, {dev, http.StatusOK}} {
			resp, err := c.srv.http.Get(c.srv.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want || (c.want == http.StatusOK) != strings.Contains(strings.ToLower(string(body)), "graphiql") {
				t.Fatalf("GET / in %s: HTTP %d %.200s, want %d", c.srv.env["APP_ENV"], resp.StatusCode, body, c.want)
			}
		}
	})
	testMetricsInProd(t, s, m)
	for _, c := range []struct{ name, query string }{
		{"a misspelt field", `{ me { nmae } }`},
		{"a misspelt argument", `{ openShifts(frist: 5) { edges { cursor } } }`},
		{"a misspelt enum value", `mutation { registerDevice(token: "a token", platform: ANDROD) { platform } }`},
		{"a misspelt input field", `mutation { updateMyContact(input: {nmae: "Ana"}) { id } }`},
		{"a misspelt type", `{ me { ...f } } fragment f on Membr { id }`},
		{"an object without a selection", `{ me }`},
	} {
		t.Run(c.name+" gets no suggestion", func(t *testing.T) {
			if r := dev.gql(t, devMember.Token, c.query, nil); !strings.Contains(string(r.Body), "Did you mean") {
				t.Fatalf("the control: dev answered %s, want a suggestion", r)
			}
			r := s.gql(t, m.Token, c.query, nil)
			if r.Code() != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(string(r.Body), "Did you mean") {
				t.Fatalf("%s in prod: %s, want GRAPHQL_VALIDATION_FAILED without suggestions", c.name, r)
			}
		})
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	env := testEnv(t, dbURL)
	out, err := runCLI(t, env, "demo")
	if err != nil || out == "" {
		t.Fatalf("demo on an empty database: %q, %v", out, err)
	}
	t.Run("demo refuses a database that is not empty", func(t *testing.T) {
		if _, err := runCLI(t, env, "demo"); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("demo a second time: %v, want an error about an empty database", err)
		}
	})
	out, err = runCLI(t, env, "token", "--email", "amara.okafor1@picketline.example")
	if err != nil {
		t.Fatalf("token for a demo member: %v", err)
	}
	token := strings.TrimSpace(out)
	s := startServerWith(t, dbURL)

	t.Run("every demo job action has lines", func(t *testing.T) {
		var jas struct{ JobActions connection[jobActionJSON] }
		s.do(t, token, `{ jobActions { edges { node { id name status picketLines { edges { node { id } } } } } } }`, nil, &jas)
		if len(jas.JobActions.Edges) < 2 {
			t.Fatalf("jobActions after demo = %+v, want at least 2", jas.JobActions)
		}
		for _, ja := range jas.JobActions.nodes() {
			if len(ja.PicketLines.Edges) == 0 {
				t.Errorf("demo job action %q has no lines", ja.Name)
			}
		}
	})
	t.Run("a demo member is offered shifts ahead with room", func(t *testing.T) {
		var open struct {
			OpenShifts struct {
				Edges []struct{ Node shiftJSON } `json:"edges"`
			} `json:"openShifts"`
		}
		s.do(t, token, `{ openShifts(first: 50) { edges { node { id startsAt spotsLeft } } } }`, nil, &open)
		if len(open.OpenShifts.Edges) == 0 {
			t.Fatalf("openShifts for a demo member is empty")
		}
		for _, e := range open.OpenShifts.Edges {
			if e.Node.SpotsLeft < 1 || !e.Node.StartsAt.After(time.Now()) {
				t.Errorf("openShifts offers %+v", e.Node)
			}
		}
	})
	t.Run("the demo member holds shifts", func(t *testing.T) {
		var my struct{ MyShifts connection[signupJSON] }
		s.do(t, token, `{ myShifts { edges { node { id status } } } }`, nil, &my)
		if len(my.MyShifts.Edges) == 0 {
			t.Fatalf("the demo member holds no shifts")
		}
	})
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	m := s.addMember(t, db.RoleMember)
	sh := k.ShiftOn(k.Line(), 48*time.Hour, 5)

	// Hold the shift's row lock so that a sign-up is in flight while the
	// server is told to stop.
	tx, err := k.Pool.Begin(k.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(k.Ctx)
	if _, err := tx.Exec(k.Ctx, `SELECT 1 FROM shifts WHERE id = $1 FOR UPDATE`, sh.ID); err != nil {
		t.Fatal(err)
	}
	idleClosed := s.idleConnection(t)
	type result struct {
		r   *gqlResponse
		err error
	}
	inFlight := make(chan result, 1)
	go func() {
		body, _ := json.Marshal(map[string]any{"query": signUpMutation, "variables": map[string]any{"s": sh.ID}})
		r, err := s.tryPost(m.Token, "application/json", body)
		inFlight <- result{r, err}
	}()
	// The sign-up waits behind the shift row the test holds locked.
	k.WaitForLockWait()

	mark := s.log.mark()
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	s.log.waitAfter(t, mark, waitTimeout, func(l string) bool { return strings.Contains(l, `msg="shutting down"`) })
	// New connections are refused while draining: the server closes its
	// idle connections only once it has closed its listener.
	select {
	case <-idleClosed:
	case <-time.After(waitTimeout):
		t.Fatalf("the server kept its idle connection open %v into draining", waitTimeout)
	}
	if conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://")); err == nil {
		conn.Close()
		t.Fatalf("the server still takes new connections while draining")
	}
	select {
	case err := <-stopped:
		t.Fatalf("run returned (%v) with a request in flight", err)
	default:
	}
	// ... and the request in flight completes once the lock is free.
	if err := tx.Rollback(k.Ctx); err != nil {
		t.Fatal(err)
	}
	res := <-inFlight
	if res.err != nil || res.r.Status != 200 || res.r.Code() != "" || !strings.Contains(string(res.r.Body), "SIGNED_UP") {
		t.Fatalf("the request in flight during shutdown: %v %v", res.r, res.err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run did not return within 10s of its last request")
	}
	s.log.waitAfter(t, mark, waitTimeout, func(l string) bool { return strings.Contains(l, "msg=stopped") })
}

// idleConnection opens a connection of the test's own, makes one request
// on it and leaves it idle, as a keep-alive client does. The channel is
// closed when the server closes the connection, which a draining server
// does only once it has closed its listener.
func (s *testServer) idleConnection(t testing.TB) <-chan struct{} {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /livez HTTP/1.1\r\nHost: picketline\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /livez on a connection of its own: HTTP %d, closing %v; want 200, kept open", resp.StatusCode, resp.Close)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		// Nothing more comes on an idle connection: the read ends when
		// the server closes it.
		r.ReadByte()
	}()
	return closed
}

// Without JWT_SECRET in dev, the secret is made once and kept in the data
// directory, so tokens printed by one process work in another.
func TestDevSecretIsKeptInTheDataDirectory(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	env := testEnv(t, dbURL)
	delete(env, "JWT_SECRET")
	if _, err := runCLI(t, env, "member", "add", "--email", "dev@example.org", "--name", "Dev"); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, env, "token", "--email", "dev@example.org")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the secret file is private", func(t *testing.T) {
		info, err := os.Stat(filepath.Join(env["DATA_DIR"], "jwt-secret"))
		if err != nil {
			t.Fatalf("no secret in the data directory: %v", err)
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Fatalf("the secret file has mode %v, want it private", perm)
		}
	})
	s := startServerWith(t, dbURL, func(e map[string]string) {
		delete(e, "JWT_SECRET")
		e["DATA_DIR"] = env["DATA_DIR"]
	})
	t.Run("a token printed by one process works in another", func(t *testing.T) {
		var me struct{ Me memberJSON }
		s.do(t, strings.TrimSpace(out), `{ me { id name } }`, nil, &me)
		if me.Me.Name != "Dev" {
			t.Fatalf("me = %+v", me.Me)
		}
	})
	t.Run("login codes are hashed and checked with the same secret", func(t *testing.T) {
		if p := s.login(t, "dev@example.org"); p.Member.Name != "Dev" {
			t.Fatalf("login as %+v", p.Member)
		}
	})
}

// The server logs its configuration at start; the database password must
// never be in it, whichever form of connection string carries it.
func TestDatabasePasswordStaysOutOfTheLog(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// The test server's own password, or, where it needs none (trust),
	// a canary that it ignores.
	password, _ := u.User.Password()
	if password == "" {
		password = "canary-db-password-7f3a9c"
	}
	user := u.User.Username()
	withoutUser := *u
	withoutUser.User = url.User(user)
	q := withoutUser.Query()
	q.Set("password", password)
	withoutUser.RawQuery = q.Encode()
	inUserinfo := *u
	inUserinfo.User = url.UserPassword(user, password)
	forms := map[string]string{
		"URL with the password in userinfo":    inUserinfo.String(),
		"URL with the password as a parameter": withoutUser.String(),
		"keyword/value string": fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable",
			u.Hostname(), u.Port(), user, password, strings.TrimPrefix(u.Path, "/")),
	}
	for name, conn := range forms {
		t.Run(name, func(t *testing.T) {
			s := startServerWith(t, dbURL, func(env map[string]string) { env["DATABASE_URL"] = conn })
			m := s.addMember(t, db.RoleMember)
			s.do(t, m.Token, `{ me { id } }`, nil, nil)
			for _, l := range s.log.Lines() {
				if strings.Contains(l, password) {
					t.Fatalf("the log holds the database password: %s", l)
				}
			}
		})
	}
}
