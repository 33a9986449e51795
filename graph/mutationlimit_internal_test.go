package graph

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUncountedMutationsAreTheAnonymousOnes: the mutations the per-member
// limit leaves out are exactly those the schema says need no access token.
func TestUncountedMutationsAreTheAnonymousOnes(t *testing.T) {
	want := map[string]bool{}
	for _, f := range schema().Mutation.Fields {
		if strings.Contains(f.Description, "Needs no access token") {
			want[f.Name] = true
		}
	}
	if diff := cmp.Diff(want, anonymousMutations); diff != "" {
		t.Fatalf("mutations needing no token (-schema +uncounted):\n%s", diff)
	}
}
