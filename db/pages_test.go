package db_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// pagedList is one list that pages, read as the ids of a page, the cursor
// of its last item and whether more follow.
type pagedList func(q db.PageQuery) (ids []string, end string, more bool, err error)

func pageIDs[T any](page *db.Page[T], err error, id, cursor func(T) string) ([]string, string, bool, error) {
	if err != nil {
		return nil, "", false, err
	}
	ids := []string{}
	end := ""
	for _, item := range page.Items {
		ids = append(ids, id(item))
		end = cursor(item)
	}
	return ids, end, page.HasNextPage, nil
}

func jobActionID(j *db.JobAction) string  { return j.ID }
func lineID(l *db.PicketLine) string      { return l.ID }
func signupShiftID(su *db.Signup) string  { return su.ShiftID }
func signupMemberID(su *db.Signup) string { return su.MemberID }

// pagedCase is a list and the ids it should give, in order.
type pagedCase struct {
	list pagedList
	want []string
}

// pagedLists builds each list that pages with seven or eight items in a
// known order, ties included, and returns it with that order.
func pagedLists(t *testing.T, b *dbtest.Bundle) map[string]pagedCase {
	t.Helper()
	out := map[string]pagedCase{}

	// Job actions, newest start first; the kit's start at the clock's now,
	// so three share one start and go by id.
	var (
		jobActions []*db.JobAction
		tied       []string
	)
	for i := range 4 {
		ja, err := b.Store.CreateJobAction(b.Ctx, b.Staff, db.NewJobAction{Name: "Strike", Kind: db.KindStrike, Employer: "Employer", StartsAt: b.Clock.Now().Add(time.Duration(i+1) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		jobActions = append(jobActions, ja)
	}
	for range 3 {
		tied = append(tied, b.JobAction().ID)
	}
	slices.Sort(tied)
	out["jobActions"] = pagedCase{func(q db.PageQuery) ([]string, string, bool, error) {
		page, err := b.Store.JobActions(b.Ctx, b.Staff, q)
		return pageIDs(page, err, jobActionID, db.JobActionCursor)
	}, append([]string{jobActions[3].ID, jobActions[2].ID, jobActions[1].ID, jobActions[0].ID}, tied...)}

	// Lines by name, a shared name by id; a name may hold the cursor's
	// separator.
	ja := jobActions[0]
	names := []string{"Echo", "Bravo", "Alpha | North", "Delta", "Bravo", "Charlie", "Foxtrot"}
	byName := map[string][]string{}
	for _, name := range names {
		l, err := b.Store.CreatePicketLine(b.Ctx, b.Staff, db.NewPicketLine{JobActionID: ja.ID, Name: name, Address: "1 Main St", Latitude: 53.5, Longitude: -113.5})
		if err != nil {
			t.Fatal(err)
		}
		byName[name] = append(byName[name], l.ID)
	}
	var lines []string
	for _, name := range []string{"Alpha | North", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"} {
		ids := byName[name]
		slices.Sort(ids)
		lines = append(lines, ids...)
	}
	out["picketLines"] = pagedCase{func(q db.PageQuery) ([]string, string, bool, error) {
		page, err := b.Store.PicketLinesOfJobAction(b.Ctx, b.Staff, ja.ID, q)
		return pageIDs(page, err, lineID, db.PicketLineCursor)
	}, lines}

	// Sign-ups of a shift: the three holding a spot by when they signed
	// up, then the waitlist in order. On another job action, so that
	// the lines above stay the only ones of theirs.
	line := b.LineOf(jobActions[1])
	sh := b.ShiftOn(line, 24*time.Hour, 3)
	var signups []string
	for range 7 {
		b.Clock.Advance(time.Minute)
		signups = append(signups, b.SignUp(b.NewMember(), sh).MemberID)
	}
	out["Shift.signups"] = pagedCase{func(q db.PageQuery) ([]string, string, bool, error) {
		page, err := b.Store.ShiftSignups(b.Ctx, b.Staff, sh.ID, q)
		return pageIDs(page, err, signupMemberID, db.ShiftSignupCursor)
	}, signups}

	// A member's shifts, soonest first, signed up for in another order.
	m := b.NewMember()
	var mine []*db.Shift
	for _, in := range []int{60, 30, 90, 40, 80, 50, 70} {
		sh := b.ShiftOn(line, time.Duration(in)*time.Hour, 1)
		b.SignUp(m, sh)
		mine = append(mine, sh)
	}
	slices.SortFunc(mine, func(a, b *db.Shift) int { return a.StartsAt.Compare(b.StartsAt) })
	out["myShifts"] = pagedCase{func(q db.PageQuery) ([]string, string, bool, error) {
		page, err := b.Store.MyShifts(b.Ctx, m, q)
		return pageIDs(page, err, signupShiftID, db.MyShiftCursor)
	}, ids(mine)}

	// The line's shifts, soonest first: the crowded one, then the member's.
	out["PicketLine.shifts"] = pagedCase{func(q db.PageQuery) ([]string, string, bool, error) {
		page, err := b.Store.ShiftsOfLine(b.Ctx, b.Staff, line.ID, nil, nil, q)
		return pageIDs(page, err, func(sh *db.Shift) string { return sh.ID }, db.ShiftCursor)
	}, append([]string{sh.ID}, ids(mine)...)}

	// Open shifts: none are open, as every one is full; only the refusals
	// are tested.
	out["openShifts"] = pagedCase{func(q db.PageQuery) ([]string, string, bool, error) {
		page, err := b.Store.OpenShifts(b.Ctx, b.NewMember(), db.OpenShiftsQuery{PageQuery: q})
		return pageIDs(page, err, func(sh *db.Shift) string { return sh.ID }, db.ShiftCursor)
	}, nil}
	return out
}

func TestListsPageInTheirOrderWithCursors(t *testing.T) {
	b := setup(t)
	for name, c := range pagedLists(t, b) {
		if c.want == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			all, _, more, err := c.list(db.PageQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, all); diff != "" || more {
				t.Fatalf("one page (more %v) (-want +got):\n%s", more, diff)
			}
			var got []string
			after := ""
			for pages := 1; ; pages++ {
				ids, end, more, err := c.list(db.PageQuery{First: 3, After: after})
				if err != nil {
					t.Fatal(err)
				}
				if want := min(3, len(c.want)-len(got)); len(ids) != want {
					t.Fatalf("page %d has %d items, want %d", pages, len(ids), want)
				}
				got = append(got, ids...)
				if !more {
					break
				}
				if pages > len(c.want) {
					t.Fatal("paging does not end")
				}
				after = end
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Fatalf("paged by three (-want +got):\n%s", diff)
			}
			// The last item's cursor gives an empty last page.
			_, end, _, err := c.list(db.PageQuery{First: len(c.want)})
			if err != nil {
				t.Fatal(err)
			}
			if ids, _, more, err := c.list(db.PageQuery{After: end}); err != nil || len(ids) != 0 || more {
				t.Fatalf("after the last item: %v, more %v, err %v", ids, more, err)
			}
		})
	}
}

// Every list refuses a page over the largest, and a cursor it did not
// make, as the client's mistake naming the argument.
func TestListsRefuseBadPagesAndCursors(t *testing.T) {
	b := setup(t)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	id := "0b9a4b7e-6a8c-4f7e-9d2b-3c1e5f6a7b8c"
	for name, c := range pagedLists(t, b) {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := c.list(db.PageQuery{First: db.MaxPageSize}); err != nil {
				t.Fatalf("first %d: %v", db.MaxPageSize, err)
			}
			for _, first := range []int{db.MaxPageSize + 1, -1} {
				_, _, _, err := c.list(db.PageQuery{First: first})
				if e := dbtest.WantCode(t, err, db.CodeBadUserInput); e != nil && e.Field != "first" {
					t.Errorf("first %d: field %q, want first", first, e.Field)
				}
			}
			for _, after := range []string{
				"garbage!", enc("no separator"), enc("2026-01-01T00:00:00Z|not-an-id"),
				enc("not a time|" + id), enc("x\x00|" + id), enc("\xff|" + id), enc("-1|2026-01-01T00:00:00Z|" + id),
				strings.Repeat("A", db.MaxCursorLength+1),
			} {
				_, _, _, err := c.list(db.PageQuery{After: after})
				if name == "picketLines" && (after == enc("not a time|"+id) || after == enc("-1|2026-01-01T00:00:00Z|"+id)) {
					// A line's cursor holds a name, which may read so.
					continue
				}
				if e := dbtest.WantCode(t, err, db.CodeBadUserInput); e != nil && e.Field != "after" {
					t.Errorf("after %q: field %q, want after", after, e.Field)
				}
			}
		})
	}
}

func TestListsPageAtTheDefaultSizeUnlessAsked(t *testing.T) {
	b := setup(t)
	for range db.DefaultPageSize + 1 {
		b.JobAction()
	}
	page, err := b.Store.JobActions(b.Ctx, b.Staff, db.PageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != db.DefaultPageSize || !page.HasNextPage {
		t.Fatalf("default page: %d items, more %v; want %d and more", len(page.Items), page.HasNextPage, db.DefaultPageSize)
	}
	page, err = b.Store.JobActions(b.Ctx, b.Staff, db.PageQuery{First: db.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != db.DefaultPageSize+1 || page.HasNextPage {
		t.Fatalf("largest page: %d items, more %v; want %d and no more", len(page.Items), page.HasNextPage, db.DefaultPageSize+1)
	}
}

// A sign-up that leaves the list between two pages does not disturb the
// next page: the cursor holds its place, not its row.
func TestShiftSignupsPageAcrossACancellation(t *testing.T) {
	b := setup(t)
	sh := b.Shift(2)
	var members []db.Actor
	var signups []*db.Signup
	for range 5 {
		b.Clock.Advance(time.Minute)
		m := b.NewMember()
		members = append(members, m)
		signups = append(signups, b.SignUp(m, sh))
	}
	page, err := b.Store.ShiftSignups(b.Ctx, b.Staff, sh.ID, db.PageQuery{First: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The third, first on the waitlist, leaves.
	if _, err := b.Store.CancelSignup(b.Ctx, members[2], signups[2].ID); err != nil {
		t.Fatal(err)
	}
	next, err := b.Store.ShiftSignups(b.Ctx, b.Staff, sh.ID, db.PageQuery{After: db.ShiftSignupCursor(page.Items[2])})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, su := range next.Items {
		got = append(got, su.MemberID)
	}
	if diff := cmp.Diff([]string{members[3].MemberID, members[4].MemberID}, got); diff != "" {
		t.Fatalf("the page after the cancelled one (-want +got):\n%s", diff)
	}
}

func TestALineTakesAtMostMaxCaptains(t *testing.T) {
	b := setup(t)
	line := b.Line()
	var captains []db.Actor
	for range db.MaxCaptainsPerLine - 1 {
		captains = append(captains, b.CaptainOf(line))
	}
	// Ten race for the last place: one takes it.
	const racing = 10
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		won      int
		refusals []error
	)
	contenders := make([]db.Actor, racing)
	for i := range contenders {
		contenders[i] = b.NewMember()
	}
	for _, m := range contenders {
		wg.Go(func() {
			_, err := b.Store.AssignCaptain(b.Ctx, b.Staff, line.ID, m.MemberID)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else {
				refusals = append(refusals, err)
			}
		})
	}
	wg.Wait()
	if won != 1 || len(refusals) != racing-1 {
		t.Fatalf("%d of %d took the last place, refusals %v", won, racing, refusals)
	}
	for _, err := range refusals {
		if e := dbtest.WantCode(t, err, db.CodeConflict); e != nil && e.Field != "picketLineId" {
			t.Errorf("refusal names %q, want picketLineId", e.Field)
		}
	}
	list, err := b.Store.CaptainsOfLine(b.Ctx, b.Staff, line.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != db.MaxCaptainsPerLine {
		t.Fatalf("%d captains, want %d", len(list), db.MaxCaptainsPerLine)
	}
	// At the cap, assigning a captain again still answers, and a removal
	// makes room.
	if _, err := b.Store.AssignCaptain(b.Ctx, b.Staff, line.ID, captains[0].MemberID); err != nil {
		t.Fatalf("assigning a captain again at the cap: %v", err)
	}
	if _, err := b.Store.RemoveCaptain(b.Ctx, b.Staff, line.ID, captains[0].MemberID); err != nil {
		t.Fatal(err)
	}
	b.MakeCaptain(b.NewMember(), line)
	// Another line has room of its own.
	b.CaptainOf(b.Line())
}

// An assignment that waits behind another one in flight for the last
// place counts the captains after that one commits, so it is refused
// rather than making 51.
func TestACaptainWaitingForTheLastPlaceCountsAfterTheOneInFlight(t *testing.T) {
	b := setup(t)
	line := b.Line()
	for range db.MaxCaptainsPerLine - 1 {
		b.CaptainOf(line)
	}
	// The assignment in flight, as AssignCaptain makes it: the line's row
	// locked, the last captain written, not yet committed.
	inFlight, err := b.Pool.Begin(b.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer inFlight.Rollback(b.Ctx)
	if _, err := inFlight.Exec(b.Ctx, `SELECT 1 FROM picket_lines WHERE id = $1 FOR UPDATE`, line.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := inFlight.Exec(b.Ctx, `INSERT INTO captains (picket_line_id, member_id) VALUES ($1, $2)`, line.ID, b.NewMember().MemberID); err != nil {
		t.Fatal(err)
	}
	waiting := b.NewMember()
	done := make(chan error, 1)
	go func() {
		_, err := b.Store.AssignCaptain(b.Ctx, b.Staff, line.ID, waiting.MemberID)
		done <- err
	}()
	b.WaitForLockWait()
	if err := inFlight.Commit(b.Ctx); err != nil {
		t.Fatal(err)
	}
	dbtest.WantCode(t, <-done, db.CodeConflict)
	list, err := b.Store.CaptainsOfLine(b.Ctx, b.Staff, line.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != db.MaxCaptainsPerLine {
		t.Fatalf("%d captains, want %d", len(list), db.MaxCaptainsPerLine)
	}
}

// A cap lowered after members registered more devices bounds what
// myDevices lists at once, as the cost of the field assumes.
func TestMyDevicesNeverListsMoreThanTheCap(t *testing.T) {
	b := setup(t)
	a := signedIn(b)
	for i := range 5 {
		b.Clock.Advance(time.Minute)
		if _, err := b.Store.RegisterDevice(b.Ctx, a, fmt.Sprintf("phone-%d", i), db.PlatformIOS); err != nil {
			t.Fatal(err)
		}
	}
	l := b.Store.Limits()
	l.DevicesPerMember = 3
	b.Store.SetLimits(l)
	devices, err := b.Store.MyDevices(b.Ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range devices {
		got = append(got, d.Token)
	}
	if diff := cmp.Diff([]string{"phone-4", "phone-3", "phone-2"}, got); diff != "" {
		t.Fatalf("devices under a cap of 3 (-want +got):\n%s", diff)
	}
}
