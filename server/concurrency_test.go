package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
)

func TestConcurrentSignupsFillTheShiftExactly(t *testing.T) {
	t.Parallel()
	const (
		members  = 200
		capacity = 10
	)
	s := startServer(t)
	k := s.kit(t)
	staff := s.addMember(t, db.RoleCoordinator)
	sh := k.ShiftOn(k.Line(), 48*time.Hour, capacity)
	crowd := make([]*member, members)
	for i := range crowd {
		crowd[i] = s.addMember(t, db.RoleMember)
	}

	// Every member taps at once.
	type answer struct {
		signup signupJSON
		err    string
	}
	answers := make([]answer, members)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range crowd {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]any{
				"query":     `mutation($s: ID!) { signUpForShift(shiftId: $s) { id status waitlistPosition member { id } } }`,
				"variables": map[string]any{"s": sh.ID},
			})
			<-start
			r, err := s.tryPost(m.Token, "application/json", body)
			if err != nil {
				answers[i].err = err.Error()
				return
			}
			if r.Status != 200 || len(r.Errors) > 0 {
				answers[i].err = r.String()
				return
			}
			var out struct{ SignUpForShift signupJSON }
			if err := json.Unmarshal(r.Data, &out); err != nil {
				answers[i].err = err.Error()
				return
			}
			answers[i].signup = out.SignUpForShift
		}()
	}
	close(start)
	wg.Wait()
	for i, a := range answers {
		if a.err != "" {
			t.Fatalf("member %d: %s", i, a.err)
		}
	}
	// Who stands where on the waitlist, and who holds a spot, by the answers.
	byPosition := map[int]string{}
	signupOf := map[string]string{}
	var holder *member
	for i, a := range answers {
		signupOf[crowd[i].ID] = a.signup.ID
		if a.signup.Status == "WAITLISTED" && a.signup.WaitlistPosition != nil {
			byPosition[*a.signup.WaitlistPosition] = crowd[i].ID
		}
		if a.signup.Status == "SIGNED_UP" && holder == nil {
			holder = crowd[i]
		}
	}
	shiftQuery := `query($id: ID!) { shift(id: $id) { signedUpCount spotsLeft waitlistCount } }`
	signupsQuery := `query($id: ID!, $first: Int, $after: String) { shift(id: $id) { signups(first: $first, after: $after) { edges { cursor node { id status waitlistPosition member { id } } } pageInfo { hasNextPage endCursor } } } }`
	tokenOf := map[string]string{}
	for _, m := range crowd {
		tokenOf[m.ID] = m.Token
	}
	mineQuery := `query($id: ID!) { shift(id: $id) { mySignup { id status waitlistPosition } } }`

	t.Run("the capacity is signed up and the rest waitlisted 1 to n", func(t *testing.T) {
		signedUp := 0
		var positions []int
		for i, a := range answers {
			if a.signup.Member.ID != crowd[i].ID {
				t.Fatalf("member %d got the sign-up of %s", i, a.signup.Member.ID)
			}
			switch a.signup.Status {
			case "SIGNED_UP":
				signedUp++
				if a.signup.WaitlistPosition != nil {
					t.Fatalf("a SIGNED_UP answer has waitlist position %d", *a.signup.WaitlistPosition)
				}
			case "WAITLISTED":
				if a.signup.WaitlistPosition == nil {
					t.Fatalf("a WAITLISTED answer has no position")
				}
				positions = append(positions, *a.signup.WaitlistPosition)
			default:
				t.Fatalf("member %d: status %s", i, a.signup.Status)
			}
		}
		if signedUp != capacity || len(positions) != members-capacity {
			t.Fatalf("%d SIGNED_UP and %d WAITLISTED, want %d and %d", signedUp, len(positions), capacity, members-capacity)
		}
		sort.Ints(positions)
		for i, p := range positions {
			if p != i+1 {
				t.Fatalf("waitlist positions %v, want each of 1..%d once", positions, members-capacity)
			}
		}
	})

	t.Run("the shift's counts and list agree with the answers", func(t *testing.T) {
		var q struct{ Shift shiftJSON }
		s.do(t, staff.Token, shiftQuery, map[string]any{"id": sh.ID}, &q)
		if q.Shift.SignedUpCount != capacity || q.Shift.SpotsLeft != 0 || q.Shift.WaitlistCount != members-capacity {
			t.Fatalf("shift counts %d signed up, %d left, %d waiting; want %d, 0, %d",
				q.Shift.SignedUpCount, q.Shift.SpotsLeft, q.Shift.WaitlistCount, capacity, members-capacity)
		}
		// The spots first, then the waitlist in the order the answers gave.
		list := allPages(t, s, staff.Token, signupsQuery, map[string]any{"id": sh.ID}, db.MaxPageSize, func(q *struct{ Shift shiftJSON }) connection[signupJSON] { return q.Shift.Signups })
		if len(list) != members {
			t.Fatalf("shift lists %d sign-ups, want %d", len(list), members)
		}
		for i, su := range list {
			if i < capacity {
				if su.Status != "SIGNED_UP" {
					t.Fatalf("sign-up %d of the list is %s, want SIGNED_UP first", i, su.Status)
				}
				continue
			}
			pos := i - capacity + 1
			if su.Status != "WAITLISTED" || su.WaitlistPosition == nil || *su.WaitlistPosition != pos || byPosition[pos] != su.Member.ID {
				t.Fatalf("sign-up %d of the list = %+v, want %s at position %d", i, su, byPosition[pos], pos)
			}
		}
	})

	if !t.Run("a cancellation promotes the head of the waitlist and moves everyone up", func(t *testing.T) {
		if holder == nil {
			t.Fatal("nobody holds a spot")
		}
		s.do(t, holder.Token, `mutation($id: ID!) { cancelSignup(signupId: $id) { id } }`, map[string]any{"id": signupOf[holder.ID]}, nil)
		for pos, want := range map[int]struct {
			status   string
			position int
		}{1: {"SIGNED_UP", 0}, 2: {"WAITLISTED", 1}, members - capacity: {"WAITLISTED", members - capacity - 1}} {
			var mine struct{ Shift shiftJSON }
			s.do(t, tokenOf[byPosition[pos]], mineQuery, map[string]any{"id": sh.ID}, &mine)
			got := mine.Shift.MySignup
			gotPos := 0
			if got != nil && got.WaitlistPosition != nil {
				gotPos = *got.WaitlistPosition
			}
			if got == nil || got.Status != want.status || gotPos != want.position {
				t.Errorf("the member who was %d on the waitlist has %+v, want %s %d", pos, got, want.status, want.position)
			}
		}
		var q struct{ Shift shiftJSON }
		s.do(t, staff.Token, shiftQuery, map[string]any{"id": sh.ID}, &q)
		if q.Shift.SignedUpCount != capacity || q.Shift.WaitlistCount != members-capacity-1 {
			t.Fatalf("%d signed up, %d waiting; want %d and %d", q.Shift.SignedUpCount, q.Shift.WaitlistCount, capacity, members-capacity-1)
		}
	}) {
		// The next rule counts from the waitlist as the cancellation left it.
		t.FailNow()
	}

	t.Run("raising the capacity promotes the next in line, in order", func(t *testing.T) {
		var up struct{ UpdateShift shiftJSON }
		s.do(t, staff.Token, `mutation($id: ID!) { updateShift(input: {id: $id, capacity: 12}) { signedUpCount spotsLeft waitlistCount } }`, map[string]any{"id": sh.ID}, &up)
		if u := up.UpdateShift; u.SignedUpCount != capacity+2 || u.SpotsLeft != 0 || u.WaitlistCount != members-capacity-3 {
			t.Fatalf("after raising the capacity by 2: %+v", u)
		}
		for pos, want := range map[int]string{2: "SIGNED_UP", 3: "SIGNED_UP", 4: "WAITLISTED"} {
			var mine struct{ Shift shiftJSON }
			s.do(t, tokenOf[byPosition[pos]], mineQuery, map[string]any{"id": sh.ID}, &mine)
			if got := mine.Shift.MySignup; got == nil || got.Status != want || (want == "WAITLISTED" && *got.WaitlistPosition != 1) {
				t.Errorf("the member who was %d on the waitlist has %+v, want %s", pos, got, want)
			}
		}
	})
}

// A phone that retries a sign-up while the first request is still in
// flight must get the first answer, not an error: the contract makes
// signUpForShift safe to retry.
func TestConcurrentRetriesOfASignupGetOneAnswer(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	k := s.kit(t)
	staff := s.addMember(t, db.RoleCoordinator)
	line := k.Line()
	for round, key := range []any{"retry-key", nil, "another-key", nil} {
		name := fmt.Sprintf("with key %v", key)
		if key == nil {
			name = "without a key"
		}
		t.Run(name, func(t *testing.T) {
			sh := s.kit(t).ShiftOn(line, time.Duration(48+round*5)*time.Hour, 5)
			m := s.addMember(t, db.RoleMember)
			body, _ := json.Marshal(map[string]any{"query": signUpMutation, "variables": map[string]any{"s": sh.ID, "k": key}})
			const retries = 8
			answers := make([]string, retries)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range retries {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := s.tryPost(m.Token, "application/json", body)
					if err != nil {
						answers[i] = err.Error()
						return
					}
					answers[i] = string(r.Body)
				}()
			}
			close(start)
			wg.Wait()
			for _, a := range answers {
				if a != answers[0] || !strings.Contains(a, `"status":"SIGNED_UP"`) {
					t.Fatalf("%d simultaneous tries answered differently:\n%s", retries, strings.Join(answers, "\n"))
				}
			}
			var q struct{ Shift shiftJSON }
			s.do(t, staff.Token, `query($id: ID!) { shift(id: $id) { signedUpCount } }`, map[string]any{"id": sh.ID}, &q)
			if q.Shift.SignedUpCount != 1 {
				t.Fatalf("%d simultaneous tries signed up %d times, want once", retries, q.Shift.SignedUpCount)
			}
		})
	}
}
