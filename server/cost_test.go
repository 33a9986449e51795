package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
)

// overLimit checks that r is refused before it ran, with
// GRAPHQL_VALIDATION_FAILED and want as the whole message, and that the
// refusal is small and repeats nothing of the query.
func overLimit(t *testing.T, r *gqlResponse, want string, notEchoed ...string) {
	t.Helper()
	if r.Code() != "GRAPHQL_VALIDATION_FAILED" || !r.NoData() || len(r.Errors) != 1 {
		t.Fatalf("got %s, want one GRAPHQL_VALIDATION_FAILED and no data", r)
	}
	if diff := cmp.Diff(want, r.Errors[0].Message); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if len(r.Body) > 512 {
		t.Errorf("the refusal is %d bytes: %s", len(r.Body), r.Body)
	}
	for _, s := range notEchoed {
		if strings.Contains(string(r.Body), s) {
			t.Errorf("the refusal repeats %q of the query: %s", s, r.Body)
		}
	}
}

// A nest of lists once answered 55 MB; it is refused before anything is
// read, however little data there is to read.
func TestNestedListsAreRefusedBeforeTheyRun(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	k := s.kit(t)
	k.ShiftOn(k.Line(), 24*time.Hour, 3)
	// Every list pages, so the nest asks for the largest pages: 100 job
	// actions of 100 lines of 100 shifts of a line of 100 shifts.
	query := `{ jobActions(first: 100) { edges { node { picketLines(first: 100) { edges { node { shifts(first: 100) { edges { node { picketLine { shifts(first: 100) { edges { node { id } } } } } } } } } } } } } }`
	overLimit(t, s.gql(t, m.Token, query, nil), "the operation costs 204,030,302 nodes, over the limit of 50,000", "picketLines", "shifts")
}

func TestCostBudgetThreshold(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	// jobActions(first: 100) counts 100 job actions: 1 + (1 + 100 × (1 +
	// ids)); me 1 + ids.
	query := func(jobActionIDs, meIDs int) string {
		return "{ jobActions(first: 100) { edges { node { " + strings.Repeat("id ", jobActionIDs) + "} } } me { " + strings.Repeat("id ", meIDs) + "} }"
	}
	s.do(t, m.Token, query(498, 97), nil, nil) // 49,902 + 98 = 50,000
	overLimit(t, s.gql(t, m.Token, query(498, 98), nil), "the operation costs 50,001 nodes, over the limit of 50,000")
}

// myDevices counts at the device cap the server was configured with, so
// a higher cap costs more; it is never counted at a smaller constant.
func TestMyDevicesCostsTheConfiguredDeviceCap(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(env map[string]string) { env["MAX_DEVICES_PER_MEMBER"] = "1000" })
	m := s.addMember(t, db.RoleMember)
	devices := func(fields int) string { return "{ myDevices { " + strings.Repeat("token ", fields) + "} }" }
	s.do(t, m.Token, devices(49), nil, nil) // 1 + 1,000 × 49
	overLimit(t, s.gql(t, m.Token, devices(50), nil), "the operation costs 50,001 nodes, over the limit of 50,000")
}

// A page is counted at the size asked for, so a hundred aliased pages of
// a hundred are refused, as are more aliases or root fields than allowed.
func TestAliasAndRootFieldLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	pages := func(n, first int, fields string) string {
		var b strings.Builder
		b.WriteString("{ ")
		for i := range n {
			fmt.Fprintf(&b, "p%d: openShifts(first: %d) { edges { node { %s } } } ", i, first, fields)
		}
		b.WriteString("}")
		return b.String()
	}
	overLimit(t, s.gql(t, m.Token, pages(100, 100, "id"), nil), "the operation asks for 100 root fields; at most 10 are allowed", "openShifts")

	t.Run("root fields", func(t *testing.T) {
		s.do(t, m.Token, pages(10, 20, "id"), nil, nil)
		overLimit(t, s.gql(t, m.Token, pages(11, 20, "id"), nil), "the operation asks for 11 root fields; at most 10 are allowed")
	})
	t.Run("pages count the size asked for", func(t *testing.T) {
		// A shift with a page of 50 of its line's shifts costs 1 + 1 + (1 +
		// (1 + 50 × 2)) = 104, 105 with its node.
		const lineShifts = "id picketLine { shifts(first: 50) { edges { node { id } } } }"
		// 10 × (1 + 1 + 47 × 105) = 49,370.
		s.do(t, m.Token, pages(10, 47, lineShifts), nil, nil)
		// 10 × (1 + 1 + 48 × 105) = 50,420.
		overLimit(t, s.gql(t, m.Token, pages(10, 48, lineShifts), nil), "the operation costs 50,420 nodes, over the limit of 50,000")
		// 10 × (1 + 1 + 20 × 105) = 21,020 at the default page.
		s.do(t, m.Token, strings.ReplaceAll(pages(10, 48, lineShifts), "openShifts(first: 48)", "openShifts"), nil, nil)
	})
	t.Run("aliases", func(t *testing.T) {
		aliases := func(n int) string {
			var b strings.Builder
			b.WriteString("{ me { ")
			for i := range n {
				fmt.Fprintf(&b, "a%d: id ", i)
			}
			b.WriteString("} }")
			return b.String()
		}
		s.do(t, m.Token, aliases(30), nil, nil)
		overLimit(t, s.gql(t, m.Token, aliases(31), nil), "the operation has 31 aliases; at most 30 are allowed")
		// A fragment counts its aliases wherever it is spread.
		spread := `{ me { ...F } x: me { ...F } } fragment F on Member { n: name a: id b: id c: id d: id e: id f: id g: id h: id i: id j: id k: id l: id m: id o: id }`
		overLimit(t, s.gql(t, m.Token, spread, nil), "the operation has 31 aliases; at most 30 are allowed")
	})
}

// The queries the app makes (docs/API.md and the screens the tests stand
// for) are well within the budget, a captain's roster of a line's shifts
// with their sign-ups included.
func TestTheAppsQueriesAreWithinTheBudget(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	ja := k.JobAction()
	line := k.LineOf(ja)
	captain := s.captain(t, line)
	sh := k.ShiftOn(line, 24*time.Hour, 3)
	m := s.addMember(t, db.RoleMember)
	k.SignUp(m.Actor(), sh)
	vars := map[string]any{"line": line.ID, "shift": sh.ID, "ja": ja.ID}
	for _, q := range []string{
		`{ me { id name email phone role eventCursor } }`,
		`{ jobActions { edges { node { id name kind employer status startsAt cancelCutoffMinutes
			picketLines(first: 100) { edges { node { id name latitude longitude } } pageInfo { hasNextPage endCursor } } } } pageInfo { hasNextPage endCursor } } }`,
		`query($ja: ID!) { jobAction(id: $ja) { id name status picketLines(first: 100) { edges { cursor node { id name address latitude longitude geofenceMeters } } pageInfo { hasNextPage endCursor } }
			announcements { id body urgent createdAt author { id name } } } }`,
		`query($line: ID!) { picketLine(id: $line) { id name address latitude longitude geofenceMeters eventCursor
			jobAction { id name cancelCutoffMinutes announcements { body urgent createdAt author { id name email phone } } picketLines { edges { node { id address } } } }
			captains { id name email phone }
			shifts(first: 100) { edges { cursor node { id startsAt endsAt capacity signedUpCount spotsLeft waitlistCount cancelledAt mySignup { id status waitlistPosition } } } pageInfo { hasNextPage endCursor } }
			announcements { id body urgent createdAt author { id name email phone } } } }`,
		`query($line: ID!) { picketLine(id: $line) { id name shifts { edges { cursor node { id startsAt endsAt capacity signedUpCount waitlistCount
			signups { edges { cursor node { id status waitlistPosition member { id name phone } } } pageInfo { hasNextPage endCursor } } } } pageInfo { hasNextPage endCursor } } } }`,
		`query($shift: ID!) { shift(id: $shift) { id startsAt endsAt capacity signedUpCount spotsLeft waitlistCount picketLine { id name } mySignup { id status }
			signups(first: 100) { edges { cursor node { id status waitlistPosition createdAt member { id name email phone } } } pageInfo { hasNextPage endCursor } } } }`,
		`{ myShifts(first: 100) { edges { cursor node { id status waitlistPosition shift { id startsAt endsAt picketLine { id name address } } } } pageInfo { hasNextPage endCursor } } }`,
		`{ openShifts(first: 100) { edges { cursor node { id startsAt endsAt spotsLeft picketLine { id name latitude longitude jobAction { id name } } } } pageInfo { hasNextPage endCursor } } }`,
		`{ myDevices { token platform createdAt lastSeenAt } myNotificationPreferences { enabled quietStart quietEnd timeZone } }`,
	} {
		s.do(t, captain.Token, q, vars, nil)
		s.do(t, m.Token, q, vars, nil)
	}
}

// Subscriptions are measured like queries, before anything is subscribed.
func TestCostLimitCoversSubscriptions(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	ws := s.dialWS(t, nil)
	ws.init(m.Token)
	ws.subscribe("1", `subscription { myEvents { shift { picketLine { shifts(first: 100) { edges { node { signups(first: 100) { edges { node { member { id name email phone role eventCursor } } } } } } } } } } }`, nil)
	msg := ws.next()
	var errs []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	}
	if msg.Type != "error" || msg.ID != "1" || json.Unmarshal(msg.Payload, &errs) != nil || len(errs) != 1 {
		t.Fatalf("got %s %s, want one error for subscription 1", msg.Type, msg.Payload)
	}
	if errs[0].Extensions.Code != "GRAPHQL_VALIDATION_FAILED" || errs[0].Message != "the operation costs 80,305 nodes, over the limit of 50,000" {
		t.Errorf("refusal = %+v", errs[0])
	}
	// The connection stays usable: the app's own subscription follows.
	ws.subscribe("2", `subscription { myEvents { cursor kind shift { id startsAt } signup { id status } announcement { body } } }`, nil)
	ws.subscribe("3", `{ me { id } }`, nil)
	for msg := ws.next(); msg.ID != "3" || msg.Type != "next"; msg = ws.next() {
		if msg.ID != "1" || msg.Type != "complete" {
			t.Fatalf("got %s %s %s, want the answer to 3", msg.Type, msg.ID, msg.Payload)
		}
	}
}
