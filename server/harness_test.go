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
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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

	poolOnce sync.Once
	pool     *pgxpool.Pool
	store    *db.Store
	tokens   *auth.Tokens
}

var memberSeq atomic.Int64

func testEnv(t testing.TB, dbURL string) map[string]string {
	return map[string]string{
		"DATABASE_URL": dbURL,
		"HOST":         "127.0.0.1",
		"PORT":         "0",
		"APP_ENV":      "dev",
		"JWT_SECRET":   testSecret,
		"DATA_DIR":     t.TempDir(),
		"LOG_LEVEL":    "info",
	}
}

func getenvOf(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

var listeningPattern = regexp.MustCompile(`(?:msg=listening addr=|"msg":"listening","addr":")(127\.0\.0\.1:\d+)`)

// startServer starts `picketline serve` on a fresh database and waits until
// it is ready. change, if given, edits the environment first. The server is
// stopped at the end of the test, and run must then return nil.
func startServer(t *testing.T, change ...func(env map[string]string)) *testServer {
	t.Helper()
	return startServerWith(t, dbtest.NewDatabase(t), change...)
}

// startServerWith is startServer on an existing database.
func startServerWith(t *testing.T, dbURL string, change ...func(env map[string]string)) *testServer {
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
	// Stop the server's idle client connections before the server itself,
	// and close the test's own pool before the database is dropped.
	t.Cleanup(func() {
		s.http.CloseIdleConnections()
		if s.pool != nil {
			s.pool.Close()
		}
	})

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 300
	s.http = &http.Client{Transport: transport, Timeout: 30 * time.Second}

	line, ok := s.log.waitFor(0, waitTimeout, exited, listeningPattern.MatchString)
	if !ok {
		select {
		case <-exited:
			t.Fatalf("run returned before listening: %v\nlog:\n%s", runErr, s.log.String())
		default:
			t.Fatalf("the server did not log its address within %v; log:\n%s", waitTimeout, s.log.String())
		}
	}
	addr := listeningPattern.FindStringSubmatch(line)[1]
	s.URL = "http://" + addr
	waitReady(t, s.http, s.URL)
	return s
}

// waitReady polls /readyz until it answers 200.
func waitReady(t testing.TB, c *http.Client, base string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, err := c.Get(base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within %v (last: %v)", waitTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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

// direct gives the test its own store and token issuer on the server's
// database, for setting up data quickly.
func (s *testServer) direct(t testing.TB) (*db.Store, *auth.Tokens) {
	t.Helper()
	s.poolOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(s.DBURL)
		if err != nil {
			t.Fatalf("parse database URL: %v", err)
		}
		cfg.MaxConns = 8
		s.pool, err = pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatalf("pool: %v", err)
		}
		s.store = db.NewStore(s.pool, nil, pepper([]byte(testSecret)))
		s.tokens, err = auth.NewTokens([]byte(testSecret), auth.DefaultTTL, nil)
		if err != nil {
			t.Fatalf("tokens: %v", err)
		}
	})
	if s.store == nil {
		t.Fatalf("no direct store")
	}
	return s.store, s.tokens
}

// sql runs a statement on the server's database.
func (s *testServer) sql(t testing.TB, query string, args ...any) {
	t.Helper()
	s.direct(t)
	if _, err := s.pool.Exec(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// member is a member created for a test, with a token of a session of its own.
type member struct {
	ID, Name, Email, Phone string
	Role                   db.Role
	Token                  string
}

// Actor is the member as the store sees them, for direct setup.
func (m *member) Actor() db.Actor { return db.Actor{MemberID: m.ID, Role: m.Role} }

// addMember creates a member directly in the database and gives it a token.
func (s *testServer) addMember(t testing.TB, role db.Role) *member {
	t.Helper()
	m, err := s.newMember(t, role)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newMember is addMember for goroutines other than the test's.
func (s *testServer) newMember(t testing.TB, role db.Role) (*member, error) {
	store, _ := s.direct(t)
	n := memberSeq.Add(1)
	in := db.NewMember{
		Name:  fmt.Sprintf("Member %d", n),
		Email: fmt.Sprintf("member%d@example.org", n),
		Phone: fmt.Sprintf("+1 780 555 %04d", n%10000),
		Role:  role,
	}
	m, err := store.AddMember(context.Background(), db.System, in)
	if err != nil {
		return nil, fmt.Errorf("add member: %w", err)
	}
	mem := &member{ID: m.ID, Name: m.Name, Email: m.Email, Phone: in.Phone, Role: m.Role}
	if mem.Token, err = s.newToken(t, m.ID); err != nil {
		return nil, err
	}
	return mem, nil
}

// mintToken starts a new session for a member and signs its access token,
// as `picketline token` does.
func (s *testServer) mintToken(t testing.TB, memberID string) string {
	t.Helper()
	tok, err := s.newToken(t, memberID)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *testServer) newToken(t testing.TB, memberID string) (string, error) {
	store, tokens := s.direct(t)
	sess, err := store.StartSession(context.Background(), db.System, memberID)
	if err != nil {
		return "", fmt.Errorf("start session: %w", err)
	}
	tok, _, err := tokens.Issue(memberID, sess.ID)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return tok, nil
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

// Fixtures made directly in the database, as a coordinator.

func (s *testServer) jobAction(t testing.TB, staff *member) *db.JobAction {
	t.Helper()
	store, _ := s.direct(t)
	ja, err := store.CreateJobAction(context.Background(), staff.Actor(), db.NewJobAction{
		Name: "Health Care Strike", Kind: db.KindStrike, Employer: "Chinook Regional Health", StartsAt: time.Now().Add(-time.Hour),
	})
	if err != nil {
		t.Fatalf("create job action: %v", err)
	}
	return ja
}

func (s *testServer) line(t testing.TB, staff *member, jobActionID string) *db.PicketLine {
	t.Helper()
	store, _ := s.direct(t)
	n := memberSeq.Add(1)
	l, err := store.CreatePicketLine(context.Background(), staff.Actor(), db.NewPicketLine{
		JobActionID: jobActionID, Name: fmt.Sprintf("Gate %d", n), Address: fmt.Sprintf("%d Kingsway NW, Edmonton", n), Latitude: 53.55, Longitude: -113.49,
	})
	if err != nil {
		t.Fatalf("create line: %v", err)
	}
	return l
}

// shift creates a shift on a line starting `in` from now and lasting 4 hours.
func (s *testServer) shift(t testing.TB, staff *member, lineID string, in time.Duration, capacity int) *db.Shift {
	t.Helper()
	store, _ := s.direct(t)
	start := time.Now().Add(in).UTC().Truncate(time.Second)
	sh, err := store.CreateShift(context.Background(), staff.Actor(), db.NewShift{PicketLineID: lineID, StartsAt: start, EndsAt: start.Add(4 * time.Hour), Capacity: capacity})
	if err != nil {
		t.Fatalf("create shift: %v", err)
	}
	return sh
}

func (s *testServer) captain(t testing.TB, staff *member, lineID string) *member {
	t.Helper()
	store, _ := s.direct(t)
	c := s.addMember(t, db.RoleMember)
	if _, err := store.AssignCaptain(context.Background(), staff.Actor(), lineID, c.ID); err != nil {
		t.Fatalf("assign captain: %v", err)
	}
	return c
}

func (s *testServer) signUp(t testing.TB, m *member, shiftID string) *db.Signup {
	t.Helper()
	store, _ := s.direct(t)
	su, err := store.SignUpForShift(context.Background(), m.Actor(), shiftID, "")
	if err != nil {
		t.Fatalf("sign up: %v", err)
	}
	return su
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
