package db

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTextRefusesNUL checks the use-cases' own guard: text PostgreSQL
// cannot store is BAD_USER_INPUT on its field, not an internal error,
// whichever layer above forgot to check.
func TestTextRefusesNUL(t *testing.T) {
	checks := map[string]func(v string) error{
		"name":     func(v string) error { _, err := normalizeName("name", v); return err },
		"employer": func(v string) error { _, err := trimmedText("employer", v, 200); return err },
		"body":     func(v string) error { return plainText("body", v) },
	}
	for field, check := range checks {
		for _, v := range []string{"Ga\x00te", "Gate \xff"} {
			err := check(v)
			if diff := cmp.Diff([]string{string(CodeBadUserInput), field}, []string{string(ErrorCode(err)), fieldOf(err)}); diff != "" {
				t.Errorf("%s = %q (-want +got):\n%s", field, v, diff)
			}
		}
		if err := check("Gate"); err != nil {
			t.Errorf("%s = \"Gate\": %v", field, err)
		}
	}
}

func fieldOf(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Field
	}
	return ""
}
