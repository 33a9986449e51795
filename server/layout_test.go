package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsPointDown keeps the layers' arrows pointing down: the process
// (server/) sits on the GraphQL adapter (graph/), which sits on the domain
// and storage (db/). A piece two layers need sits below both, so no package
// may import one above it, and the load tool talks to the server as a client
// would, sharing only what sits below server/.
func TestImportsPointDown(t *testing.T) {
	const module = "github.com/picketline/picketline"
	forbidden := map[string][]string{
		"db":    {"server", "graph", "bench"},
		"graph": {"server", "bench"},
		"bench": {"server", "graph"},
	}
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := layer(module, testPackage(fields[0]))
		if !ok {
			continue
		}
		checked++
		for _, dep := range fields[1:] {
			dl, ok := layer(module, dep)
			if !ok {
				continue
			}
			for _, above := range forbidden[pkg] {
				if dl == above {
					t.Errorf("%s (layer %s) imports %s (layer %s), which sits above it", fields[0], pkg, dep, dl)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list named no package of the module")
	}
}

// testPackage turns the name go list -test gives a test variant
// ("p [p.test]", "p_test [p.test]", "p.test") into its package's path.
func testPackage(name string) string {
	name, _, _ = strings.Cut(name, " ")
	name = strings.TrimSuffix(name, ".test")
	return strings.TrimSuffix(name, "_test")
}

// layer returns the top-level directory of a package of the module.
func layer(module, pkg string) (string, bool) {
	rest, ok := strings.CutPrefix(pkg, module+"/")
	if !ok {
		return "", false
	}
	top, _, _ := strings.Cut(rest, "/")
	return top, true
}
