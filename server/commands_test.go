package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	const origin = "https://app.picketline.example"
	s := startServer(t, func(env map[string]string) { env["ALLOWED_ORIGINS"] = origin + ", https://other.example" })
	for _, path := range []string{"/livez", "/readyz"} {
		resp, err := s.http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d, want 200", path, resp.StatusCode)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("GET %s: no X-Request-Id", path)
		}
	}
	// GraphiQL is served in dev.
	resp, err := s.http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "/graphql") {
		t.Fatalf("GET / in dev: %d", resp.StatusCode)
	}

	// CORS: a browser app on an allowed origin may call; others get no
	// permission.
	preflight := func(from string) *http.Response {
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
	resp = preflight(origin)
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	if resp = preflight("https://evil.example"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin allowed: %v", resp.Header)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	if r := s.send(t, req); r.Header.Get("Access-Control-Allow-Origin") != origin || r.Status != 200 {
		t.Fatalf("POST from an allowed origin: %s %v", r, r.Header)
	}
}

func TestProfilerOnlyWhereAsked(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["DEBUG_ADDR"] = "127.0.0.1:0" })
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
	// Never on the API's own address.
	if r, err := s.http.Get(s.URL + "/debug/pprof/"); err != nil || r.StatusCode == http.StatusOK {
		t.Fatalf("the API serves the profiler: %v %v", r, err)
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	env := testEnv(t, dbURL)

	out, err := runCLI(t, env, "migrate")
	if err != nil || !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate on a migrated database: %q, %v", out, err)
	}
	out, err = runCLI(t, env, "migrate")
	if err != nil {
		t.Fatalf("migrate a second time: %q, %v", out, err)
	}

	out, err = runCLI(t, env, "member", "add", "--email", "Ana@Example.org", "--name", "Ana Organizer", "--phone", "+1 780 555 0101", "--role", "coordinator")
	id := strings.TrimSpace(out)
	if err != nil || !uuidPattern.MatchString(id) || strings.Count(out, "\n") != 1 {
		t.Fatalf("member add printed %q (%v), want one UUID line", out, err)
	}
	if _, err := runCLI(t, env, "member", "add", "--email", "ana@example.org", "--name", "Ana Again"); err == nil {
		t.Fatalf("member add of a taken email succeeded")
	}
	if _, err := runCLI(t, env, "member", "add", "--email", "x@example.org", "--name", "X", "--role", "boss"); err == nil {
		t.Fatalf("member add with an unknown role succeeded")
	}
	if _, err := runCLI(t, env, "member", "add", "--name", "No Email"); err == nil {
		t.Fatalf("member add without --email succeeded")
	}
	if _, err := runCLI(t, env, "member", "remove"); err == nil {
		t.Fatalf("member remove succeeded")
	}
	if _, err := runCLI(t, env, "frobnicate"); err == nil {
		t.Fatalf("an unknown command succeeded")
	}
	if out, err := runCLI(t, env, "help"); err != nil || !strings.Contains(out, "usage: picketline") {
		t.Fatalf("help: %q, %v", out, err)
	}

	// token prints an access token that the server takes.
	out, err = runCLI(t, env, "token", "--email", "ana@example.org")
	token := strings.TrimSpace(out)
	if err != nil || strings.Count(token, ".") != 2 {
		t.Fatalf("token printed %q (%v), want a JWT", out, err)
	}
	if _, err := runCLI(t, env, "token", "--email", "nobody@example.org"); err == nil {
		t.Fatalf("token for an unknown email succeeded")
	}
	if _, err := runCLI(t, env, "token", "--email", "ana@example.org", "--ttl", "0s"); err == nil {
		t.Fatalf("token with --ttl 0s succeeded")
	}
	short, err := runCLI(t, env, "token", "--email", "ana@example.org", "--ttl", "1m")
	if err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, dbURL)
	var me struct{ Me memberJSON }
	s.do(t, token, `{ me { id name email phone role } }`, nil, &me)
	if me.Me.ID != id || me.Me.Name != "Ana Organizer" || me.Me.Email == nil || *me.Me.Email != "ana@example.org" || me.Me.Role != "COORDINATOR" {
		t.Fatalf("me with the printed token = %+v", me.Me)
	}
	s.do(t, strings.TrimSpace(short), `{ me { id } }`, nil, &me)
	// A token printed under another secret is refused.
	other := testEnv(t, dbURL)
	other["JWT_SECRET"] = strings.Repeat("z", 40)
	out, err = runCLI(t, other, "token", "--email", "ana@example.org")
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, s.gql(t, strings.TrimSpace(out), `{ me { id } }`, nil), "token signed with another secret")
}

func TestConfigurationErrors(t *testing.T) {
	t.Parallel()
	const longSecret = "0123456789012345678901234567890123456789"
	cases := []struct {
		name    string
		env     map[string]string
		mention string
	}{
		{"prod with a short secret", map[string]string{"APP_ENV": "prod", "JWT_SECRET": "short", "DATABASE_URL": "postgres://localhost/x", "LOGIN_CODE_SENDER": "log"}, "JWT_SECRET"},
		{"prod without a secret", map[string]string{"APP_ENV": "prod", "DATABASE_URL": "postgres://localhost/x", "LOGIN_CODE_SENDER": "log"}, "JWT_SECRET"},
		{"prod without a database", map[string]string{"APP_ENV": "prod", "JWT_SECRET": longSecret, "LOGIN_CODE_SENDER": "log"}, "DATABASE_URL"},
		{"prod without a login code sender", map[string]string{"APP_ENV": "prod", "JWT_SECRET": longSecret, "DATABASE_URL": "postgres://localhost/x"}, "LOGIN_CODE_SENDER"},
		{"dev with a short secret", map[string]string{"JWT_SECRET": "short"}, "JWT_SECRET"},
		{"unknown environment", map[string]string{"APP_ENV": "staging"}, "APP_ENV"},
		{"bad port", map[string]string{"PORT": "eighty"}, "PORT"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
	}
	for _, c := range cases {
		// Were the configuration taken, nothing should land outside the test.
		c.env["HOST"], c.env["DATA_DIR"] = "127.0.0.1", t.TempDir()
		for _, cmd := range [][]string{{"serve"}, {"migrate"}} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := run(ctx, cmd, getenvOf(c.env), nil, io.Discard, io.Discard)
			cancel()
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("%s, %s: run returned %v, want an error mentioning %s", c.name, cmd[0], err, c.mention)
			}
		}
	}
}

func TestProdServer(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) {
		env["APP_ENV"] = "prod"
		env["LOGIN_CODE_SENDER"] = "log"
	})
	// The log is JSON in prod, and never holds the secret.
	for _, l := range s.log.Lines() {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("prod log line is not JSON: %s", l)
		}
		if strings.Contains(l, testSecret) {
			t.Fatalf("the log holds the token secret: %s", l)
		}
	}
	m := s.addMember(t, db.RoleMember)
	r := s.gql(t, m.Token, `{ __schema { queryType { name } } }`, nil)
	if r.Code() == "" || !r.NoData() {
		t.Fatalf("introspection in prod: %s, want it refused", r)
	}
	resp, err := s.http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("GET / in prod: 200, want no GraphiQL")
	}
	s.do(t, m.Token, `{ me { id } }`, nil, nil)
	// Validation errors suggest no field names in prod.
	r = s.gql(t, m.Token, `{ me { nmae } }`, nil)
	if r.Code() == "" || strings.Contains(string(r.Body), "Did you mean") {
		t.Fatalf("a misspelt field in prod: %s, want an error without suggestions", r)
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
	if _, err := runCLI(t, env, "demo"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("demo a second time: %v, want an error about an empty database", err)
	}
	out, err = runCLI(t, env, "token", "--email", "amara.okafor1@picketline.example")
	if err != nil {
		t.Fatalf("token for a demo member: %v", err)
	}
	token := strings.TrimSpace(out)
	s := startServerWith(t, dbURL)
	var jas struct{ JobActions []jobActionJSON }
	s.do(t, token, `{ jobActions { id name status picketLines { id } } }`, nil, &jas)
	if len(jas.JobActions) < 2 {
		t.Fatalf("jobActions after demo = %+v, want at least 2", jas.JobActions)
	}
	for _, ja := range jas.JobActions {
		if len(ja.PicketLines) == 0 {
			t.Fatalf("demo job action %q has no lines", ja.Name)
		}
	}
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
			t.Fatalf("openShifts offers %+v", e.Node)
		}
	}
	var my struct{ MyShifts []signupJSON }
	s.do(t, token, `{ myShifts { id status } }`, nil, &my)
	if len(my.MyShifts) == 0 {
		t.Fatalf("the demo member holds no shifts")
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	staff := s.addMember(t, db.RoleCoordinator)
	m := s.addMember(t, db.RoleMember)
	line := s.line(t, staff, s.jobAction(t, staff).ID)
	sh := s.shift(t, staff, line.ID, 48*time.Hour, 5)

	// Hold the shift's row lock so that a sign-up is in flight while the
	// server is told to stop.
	s.direct(t)
	tx, err := s.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(context.Background(), `SELECT 1 FROM shifts WHERE id = $1 FOR UPDATE`, sh.ID); err != nil {
		t.Fatal(err)
	}
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
	// Wait until the sign-up waits for the lock.
	deadline := time.Now().Add(waitTimeout)
	for {
		var waiting bool
		err := s.pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'picketline' AND wait_event_type = 'Lock')`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sign-up never waited for the shift lock")
		}
		time.Sleep(5 * time.Millisecond)
	}

	mark := s.log.mark()
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	s.log.waitAfter(t, mark, waitTimeout, func(l string) bool { return strings.Contains(l, `msg="shutting down"`) })
	// New connections are refused while draining...
	deadline = time.Now().Add(waitTimeout)
	for {
		resp, err := http.Get(s.URL + "/livez")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the server still takes new connections while draining")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("run returned (%v) with a request in flight", err)
	default:
	}
	// ... and the request in flight completes once the lock is free.
	if err := tx.Rollback(context.Background()); err != nil {
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
	info, err := os.Stat(filepath.Join(env["DATA_DIR"], "jwt-secret"))
	if err != nil {
		t.Fatalf("no secret in the data directory: %v", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("the secret file has mode %v, want it private", perm)
	}
	s := startServerWith(t, dbURL, func(e map[string]string) {
		delete(e, "JWT_SECRET")
		e["DATA_DIR"] = env["DATA_DIR"]
	})
	var me struct{ Me memberJSON }
	s.do(t, strings.TrimSpace(out), `{ me { id name } }`, nil, &me)
	if me.Me.Name != "Dev" {
		t.Fatalf("me = %+v", me.Me)
	}
	// Login codes work too: the server hashes and checks them with the
	// same secret.
	if p := s.login(t, "dev@example.org"); p.Member.Name != "Dev" {
		t.Fatalf("login as %+v", p.Member)
	}
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
