package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	node, dir := installClients(t)

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

// installClients finds node and installs the client test project's npm
// packages in clients/, exactly as locked, when any is missing or at
// another version than package.json pins: a checkout that added one must
// not run against an older install. It returns node's path and the
// project's directory. The tests that need them run in parallel and share
// one install, as two `npm ci` at once in one directory would undo each
// other's work.
func installClients(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed for the JavaScript client tests (install Node.js 20 or later): %v", err)
	}
	dir, err = clientsInstalled()
	if err != nil {
		t.Fatal(err)
	}
	return node, dir
}

// clientsInstalled installs clients/ once for the whole test binary.
var clientsInstalled = sync.OnceValues(func() (string, error) {
	dir, err := filepath.Abs(filepath.Join("..", "clients"))
	if err != nil {
		return "", err
	}
	return dir, npmCIUnlessInstalled(dir)
})

func npmCIUnlessInstalled(dir string) error {
	var project struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := readJSON(filepath.Join(dir, "package.json"), &project); err != nil {
		return err
	}
	installed := true
	for name, version := range project.Dependencies {
		var pkg struct {
			Version string `json:"version"`
		}
		if readJSON(filepath.Join(dir, "node_modules", name, "package.json"), &pkg) != nil || pkg.Version != version {
			installed = false
		}
	}
	if installed {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm is needed to install the JavaScript client tests: %w", err)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
