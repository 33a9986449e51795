package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
)

func TestDevicesPerMemberAreCappedOverHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["MAX_DEVICES_PER_MEMBER"] = "3" })
	m := s.addMember(t, db.RoleMember)
	mine := func() []string {
		t.Helper()
		var out struct {
			MyDevices []struct{ Token string } `json:"myDevices"`
		}
		s.do(t, m.Token, `{ myDevices { token } }`, nil, &out)
		var tokens []string
		for _, d := range out.MyDevices {
			tokens = append(tokens, d.Token)
		}
		return tokens
	}
	for i := 1; i <= 4; i++ {
		s.do(t, m.Token, `mutation($t: String!) { registerDevice(token: $t, platform: IOS) { token } }`,
			map[string]any{"t": fmt.Sprintf("phone-%d", i)}, nil)
		if i == 3 {
			if diff := cmp.Diff([]string{"phone-3", "phone-2", "phone-1"}, mine()); diff != "" {
				t.Fatalf("devices at the cap (-want +got):\n%s", diff)
			}
		}
	}
	if diff := cmp.Diff([]string{"phone-4", "phone-3", "phone-2"}, mine()); diff != "" {
		t.Fatalf("devices past the cap (-want +got):\n%s", diff)
	}
}

func TestUrgentPushesAreLimitedPerPosterOverHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["RATE_LIMIT_URGENT_PER_HOUR"] = "2" })
	line := s.kit(t).Line()
	announce := func(token string) *gqlResponse {
		return s.gql(t, token, `mutation($l: ID!) { postAnnouncement(input: {picketLineId: $l, body: "Bring water", urgent: true}) { id } }`,
			map[string]any{"l": line.ID})
	}
	callForCoverage := func(token string) *gqlResponse {
		return s.gql(t, token, `mutation($s: ID!) { callForCoverage(shiftId: $s) }`,
			map[string]any{"s": s.kit(t).ShiftOn(line, 48*time.Hour, 2).ID})
	}
	// Each try has a captain of their own, so a try that crossed the hour
	// (and so started a new window) leaves the next one a fresh count.
	for range 2 {
		captain := s.captain(t, line)
		start := time.Now()
		first, second := announce(captain.Token), callForCoverage(captain.Token)
		third, fourth := announce(captain.Token), callForCoverage(captain.Token)
		other := announce(s.captain(t, line).Token)
		if !time.Now().Truncate(time.Hour).Equal(start.Truncate(time.Hour)) {
			continue
		}
		for i, r := range []*gqlResponse{first, second, other} {
			if r.Code() != "" {
				t.Fatalf("urgent push %d: %s", i+1, r)
			}
		}
		wantLimitedWithin(t, third, time.Hour)
		wantLimitedWithin(t, fourth, time.Hour)
		return
	}
	t.Fatalf("both tries crossed a rate-limit window")
}

// sameHour runs f and reports whether it ran within one clock hour, the
// window of the hourly limits, so a boundary falling inside cannot fail a
// test that counts up to a threshold.
func sameHour(f func()) bool {
	start := time.Now()
	f()
	return time.Now().Truncate(time.Hour).Equal(start.Truncate(time.Hour))
}

// requestCodeFrom asks for a login code over HTTP, the request saying it
// was forwarded for addr.
func (s *testServer) requestCodeFrom(t *testing.T, addr, email string) *gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": `mutation($e: String!) { requestLoginCode(email: $e) }`, "variables": map[string]any{"e": email}})
	req, err := http.NewRequest("POST", s.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	return s.send(t, req)
}

// requestCodeOverWS asks for a login code on a websocket and returns the
// answer's payload.
func requestCodeOverWS(c *wsClient, id, email string) *gqlResponse {
	c.t.Helper()
	return wsOperation(c, id, `mutation($e: String!) { requestLoginCode(email: $e) }`, map[string]any{"e": email})
}

func TestClientAddressIsForwardedOnlyByTrustedProxies(t *testing.T) {
	t.Parallel()
	limited := func(env map[string]string) { env["RATE_LIMIT_LOGIN_PER_ADDRESS_PER_HOUR"] = "2" }
	trusted := func(env map[string]string) { env["TRUSTED_PROXIES"] = "127.0.0.1/32" }

	t.Run("an untrusted peer's X-Forwarded-For is ignored", func(t *testing.T) {
		t.Parallel()
		for range 2 {
			s := startServer(t, limited)
			var answers []*gqlResponse
			if !sameHour(func() {
				for i, addr := range []string{"203.0.113.7", "203.0.113.8", "203.0.113.9"} {
					answers = append(answers, s.requestCodeFrom(t, addr, fmt.Sprintf("someone%d@example.org", i)))
				}
			}) {
				continue
			}
			for i, r := range answers[:2] {
				if r.Code() != "" {
					t.Fatalf("request %d: %s", i+1, r)
				}
			}
			// Every request counted against the real peer.
			wantLimitedWithin(t, answers[2], time.Hour)
			return
		}
		t.Fatalf("both tries crossed a rate-limit window")
	})

	t.Run("a trusted proxy's X-Forwarded-For names the client, on HTTP and websockets", func(t *testing.T) {
		t.Parallel()
		for range 2 {
			s := startServer(t, limited, trusted)
			m := s.addMember(t, db.RoleMember)
			var ws, third, other *gqlResponse
			var first []*gqlResponse
			if !sameHour(func() {
				first = append(first, s.requestCodeFrom(t, "203.0.113.7", "someone1@example.org"))
				c := s.dialWS(t, http.Header{"X-Forwarded-For": {"203.0.113.7"}})
				c.init(m.Token)
				first = append(first, requestCodeOverWS(c, "1", "someone2@example.org"))
				// The third from the same client, by either way, is one too
				// many; another client behind the same proxy is counted apart.
				ws = requestCodeOverWS(c, "2", "someone3@example.org")
				third = s.requestCodeFrom(t, "203.0.113.7", "someone3@example.org")
				other = s.requestCodeFrom(t, "203.0.113.8", "someone3@example.org")
			}) {
				continue
			}
			for i, r := range first {
				if r.Code() != "" {
					t.Fatalf("request %d: %s", i+1, r)
				}
			}
			wantLimitedWithin(t, ws, time.Hour)
			wantLimitedWithin(t, third, time.Hour)
			if other.Code() != "" {
				t.Fatalf("another forwarded client: %s", other)
			}
			return
		}
		t.Fatalf("both tries crossed a rate-limit window")
	})
}
