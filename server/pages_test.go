package main

import (
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
)

// connection is one page of a connection field, as JSON.
type connection[T any] struct {
	Edges []struct {
		Cursor string `json:"cursor"`
		Node   T      `json:"node"`
	} `json:"edges"`
	PageInfo struct {
		HasNextPage bool    `json:"hasNextPage"`
		EndCursor   *string `json:"endCursor"`
	} `json:"pageInfo"`
}

func (c connection[T]) nodes() []T {
	out := make([]T, len(c.Edges))
	for i, e := range c.Edges {
		out[i] = e.Node
	}
	return out
}

// allPages reads a connection to its end: query takes $first and $after,
// and page picks the connection out of an answer.
func allPages[R, T any](t *testing.T, s *testServer, token, query string, vars map[string]any, first int, page func(*R) connection[T]) []T {
	t.Helper()
	var all []T
	v := map[string]any{"first": first, "after": nil}
	for k, x := range vars {
		v[k] = x
	}
	for pages := 0; ; pages++ {
		var out R
		s.do(t, token, query, v, &out)
		c := page(&out)
		all = append(all, c.nodes()...)
		if n := len(c.Edges); n > 0 && c.Edges[n-1].Cursor != *c.PageInfo.EndCursor {
			t.Fatalf("endCursor %q is not the last edge's cursor %q", *c.PageInfo.EndCursor, c.Edges[n-1].Cursor)
		}
		if !c.PageInfo.HasNextPage {
			return all
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		v["after"] = *c.PageInfo.EndCursor
	}
}

// Every list that grows pages over HTTP with first and after, in its
// order, and refuses pages over the largest and cursors it did not make.
func TestConnectionsPageOverHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	ja := k.JobAction()
	line := k.LineOf(ja)
	coordinator := s.addMember(t, db.RoleCoordinator)
	m := s.addMember(t, db.RoleMember)
	// By name: the kit's "Main Gate" before the sites.
	lines := []string{line.ID}
	var shifts, signups []string
	for i := range 4 {
		l, err := k.Store.CreatePicketLine(k.Ctx, k.Staff, db.NewPicketLine{JobActionID: ja.ID, Name: fmt.Sprintf("Site %d", i), Address: "1 Main St", Latitude: 53.5, Longitude: -113.5})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l.ID)
	}
	jobActions := []string{}
	for i := range 4 {
		j, err := k.Store.CreateJobAction(k.Ctx, k.Staff, db.NewJobAction{Name: "Strike", Kind: db.KindStrike, Employer: "Employer", StartsAt: k.Clock.Now().Add(time.Duration(4-i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		jobActions = append(jobActions, j.ID)
	}
	jobActions = append(jobActions, ja.ID)
	crowded := k.ShiftOn(line, 12*time.Hour, 2)
	for range 5 {
		k.Clock.Advance(time.Minute)
		signups = append(signups, k.SignUp(k.NewMember(), crowded).MemberID)
	}
	for i := range 5 {
		sh := k.ShiftOn(line, time.Duration(24+5*i)*time.Hour, 3)
		k.SignUp(m.Actor(), sh)
		shifts = append(shifts, sh.ID)
	}

	type node struct {
		ID     string `json:"id"`
		Member struct {
			ID string `json:"id"`
		} `json:"member"`
		Shift struct {
			ID string `json:"id"`
		} `json:"shift"`
	}
	const pageFields = `edges { cursor node { id } } pageInfo { hasNextPage endCursor }`
	cases := []struct {
		name  string
		token string
		query string
		vars  map[string]any
		want  []string
		id    func(node) string
	}{
		{"jobActions", m.Token, `query($first: Int, $after: String) { list: jobActions(first: $first, after: $after) { ` + pageFields + ` } }`, nil, jobActions, func(n node) string { return n.ID }},
		{"JobAction.picketLines", m.Token, `query($ja: ID!, $first: Int, $after: String) { jobAction(id: $ja) { list: picketLines(first: $first, after: $after) { ` + pageFields + ` } } }`, map[string]any{"ja": ja.ID}, lines, func(n node) string { return n.ID }},
		{"Shift.signups", coordinator.Token, `query($sh: ID!, $first: Int, $after: String) { shift(id: $sh) { list: signups(first: $first, after: $after) { edges { cursor node { id member { id } } } pageInfo { hasNextPage endCursor } } } }`, map[string]any{"sh": crowded.ID}, signups, func(n node) string { return n.Member.ID }},
		{"PicketLine.shifts", m.Token, `query($l: ID!, $first: Int, $after: String) { picketLine(id: $l) { list: shifts(first: $first, after: $after) { ` + pageFields + ` } } }`, map[string]any{"l": line.ID}, append([]string{crowded.ID}, shifts...), func(n node) string { return n.ID }},
		{"myShifts", m.Token, `query($first: Int, $after: String) { list: myShifts(first: $first, after: $after) { edges { cursor node { id shift { id } } } pageInfo { hasNextPage endCursor } } }`, nil, shifts, func(n node) string { return n.Shift.ID }},
	}
	type answer struct {
		List      connection[node] `json:"list"`
		JobAction struct {
			List connection[node] `json:"list"`
		} `json:"jobAction"`
		Shift struct {
			List connection[node] `json:"list"`
		} `json:"shift"`
		PicketLine struct {
			List connection[node] `json:"list"`
		} `json:"picketLine"`
	}
	pick := func(a *answer) connection[node] {
		switch {
		case a.JobAction.List.Edges != nil:
			return a.JobAction.List
		case a.Shift.List.Edges != nil:
			return a.Shift.List
		case a.PicketLine.List.Edges != nil:
			return a.PicketLine.List
		}
		return a.List
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, n := range allPages(t, s, c.token, c.query, c.vars, 2, pick) {
				got = append(got, c.id(n))
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Fatalf("paged by two (-want +got):\n%s", diff)
			}
			vars := func(first int, after any) map[string]any {
				v := map[string]any{"first": first, "after": after}
				for k, x := range c.vars {
					v[k] = x
				}
				return v
			}
			var out answer
			s.do(t, c.token, c.query, vars(db.MaxPageSize, nil), &out)
			if p := pick(&out); len(p.Edges) != len(c.want) || p.PageInfo.HasNextPage {
				t.Fatalf("the largest page: %d items, more %v", len(p.Edges), p.PageInfo.HasNextPage)
			}
			for _, bad := range []struct {
				first int
				after any
				field string
			}{
				{db.MaxPageSize + 1, nil, "first"},
				{-1, nil, "first"},
				{1, "garbage!", "after"},
				{1, base64.RawURLEncoding.EncodeToString([]byte("2026-01-01T00:00:00Z|not-an-id")), "after"},
			} {
				r := s.gql(t, c.token, c.query, vars(bad.first, bad.after))
				if r.Code() != "BAD_USER_INPUT" || r.Errors[0].Extensions.Field != bad.field {
					t.Errorf("first %d after %v: got %s, want BAD_USER_INPUT on %s", bad.first, bad.after, r, bad.field)
				}
			}
		})
	}
}

// A line's captains are capped, and the refusal says so over HTTP.
func TestAssignCaptainPastTheCapIsAConflict(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	line := k.Line()
	for range db.MaxCaptainsPerLine {
		k.CaptainOf(line)
	}
	coordinator := s.addMember(t, db.RoleCoordinator)
	r := s.gql(t, coordinator.Token, `mutation($l: ID!, $m: ID!) { assignCaptain(picketLineId: $l, memberId: $m) { assignedAt } }`,
		map[string]any{"l": line.ID, "m": k.NewMember().MemberID})
	if r.Code() != "CONFLICT" || r.Errors[0].Extensions.Field != "picketLineId" {
		t.Fatalf("the captain past the cap: got %s, want CONFLICT on picketLineId", r)
	}
}
