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
	query := `{ jobActions { picketLines { shifts { picketLine { shifts { picketLine { shifts { signups { member { name } } } } } } } } } }`
	overLimit(t, s.gql(t, m.Token, query, nil), "the operation costs 251,255,010,010,101 nodes, over the limit of 50,000", "picketLines", "signups")
}

func TestCostBudgetThreshold(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	m := s.addMember(t, db.RoleMember)
	// jobActions counts 100 job actions: 1 + 100 × ids; me 1 + ids.
	query := func(jobActionIDs, meIDs int) string {
		return "{ jobActions { " + strings.Repeat("id ", jobActionIDs) + "} me { " + strings.Repeat("id ", meIDs) + "} }"
	}
	s.do(t, m.Token, query(499, 98), nil, nil) // 49,901 + 99 = 50,000
	overLimit(t, s.gql(t, m.Token, query(499, 99), nil), "the operation costs 50,001 nodes, over the limit of 50,000")
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
		// A shift with its line's 500 shifts costs 1 + 1 + (1 + (1 + 500)).
		const lineShifts = "id picketLine { shifts { id } }"
		// 10 × (1 + 1 + 9 × 504) = 45,380.
		s.do(t, m.Token, pages(10, 9, lineShifts), nil, nil)
		// 10 × (1 + 1 + 10 × 504) = 50,420.
		overLimit(t, s.gql(t, m.Token, pages(10, 10, lineShifts), nil), "the operation costs 50,420 nodes, over the limit of 50,000")
		// 10 × (1 + 1 + 20 × 504) = 100,820 at the default page.
		overLimit(t, s.gql(t, m.Token, strings.ReplaceAll(pages(10, 10, lineShifts), "(first: 10)", ""), nil), "the operation costs 100,820 nodes, over the limit of 50,000")
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
// for) are well within the budget.
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
		`{ jobActions { id name kind employer status startsAt cancelCutoffMinutes picketLines { id name latitude longitude } } }`,
		`query($ja: ID!) { jobAction(id: $ja) { id name status picketLines { id name address latitude longitude geofenceMeters } announcements { id body urgent createdAt author { id name } } } }`,
		`query($line: ID!) { picketLine(id: $line) { id name address latitude longitude geofenceMeters eventCursor
			jobAction { id name cancelCutoffMinutes announcements { body urgent createdAt author { id name email phone } } picketLines { id address } }
			captains { id name email phone }
			shifts { id startsAt endsAt capacity signedUpCount spotsLeft waitlistCount cancelledAt mySignup { id status waitlistPosition } }
			announcements { id body urgent createdAt author { id name email phone } } } }`,
		`query($shift: ID!) { shift(id: $shift) { id startsAt endsAt capacity signedUpCount spotsLeft waitlistCount picketLine { id name } mySignup { id status }
			signups { id status waitlistPosition createdAt member { id name email phone } } } }`,
		`{ myShifts { id status waitlistPosition shift { id startsAt endsAt picketLine { id name address } } } }`,
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
	ws.subscribe("1", `subscription { myEvents { shift { picketLine { shifts { signups { member { name } } } } } } }`, nil)
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
	if errs[0].Extensions.Code != "GRAPHQL_VALIDATION_FAILED" || errs[0].Message != "the operation costs 100,504 nodes, over the limit of 50,000" {
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
