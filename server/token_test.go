package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db/dbtest"
)

// addMembers adds a member per email with the member add command and
// returns their ids.
func addMembers(t *testing.T, env map[string]string, emails ...string) []string {
	t.Helper()
	var ids []string
	for _, e := range emails {
		out, err := runCLI(t, env, "member", "add", "--email", e, "--name", "Member "+e)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimSpace(out))
	}
	return ids
}

// tokenLifetime reads how long a printed token lives from its claims.
func tokenLifetime(t *testing.T, token string) time.Duration {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Iat, Exp int64 }
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return time.Duration(claims.Exp-claims.Iat) * time.Second
}

func TestTokenBatchPrintsATokenPerEmailInOrder(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	env := testEnv(t, dbURL)
	ids := addMembers(t, env, "ana@example.org", "ben@example.org", "cal@example.org")
	file := filepath.Join(t.TempDir(), "emails")
	if err := os.WriteFile(file, []byte("ben@example.org\n Ana@Example.org \r\nben@example.org"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := runCLI(t, env, "token", "--emails", file, "--ttl", "2h")
	if err != nil {
		t.Fatal(err)
	}
	fromStdin, err := runCLIWithInput(t, env, "cal@example.org\n", "token", "--emails", "-")
	if err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, dbURL)
	whose := func(out string) []string {
		var got []string
		for _, token := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			var me struct{ Me memberJSON }
			s.do(t, token, `{ me { id } }`, nil, &me)
			got = append(got, me.Me.ID)
		}
		return got
	}
	if diff := cmp.Diff([]string{ids[1], ids[0], ids[1]}, whose(fromFile)); diff != "" {
		t.Errorf("members of the tokens printed for the file, line by line (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{ids[2]}, whose(fromStdin)); diff != "" {
		t.Errorf("members of the tokens printed for standard input (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		out  string
		want time.Duration
	}{{fromFile, 2 * time.Hour}, {fromStdin, 15 * time.Minute}} {
		for _, token := range strings.Fields(c.out) {
			if got := tokenLifetime(t, token); got != c.want {
				t.Errorf("a printed token lives %s, want %s", got, c.want)
			}
		}
	}
}

func TestTokenBatchRefusesWhatItCannotDoWhole(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	env := testEnv(t, dbURL)
	addMembers(t, env, "ana@example.org")
	cases := []struct {
		name    string
		input   string
		args    []string
		mention string
	}{
		{"an unknown email", "ana@example.org\nnobody@example.org\n", []string{"--emails", "-"}, "email 2 of 2"},
		{"a blank line", "ana@example.org\n\nana@example.org\n", []string{"--emails", "-"}, "line 2"},
		{"no email", "", []string{"--emails", "-"}, "no email"},
		{"a missing file", "", []string{"--emails", filepath.Join(t.TempDir(), "none")}, "no such file"},
		{"both forms", "ana@example.org\n", []string{"--emails", "-", "--email", "ana@example.org"}, "not both"},
		{"a lifetime over 24h", "ana@example.org\n", []string{"--emails", "-", "--ttl", "25h"}, "--ttl"},
	}
	for _, c := range cases {
		out, err := runCLIWithInput(t, env, c.input, append([]string{"token"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("token with %s: %v, want an error mentioning %q", c.name, err, c.mention)
		}
		if out != "" {
			t.Errorf("token with %s printed %q", c.name, out)
		}
	}
	// None of them started a session.
	var sessions int
	if err := dbtest.PoolFor(t, dbURL).QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != 0 {
		t.Fatalf("%d sessions started by refused commands", sessions)
	}
}
