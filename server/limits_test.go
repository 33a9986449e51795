package main

import (
	"fmt"
	"testing"

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
