package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/graph"
)

// textField is one key=value of a text log line; a quoted value may hold
// spaces and escaped quotes.
var textField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logFields parses a log line, text (dev) or JSON (prod), into its fields.
func logFields(line string) map[string]string {
	out := map[string]string{}
	if strings.HasPrefix(line, "{") {
		var v map[string]any
		if json.Unmarshal([]byte(line), &v) != nil {
			return out
		}
		for k, x := range v {
			out[k] = fmt.Sprint(x)
		}
		return out
	}
	for _, m := range textField.FindAllStringSubmatch(line, -1) {
		v := m[2]
		if u, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
			v = u
		}
		out[m[1]] = v
	}
	return out
}

// requestLine waits for the request log line, after the first `from`
// lines, whose field key is value, and fails unless it is the only one.
// It returns the line's fields but the time, the level and the duration,
// after checking the duration is a number of milliseconds.
func (s *testServer) requestLine(t *testing.T, from int, key, value string) map[string]string {
	t.Helper()
	isIt := func(l string) bool {
		f := logFields(l)
		return f["msg"] == "request" && f[key] == value
	}
	s.log.waitAfter(t, from, waitTimeout, isIt)
	var found []string
	for _, l := range s.log.Lines()[from:] {
		if isIt(l) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d request lines with %s=%s, want one:\n%s", len(found), key, value, strings.Join(found, "\n"))
	}
	f := logFields(found[0])
	if ms, err := strconv.ParseFloat(f["durationMs"], 64); err != nil || ms < 0 {
		t.Errorf("durationMs %q, want milliseconds: %s", f["durationMs"], found[0])
	}
	delete(f, "time")
	delete(f, "level")
	delete(f, "durationMs")
	return f
}

func wantLine(t *testing.T, want, got map[string]string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request log line (-want +got):\n%s", diff)
	}
}

func TestRequestLogHasOneLinePerRequest(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	httpLine := func(id string, extra map[string]string) map[string]string {
		want := map[string]string{"msg": "request", "requestId": id, "method": "POST", "path": "/graphql", "status": "200", "transport": "http"}
		maps.Copy(want, extra)
		return want
	}

	t.Run("an HTTP operation: its root field, kind and code", func(t *testing.T) {
		mark := s.log.mark()
		r := s.gql(t, m.Token, `{ me { id } }`, nil)
		id := r.Header.Get("X-Request-Id")
		wantLine(t, httpLine(id, map[string]string{"operation": "me", "kind": "query", "code": "OK"}), s.requestLine(t, mark, "requestId", id))
	})
	t.Run("every root field, through aliases and fragments, and no operation name", func(t *testing.T) {
		mark := s.log.mark()
		r := s.gql(t, m.Token, `query SecretlyNamed { aliasZebra: me { id } ...More } fragment More on Query { myDevices { token } me { name } }`, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("query failed: %s", r)
		}
		id := r.Header.Get("X-Request-Id")
		wantLine(t, httpLine(id, map[string]string{"operation": "me,myDevices", "kind": "query", "code": "OK"}), s.requestLine(t, mark, "requestId", id))
		if strings.Contains(s.log.String(), "SecretlyNamed") || strings.Contains(s.log.String(), "aliasZebra") {
			t.Error("the log holds the client's operation name or alias")
		}
	})
	t.Run("an error's code", func(t *testing.T) {
		mark := s.log.mark()
		r := s.fails(t, m.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`, map[string]any{"id": "0b7c6f4e-1c1d-4e8a-9d5e-000000000000"}, "NOT_FOUND")
		id := r.Header.Get("X-Request-Id")
		wantLine(t, httpLine(id, map[string]string{"operation": "cancelSignup", "kind": "mutation", "code": "NOT_FOUND"}), s.requestLine(t, mark, "requestId", id))
	})
	t.Run("a misspelt root field is other", func(t *testing.T) {
		mark := s.log.mark()
		r := s.fails(t, m.Token, `{ mee { id } }`, nil, "GRAPHQL_VALIDATION_FAILED")
		id := r.Header.Get("X-Request-Id")
		// gqlgen answers a document that does not validate with 422.
		want := httpLine(id, map[string]string{"operation": "other", "code": "GRAPHQL_VALIDATION_FAILED", "status": strconv.Itoa(r.Status)})
		wantLine(t, want, s.requestLine(t, mark, "requestId", id))
	})
	t.Run("a bad token is refused before GraphQL, and logged", func(t *testing.T) {
		mark := s.log.mark()
		r := s.gql(t, "not-a-token", `{ me { id } }`, nil)
		id := r.Header.Get("X-Request-Id")
		wantLine(t, map[string]string{"msg": "request", "requestId": id, "method": "POST", "path": "/graphql", "status": "401"}, s.requestLine(t, mark, "requestId", id))
	})
	t.Run("a path the server does not serve is other", func(t *testing.T) {
		mark := s.log.mark()
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/members/export?who=zq9x", nil)
		r := s.send(t, req)
		id := r.Header.Get("X-Request-Id")
		wantLine(t, map[string]string{"msg": "request", "requestId": id, "method": "GET", "path": "other", "status": "404"}, s.requestLine(t, mark, "requestId", id))
		if strings.Contains(s.log.String(), "/members/export") || strings.Contains(s.log.String(), "zq9x") {
			t.Error("the log holds a path or query the server does not serve")
		}
	})

	t.Run("each websocket operation, and the socket when it closes", func(t *testing.T) {
		l := s.liveLine(t, 5)
		outsider := s.addMember(t, db.RoleMember)
		mark := s.log.mark()
		ws := s.dialWS(t, nil)
		ws.init(outsider.Token)
		// ended reads the messages of operation id up to its end.
		ended := func(id string) {
			for {
				if msg := ws.next(); msg.ID == id && (msg.Type == "complete" || msg.Type == "error") {
					return
				}
			}
		}
		ws.subscribe("q", `{ me { id } }`, nil)
		ended("q")
		query := s.requestLine(t, mark, "operation", "me")
		conn := query["connection"]
		if conn == "" || conn == query["requestId"] || query["requestId"] == "" {
			t.Fatalf("requestId %q, connection %q: want an id of the operation's own beside the socket's", query["requestId"], conn)
		}
		wantLine(t, map[string]string{"msg": "request", "requestId": query["requestId"], "connection": conn, "transport": "ws", "operation": "me", "kind": "query", "code": "OK"}, query)

		ws.subscribe("refused", lineEventsSub, map[string]any{"line": l.line.ID})
		ended("refused")
		refused := s.requestLine(t, mark, "operation", "picketLineEvents")
		wantLine(t, map[string]string{"msg": "request", "requestId": refused["requestId"], "connection": conn, "transport": "ws", "operation": "picketLineEvents", "kind": "subscription", "code": "FORBIDDEN"}, refused)

		// A subscription is logged when it ends.
		s.signUpOverHTTP(t, outsider.Token, l.shift.ID)
		ws.subscribe("mine", myEventsSub, map[string]any{"after": s.myCursor(t, outsider.Token)})
		s.do(t, l.captain.Token, `mutation($id: ID!) { cancelShift(id: $id) { id } }`, map[string]any{"id": l.shift.ID}, nil)
		if e := ws.nextEvent("mine", "myEvents"); e.Kind != "SHIFT_CANCELLED" {
			t.Fatalf("personal event %+v, want SHIFT_CANCELLED", e)
		}
		ws.send(wsMsg{Type: "complete", ID: "mine"})
		mine := s.requestLine(t, mark, "operation", "myEvents")
		wantLine(t, map[string]string{"msg": "request", "requestId": mine["requestId"], "connection": conn, "transport": "ws", "operation": "myEvents", "kind": "subscription", "code": "OK"}, mine)

		ws.conn.Close()
		wantLine(t, map[string]string{"msg": "request", "requestId": conn, "method": "GET", "path": "/graphql", "status": "101"}, s.requestLine(t, mark, "requestId", conn))
	})
}

func TestRequestLogHoldsNoPersonalDataOrTokens(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	const (
		email       = "rank.and.file.7731@example.org"
		phone       = "+17805550199"
		deviceToken = "fcm-device-token-5b1f0c7e"
		refresh     = "refresh-token-90a1d4b3"
		badToken    = "forged-token-c0ffee"
	)
	mark := s.log.mark()
	var ids []string
	note := func(r *gqlResponse) { ids = append(ids, r.Header.Get("X-Request-Id")) }

	note(s.gql(t, m.Token, `mutation($in: UpdateContactInput!) { updateMyContact(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"email": email, "phone": phone}}))
	note(s.gql(t, m.Token, `mutation($t: String!) { registerDevice(token: $t, platform: ANDROID) { platform } }`, map[string]any{"t": deviceToken}))
	note(s.gql(t, "", `mutation($r: String!) { refreshSession(refreshToken: $r) { accessToken } }`, map[string]any{"r": refresh}))
	// Refused by validation, and by the token, with the secrets sent all the same.
	note(s.gql(t, m.Token, `mutation($e: String!) { updateMyContact(input: {email: $e}) { idd } }`, map[string]any{"e": email}))
	note(s.gql(t, badToken, `mutation($e: String!) { updateMyContact(input: {email: $e}) { id } }`, map[string]any{"e": email}))
	// The same over a websocket.
	ws := s.dialWS(t, nil)
	ws.init(m.Token)
	ws.subscribe("1", `mutation($t: String!) { registerDevice(token: $t, platform: IOS) { platform } }`, map[string]any{"t": deviceToken})
	if msg := ws.next(); msg.Type != "next" {
		t.Fatalf("registerDevice over the websocket: %s %s", msg.Type, msg.Payload)
	}
	s.requestLine(t, mark, "transport", "ws")
	for _, id := range ids {
		s.requestLine(t, mark, "requestId", id)
	}

	log := s.log.String()
	for what, secret := range map[string]string{
		"email": email, "phone": phone, "device token": deviceToken, "refresh token": refresh,
		"access token": m.Token, "forged token": badToken,
	} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds the %s:\n%s", what, log)
		}
	}
}

// metricsURL is where the server serves its metrics: the address it
// logged, or /metrics of its API's port.
func (s *testServer) metricsURL() string {
	for _, l := range s.log.Lines() {
		if f := logFields(l); f["msg"] == "metrics listening" {
			return "http://" + f["addr"] + "/metrics"
		}
	}
	return s.URL + "/metrics"
}

// scrape reads the server's metrics.
func (s *testServer) scrape(t *testing.T) scraped {
	t.Helper()
	resp, err := s.http.Get(s.metricsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s %v", s.metricsURL(), resp.StatusCode, body, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	return scraped{families: families, text: string(body)}
}

// scraped is one reading of the metrics.
type scraped struct {
	families map[string]*dto.MetricFamily
	text     string
}

// value is the sample of name with exactly labels; ok is false without one.
func (s scraped) value(name string, labels map[string]string) (v float64, ok bool) {
	f := s.families[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if !maps.Equal(got, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// want fails t unless the sample of name with labels is v.
func (s scraped) want(t *testing.T, name string, labels map[string]string, v float64) {
	t.Helper()
	got, ok := s.value(name, labels)
	if !ok || got != v {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, v)
	}
}

// labelValues lists the values label takes in the samples of name.
func (s scraped) labelValues(name, label string) []string {
	var out []string
	if f := s.families[name]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == label {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	return out
}

func TestMetricsInDev(t *testing.T) {
	t.Parallel()
	// Without METRICS_ADDR, dev serves metrics on the API's port.
	s := startServer(t, func(env map[string]string) { delete(env, "METRICS_ADDR") })
	if got := s.metricsURL(); got != s.URL+"/metrics" {
		t.Fatalf("dev without METRICS_ADDR serves metrics at %s, want %s/metrics", got, s.URL)
	}
	l := s.liveLine(t, 1)

	t.Run("the runtime, the pool and the outbox are there", func(t *testing.T) {
		m := s.scrape(t)
		m.want(t, "picketline_db_pool_max_connections", map[string]string{}, 16)
		m.want(t, "picketline_push_outbox_messages", map[string]string{"status": "pending"}, 0)
		m.want(t, "picketline_push_results_total", map[string]string{"result": "delivered"}, 0)
		m.want(t, "picketline_login_emails_failed_total", map[string]string{}, 0)
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "picketline_db_pool_acquires_total"} {
			if m.families[name] == nil {
				t.Errorf("no %s", name)
			}
		}
	})

	t.Run("websockets, subscriptions and the events they deliver", func(t *testing.T) {
		mark := s.log.mark()
		ws := s.dialWS(t, nil)
		ws.init(l.captain.Token)
		ws.subscribe("1", lineEventsSub, map[string]any{"line": l.line.ID, "after": s.lineCursor(t, l.captain.Token, l.line.ID)})
		s.signUpOverHTTP(t, s.addMember(t, db.RoleMember).Token, l.shift.ID)
		ws.nextEvent("1", "picketLineEvents")
		m := s.scrape(t)
		m.want(t, "picketline_websockets_open", map[string]string{}, 1)
		m.want(t, "picketline_graphql_subscriptions_active", map[string]string{}, 1)
		if n, _ := m.value("picketline_events_delivered_total", map[string]string{}); n < 1 {
			t.Errorf("events delivered %v after one arrived", n)
		}

		ws.send(wsMsg{Type: "complete", ID: "1"})
		ended := s.requestLine(t, mark, "operation", "picketLineEvents")
		ws.conn.Close()
		s.requestLine(t, mark, "requestId", ended["connection"])
		m = s.scrape(t)
		m.want(t, "picketline_websockets_open", map[string]string{}, 0)
		m.want(t, "picketline_graphql_subscriptions_active", map[string]string{}, 0)
		m.want(t, "picketline_graphql_requests_total", map[string]string{"operation": "picketLineEvents", "code": "OK", "transport": "ws"}, 1)
	})

	t.Run("rate-limit refusals, by operation", func(t *testing.T) {
		const email = "limited@example.org"
		for i := 0; ; i++ {
			r := s.gql(t, "", `mutation($e: String!) { requestLoginCode(email: $e) }`, map[string]any{"e": email})
			if r.Code() == "RATE_LIMITED" {
				break
			}
			if len(r.Errors) > 0 || i == 20 {
				t.Fatalf("request %d for a login code: %s, want RATE_LIMITED in the end", i+1, r)
			}
		}
		s.scrape(t).want(t, "picketline_rate_limited_total", map[string]string{"operation": "requestLoginCode"}, 1)
	})

	t.Run("HTTP requests by route and status", func(t *testing.T) {
		s.gql(t, "not-a-token", `{ me { id } }`, nil)
		s.scrape(t).want(t, "picketline_http_requests_total", map[string]string{"route": "/graphql", "status": "401"}, 1)
	})
}

// testMetricsInProd checks a prod server keeps its metrics off the public
// listener and labels operations only by the schema's root fields.
func testMetricsInProd(t *testing.T, s *testServer, m *member) {
	t.Run("metrics are not on the public listener", func(t *testing.T) {
		resp, err := s.http.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /metrics on the public port in prod: HTTP %d, want 404", resp.StatusCode)
		}
	})
	t.Run("unset, METRICS_ADDR is a loopback address", func(t *testing.T) {
		env := maps.Clone(s.env)
		delete(env, "METRICS_ADDR")
		cfg, err := loadConfig(getenvOf(env))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MetricsAddr != "127.0.0.1:9090" {
			t.Fatalf("prod's metrics address without METRICS_ADDR: %q, want 127.0.0.1:9090", cfg.MetricsAddr)
		}
	})
	t.Run("METRICS_ADDR serves them, labelled by root field only", func(t *testing.T) {
		if s.metricsURL() == s.URL+"/metrics" {
			t.Fatal("the prod server logged no metrics address")
		}
		requests := func(m scraped, operation, code string) float64 {
			n, _ := m.value("picketline_graphql_requests_total", map[string]string{"operation": operation, "code": code, "transport": "http"})
			return n
		}
		before := s.scrape(t)
		s.do(t, m.Token, `{ me { id } }`, nil, nil)
		s.gql(t, m.Token, `{ mee { id } }`, nil)
		s.gql(t, m.Token, `{ me { id `, nil)
		s.do(t, m.Token, `{ __typename }`, nil, nil)
		after := s.scrape(t)
		for _, c := range []struct{ operation, code string }{
			{"me", "OK"},
			{"other", "OK"},
			{"other", "GRAPHQL_VALIDATION_FAILED"},
			{"other", "GRAPHQL_PARSE_FAILED"},
		} {
			if got := requests(after, c.operation, c.code) - requests(before, c.operation, c.code); got != 1 {
				t.Errorf("operation=%s code=%s counted %v more, want 1", c.operation, c.code, got)
			}
		}
		if _, ok := after.value("picketline_graphql_request_duration_seconds", map[string]string{"operation": "me", "code": "OK", "transport": "http"}); !ok {
			t.Error("no latency of me")
		}
		roots := newObserver(graph.NewExecutableSchema(graph.Config{}).Schema(), nil, nil).roots
		for _, op := range after.labelValues("picketline_graphql_requests_total", "operation") {
			if !roots[op] && op != "other" {
				t.Errorf("operation label %q is no root field of the schema", op)
			}
		}
	})
}
