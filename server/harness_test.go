package main

// The end-to-end harness: a real server started in-process through run, on a
// database of its own, and a GraphQL client that talks to it over HTTP.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
	"github.com/picketline/picketline/server/auth"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testSecret is the JWT_SECRET of every test server: 40 bytes.
const testSecret = "picketline-e2e-secret-0123456789abcdefgh"

// waitTimeout bounds every wait of the harness on the server.
const waitTimeout = 20 * time.Second

// logSink is a concurrency-safe writer that keeps the lines written to it
// and lets tests wait for a line.
type logSink struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// mark returns how many lines were written so far, for waitAfter.
func (l *logSink) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// Lines returns a copy of the complete lines written so far.
func (l *logSink) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// String returns everything written so far.
func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n") + string(l.partial)
}

// find returns the first line after the first `from` lines that satisfies
// match, or else how many lines it looked past and a channel closed when
// more are written.
func (l *logSink) find(from int, match func(string) bool) (line string, ok bool, next int, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines[from:] {
		if match(line) {
			return line, true, 0, nil
		}
	}
	return "", false, len(l.lines), l.changed
}

// waitFor waits until a line after the first `from` lines satisfies match,
// or stop is closed, or timeout passes.
func (l *logSink) waitFor(from int, timeout time.Duration, stop <-chan struct{}, match func(string) bool) (string, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		line, ok, next, changed := l.find(from, match)
		if ok {
			return line, true
		}
		from = next
		select {
		case <-changed:
		case <-stop:
			return "", false
		case <-deadline.C:
			return "", false
		}
	}
}

// waitAfter waits until a line after the first `from` lines satisfies match
// and returns it, failing the test after timeout.
func (l *logSink) waitAfter(t testing.TB, from int, timeout time.Duration, match func(string) bool) string {
	t.Helper()
	line, ok := l.waitFor(from, timeout, nil, match)
	if !ok {
		t.Fatalf("no log line as wanted within %v; log so far:\n%s", timeout, l.String())
	}
	return line
}

// testServer is a running picketline serve on a database of its own.
type testServer struct {
	URL   string
	DBURL string
	env   map[string]string
	log   *logSink
	http  *http.Client
	// stop cancels run's context and returns what run returned; it may be
	// called more than once.
	stop func() error

	// bundle is the test kit on the server's database (see kit). Its store
	// hashes login codes with the kit's pepper, not the server's: codes
	// are asked for over HTTP.
	bundle *dbtest.Bundle
	// tokens signs as a server whose JWT_SECRET is testSecret does.
	tokens *auth.Tokens
}

func testEnv(t testing.TB, dbURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL": dbURL,
		"HOST":         "127.0.0.1",
		"PORT":         "0",
		"APP_ENV":      "dev",
		"JWT_SECRET":   testSecret,
		"DATA_DIR":     t.TempDir(),
		"LOG_LEVEL":    "info",
		// A port of its own for each server's metrics: prod's default
		// would have servers started side by side contend for one.
		"METRICS_ADDR": "127.0.0.1:0",
	}
}

func getenvOf(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

var (
	listeningPattern = regexp.MustCompile(`(?:msg=listening addr=|"msg":"listening","addr":")(127\.0\.0\.1:\d+)`)
	readyPattern     = regexp.MustCompile(`(?:msg=ready(?:\s|$)|"msg":"ready")`)
)

// startServer starts `picketline serve` on a fresh database and waits until
// it is ready. change, if given, edits the environment first. The server is
// stopped at the end of the test, and run must then return nil.
func startServer(t testing.TB, change ...func(env map[string]string)) *testServer {
	t.Helper()
	return startServerWith(t, dbtest.NewDatabase(t), change...)
}

// startServerWith is startServer on an existing database.
func startServerWith(t testing.TB, dbURL string, change ...func(env map[string]string)) *testServer {
	t.Helper()
	s := &testServer{DBURL: dbURL, log: newLogSink()}
	s.env = testEnv(t, s.DBURL)
	for _, c := range change {
		c(s.env)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	var runErr error
	go func() {
		defer close(exited)
		runErr = run(ctx, []string{"serve"}, getenvOf(s.env), nil, io.Discard, s.log)
	}()
	s.stop = func() error {
		cancel()
		select {
		case <-exited:
			return runErr
		case <-time.After(waitTimeout):
			return fmt.Errorf("run did not return within %v of its context being cancelled", waitTimeout)
		}
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	// Stop the server's idle client connections before the server itself.
	t.Cleanup(func() { s.http.CloseIdleConnections() })

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 300
	s.http = &http.Client{Transport: transport, Timeout: 30 * time.Second}

	// The server logs its address once it listens and "ready" once it
	// serves requests.
	waitStarted := func(pattern *regexp.Regexp, what string) string {
		t.Helper()
		line, ok := s.log.waitFor(0, waitTimeout, exited, pattern.MatchString)
		if !ok {
			select {
			case <-exited:
				t.Fatalf("run returned before %s: %v\nlog:\n%s", what, runErr, s.log.String())
			default:
				t.Fatalf("the server did not log that it was %s within %v; log:\n%s", what, waitTimeout, s.log.String())
			}
		}
		return line
	}
	s.URL = "http://" + listeningPattern.FindStringSubmatch(waitStarted(listeningPattern, "listening"))[1]
	waitStarted(readyPattern, "ready")
	resp, err := s.http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz once ready: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz once ready: HTTP %d, want 200", resp.StatusCode)
	}

	// The kit's pool is closed before the server stops, as cleanups run
	// last first, and before the database is dropped.
	s.bundle = dbtest.SetupWith(t, dbtest.Options{Pool: dbtest.PoolFor(t, dbURL), Now: time.Now().UTC().Truncate(time.Second)})
	s.tokens, err = auth.NewTokens([]byte(testSecret), auth.DefaultTTL, nil)
	if err != nil {
		t.Fatalf("tokens: %v", err)
	}
	return s
}

// kit is the test kit on the server's database, failing t, for setting up
// data directly as a coordinator (its Staff). The server runs on the wall
// clock; the kit's clock stands where the wall clock was when the server
// became ready, to the second. What the kit makes is placed from there (a
// shift 48 hours ahead starts 48 hours after that moment, a little less
// than 48 hours after the server's now), and its store stamps its own
// writes with that moment.
func (s *testServer) kit(t testing.TB) *dbtest.Bundle { return s.bundle.For(t) }

// cli runs one picketline command against the server's database and
// returns its stdout; an error carries the command's stderr.
func (s *testServer) cli(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return runCLI(t, s.env, args...)
}

func runCLI(t testing.TB, env map[string]string, args ...string) (string, error) {
	t.Helper()
	return runCLIWithInput(t, env, "", args...)
}

// runCLIWithInput is runCLI with stdin reading input.
func runCLIWithInput(t testing.TB, env map[string]string, input string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, getenvOf(env), strings.NewReader(input), &stdout, &stderr)
	if err != nil {
		return stdout.String(), fmt.Errorf("picketline %s: %w\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// sql runs a statement on the server's database.
func (s *testServer) sql(t testing.TB, query string, args ...any) {
	t.Helper()
	if _, err := s.bundle.Pool.Exec(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// member is a member added for a test, signed in on a session of its own.
type member struct {
	*db.Member
	SessionID string
	Token     string
}

// Actor is the member on their session, as the store sees them.
func (m *member) Actor() db.Actor {
	return db.Actor{MemberID: m.ID, Role: m.Role, SessionID: m.SessionID}
}

// addMember adds a member with the kit and signs them in.
func (s *testServer) addMember(t testing.TB, role db.Role) *member {
	t.Helper()
	m := s.kit(t).Member(role)
	sess := s.kit(t).Session(m.ID)
	return &member{Member: m, SessionID: sess.ID, Token: s.token(t, m.ID, sess.ID)}
}

// captain adds a member, makes them captain of line and signs them in.
func (s *testServer) captain(t testing.TB, line *db.PicketLine) *member {
	t.Helper()
	c := s.addMember(t, db.RoleMember)
	s.kit(t).MakeCaptain(c.Actor(), line)
	return c
}

// mintToken starts a new session for a member and signs its access token,
// as `picketline token` does.
func (s *testServer) mintToken(t testing.TB, memberID string) string {
	t.Helper()
	return s.token(t, memberID, s.kit(t).Session(memberID).ID)
}

// token signs an access token of a session, as the server does.
func (s *testServer) token(t testing.TB, memberID, sessionID string) string {
	t.Helper()
	tok, _, err := s.tokens.Issue(memberID, sessionID)
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return tok
}

// gqlError is one entry of a GraphQL response's errors.
type gqlError struct {
	Message    string `json:"message"`
	Path       []any  `json:"path"`
	Extensions struct {
		Code              string `json:"code"`
		Field             string `json:"field"`
		RetryAfterSeconds int    `json:"retryAfterSeconds"`
		RequestID         string `json:"requestId"`
	} `json:"extensions"`
}

// gqlResponse is an HTTP answer of /graphql.
type gqlResponse struct {
	Status int
	Header http.Header
	Body   []byte
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// Code is the code of the first error, or "" without errors.
func (r *gqlResponse) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Extensions.Code
}

// HasData reports whether the response carries data other than null.
func (r *gqlResponse) HasData() bool {
	d := bytes.TrimSpace(r.Data)
	return len(d) > 0 && !bytes.Equal(d, []byte("null"))
}

// NoData reports whether the response has no data, or only nulls at the top.
func (r *gqlResponse) NoData() bool {
	if !r.HasData() {
		return true
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.Data, &top); err != nil {
		return false
	}
	for _, v := range top {
		if string(v) != "null" {
			return false
		}
	}
	return true
}

func (r *gqlResponse) String() string {
	return fmt.Sprintf("HTTP %d %s", r.Status, r.Body)
}

// post sends a raw request to /graphql.
func (s *testServer) post(t testing.TB, token, contentType string, body []byte) *gqlResponse {
	t.Helper()
	r, err := s.tryPost(token, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryPost is post for goroutines other than the test's.
func (s *testServer) tryPost(token, contentType string, body []byte) (*gqlResponse, error) {
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.trySend(req)
}

// send performs a request and decodes a GraphQL-shaped answer when there is one.
func (s *testServer) send(t testing.TB, req *http.Request) *gqlResponse {
	t.Helper()
	r, err := s.trySend(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *testServer) trySend(req *http.Request) (*gqlResponse, error) {
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	r := &gqlResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}
	ct := resp.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "application/graphql-response+json") {
		if err := json.Unmarshal(body, r); err != nil {
			return nil, fmt.Errorf("decode answer %q: %w", body, err)
		}
	}
	return r, nil
}

// gql sends one operation with an optional bearer token.
func (s *testServer) gql(t testing.TB, token, query string, vars map[string]any) *gqlResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	return s.post(t, token, "application/json", body)
}

// do sends an operation that must succeed and decodes its data into out.
func (s *testServer) do(t testing.TB, token, query string, vars map[string]any, out any) {
	t.Helper()
	r := s.gql(t, token, query, vars)
	if r.Status != http.StatusOK || len(r.Errors) > 0 || !r.HasData() {
		t.Fatalf("operation failed: %s\nquery: %s\nvariables: %v", r, short(query), vars)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("decode data %s: %v", r.Data, err)
		}
	}
}

// fails sends an operation that must fail with code.
func (s *testServer) fails(t testing.TB, token, query string, vars map[string]any, code string) *gqlResponse {
	t.Helper()
	r := s.gql(t, token, query, vars)
	if r.Code() != code {
		t.Fatalf("got %s, want error code %s\nquery: %s\nvariables: %v", r, code, short(query), vars)
	}
	return r
}

// loginCodePattern matches the log line by which the server delivers codes.
var loginCodePattern = regexp.MustCompile(`msg="login code" email=(\S+) code=(\d{6})`)

// requestCode asks for a login code over HTTP and returns the code the
// server logged for email.
func (s *testServer) requestCode(t testing.TB, email string) string {
	t.Helper()
	mark := s.log.mark()
	var out struct{ RequestLoginCode bool }
	s.do(t, "", `mutation($e: String!) { requestLoginCode(email: $e) }`, map[string]any{"e": email}, &out)
	if !out.RequestLoginCode {
		t.Fatalf("requestLoginCode answered false")
	}
	line := s.log.waitAfter(t, mark, waitTimeout, func(l string) bool {
		m := loginCodePattern.FindStringSubmatch(l)
		return m != nil && m[1] == strings.ToLower(strings.TrimSpace(email))
	})
	return loginCodePattern.FindStringSubmatch(line)[2]
}

// authPayload is the answer of verifyLoginCode and refreshSession.
type authPayload struct {
	AccessToken  string    `json:"accessToken"`
	RefreshToken string    `json:"refreshToken"`
	ExpiresAt    time.Time `json:"expiresAt"`
	Member       struct {
		ID    string  `json:"id"`
		Name  string  `json:"name"`
		Email *string `json:"email"`
		Role  string  `json:"role"`
	} `json:"member"`
}

const authPayloadFields = `accessToken refreshToken expiresAt member { id name email role }`

// login signs in over HTTP with a login code and returns the session.
func (s *testServer) login(t testing.TB, email string) authPayload {
	t.Helper()
	code := s.requestCode(t, email)
	var out struct{ VerifyLoginCode authPayload }
	s.do(t, "", `mutation($e: String!, $c: String!) { verifyLoginCode(email: $e, code: $c) { `+authPayloadFields+` } }`,
		map[string]any{"e": email, "c": code}, &out)
	return out.VerifyLoginCode
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// short cuts long queries down for failure messages.
func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// ts formats a time for a GraphQL variable.
func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }
