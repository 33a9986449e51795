package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

// TestGraphQLWSClient runs the graphql-ws JavaScript client, from npm,
// against the server: the client web and React Native developers use must
// connect, subscribe, receive and complete, and be refused with 4403 on a
// bad token.
func TestGraphQLWSClient(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed for the JavaScript client tests (install Node.js 20 or later): %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "clients"))
	if err != nil {
		t.Fatal(err)
	}
	installClients(t, dir)

	s := startServer(t)
	l := s.liveLine(t, 5)
	m := s.addMember(t, db.RoleMember)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "subscribe.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PICKETLINE_WS="+s.wsURL(),
		"PICKETLINE_HTTP="+s.URL+"/graphql",
		"PICKETLINE_TOKEN="+l.captain.Token,
		"PICKETLINE_LINE="+l.line.ID,
		"PICKETLINE_SHIFT="+l.shift.ID,
		"PICKETLINE_MEMBER_TOKEN="+m.Token,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# pass 2") {
		t.Fatalf("the JavaScript tests did not all pass:\n%s", out)
	}
}

// installClients installs the client test project's npm packages, exactly
// as locked, when they are missing.
func installClients(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "graphql-ws")); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed to install the JavaScript client tests: %v", err)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}
