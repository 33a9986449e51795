package main

import (
	"fmt"
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
