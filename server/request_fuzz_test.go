package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzGraphQLRequest posts any body to the real server, as an anonymous
// client would. Whatever it is, the answer is GraphQL JSON with a code, never
// a server error, and a request refused before GraphQL runs never echoes
// the body back.
func FuzzGraphQLRequest(f *testing.F) {
	for _, seed := range []string{
		`{"query":"{ __typename }"}`,
		`{"query":"mutation($e: String!) { requestLoginCode(email: $e) }","variables":{"e":"someone@example.org"}}`,
		`[{"query":"{ __typename }"},{"query":"{ __typename }"}]`,
		`{"query":"{ openShifts(first: 5) { edges { cursor } } }"}`,
		`{"query":"query { me { id } }","variables":"not an object"}`,
		`{"query":"{ __typename }","extensions":{"persistedQuery":{"version":1}}}`,
		`{"query": 7}`,
		`{"query":"{ a: __typename b: __typename }","operationName":"nope"}`,
		`{"query":"{\u0000}"}`,
		`not json at all`,
		``,
	} {
		f.Add([]byte(seed), "application/json")
	}
	f.Add([]byte(`{"query":"{ __typename }"}`), "text/plain")
	f.Add([]byte(`query=%7B__typename%7D`), "application/x-www-form-urlencoded")
	s := startServer(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		if strings.ContainsFunc(contentType, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }) {
			return // no HTTP client sends a header with control characters
		}
		r, err := s.tryPost("", contentType, body)
		if err != nil {
			t.Fatalf("post %q as %q: %v", body, contentType, err)
		}
		if r.Status >= 500 {
			t.Fatalf("post %q as %q: HTTP %d %s", body, contentType, r.Status, r.Body)
		}
		var answer struct {
			Data   json.RawMessage `json:"data"`
			Errors []gqlError      `json:"errors"`
		}
		if err := json.Unmarshal(r.Body, &answer); err != nil {
			t.Fatalf("post %q as %q: HTTP %d, an answer that is not JSON: %q", body, contentType, r.Status, r.Body)
		}
		if answer.Data == nil && len(answer.Errors) == 0 {
			t.Fatalf("post %q as %q: HTTP %d with neither data nor errors: %s", body, contentType, r.Status, r.Body)
		}
		for _, e := range answer.Errors {
			if e.Extensions.Code == "" {
				t.Fatalf("post %q as %q: an error without a code: %s", body, contentType, r.Body)
			}
			if e.Extensions.Code == "INTERNAL" {
				t.Fatalf("post %q as %q: INTERNAL: %s", body, contentType, r.Body)
			}
		}
		if r.Status != http.StatusOK && len(body) >= 16 && bytes.Contains(r.Body, body) {
			t.Fatalf("post %q as %q: HTTP %d echoes the body: %s", body, contentType, r.Status, r.Body)
		}
	})
}
