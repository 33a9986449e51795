package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// httpAudit is one audit's result as clients/audits.mjs prints it.
type httpAudit struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// TestGraphQLHTTPAudits runs graphql-http's audits of the GraphQL over HTTP
// specification, from npm, against a dev server (they use introspection):
// every MUST passes, and the SHOULD and MAY audits that fail are exactly
// those README.md lists, so that its list stays true.
func TestGraphQLHTTPAudits(t *testing.T) {
	t.Parallel()
	node, dir := installClients(t)
	listed := readmeFailingAudits(t)

	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "audits.mjs", s.URL+"/graphql")
	cmd.Dir = dir
	cmd.Stderr = new(strings.Builder)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node audits.mjs: %v\n%s", err, cmd.Stderr)
	}
	var audits []httpAudit
	if err := json.Unmarshal(out, &audits); err != nil {
		t.Fatalf("node audits.mjs printed no JSON report: %v\n%s", err, out)
	}
	if len(audits) == 0 {
		t.Fatal("node audits.mjs ran no audit")
	}

	var failing []string
	for _, a := range audits {
		switch {
		case a.Status == "ok":
		case strings.HasPrefix(a.Name, "MUST"):
			t.Errorf("audit %s %q fails: %s", a.ID, a.Name, a.Message)
		default:
			failing = append(failing, a.ID)
			if !slices.Contains(listed, a.ID) {
				t.Errorf("audit %s %q fails (%s) but README.md does not list it", a.ID, a.Name, a.Message)
			}
		}
	}
	for _, id := range listed {
		if !slices.Contains(failing, id) {
			t.Errorf("README.md lists audit %s as failing, but it passes or no longer exists: take it off the list", id)
		}
	}
}

// readmeFailingAudits returns the ids of the audits README.md's Security
// section lists as failing by design, one table row each.
func readmeFailingAudits(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### GraphQL over HTTP audits\n")
	if !ok {
		t.Fatal(`README.md has no "### GraphQL over HTTP audits" section`)
	}
	section, _, _ = strings.Cut(section, "\n#")
	var ids []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([0-9A-F]{4})` ").FindAllStringSubmatch(section, -1) {
		ids = append(ids, m[1])
	}
	return ids
}
