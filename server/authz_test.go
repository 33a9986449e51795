package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/realtime"
)

// The callers of the authorization matrix.
type callerKind int

const (
	anonymous callerKind = iota
	plainMember
	signedUp       // holds a sign-up on the line the operation is about
	otherJobAction // holds a sign-up on a line of another job action
	captainHere    // captain of the line the operation is about
	captainThere   // captain of another line of the same job action
	coordinator
	admin
	numCallers
)

func (k callerKind) String() string {
	return [...]string{"anonymous", "member without a sign-up", "member signed up on the line", "member of another job action",
		"captain of this line", "captain of another line", "coordinator", "admin"}[k]
}

// outcome is what a caller gets: the field's value or null, or the code of
// the error that refused the operation.
type outcome string

const (
	data     outcome = "data"
	null     outcome = "null"
	unauth   outcome = "UNAUTHENTICATED"
	forbid   outcome = "FORBIDDEN"
	notFound outcome = "NOT_FOUND"
)

const (
	// noSuchID names nothing.
	noSuchID  = "00000000-0000-4000-8000-000000000000"
	authzBody = "Stay safe."
)

// Who may do what, in the order of callerKind: anonymous, member without a
// sign-up, member signed up on the line, member of another job action,
// captain here, captain there, coordinator, admin.
var (
	staffOnly   = [numCallers]outcome{unauth, forbid, forbid, forbid, forbid, forbid, data, data}
	lineManager = [numCallers]outcome{unauth, forbid, forbid, forbid, data, forbid, data, data}
	anyMember   = [numCallers]outcome{unauth, data, data, data, data, data, data, data}
	adminOnly   = [numCallers]outcome{unauth, forbid, forbid, forbid, forbid, forbid, forbid, data}
	everyone    = [numCallers]outcome{data, data, data, data, data, data, data, data}
	// Those taking part on the line: its captains, members signed up on
	// it, and coordinators.
	takingPart = [numCallers]outcome{unauth, null, data, null, data, null, data, data}
	// Nobody but coordinators, of a member who is none of the callers.
	staffSees = [numCallers]outcome{unauth, null, null, null, null, null, data, data}
)

// operation is one cell's request. probe picks the value the row is about
// out of the answer's data; nil means the root field.
type operation struct {
	query string
	vars  map[string]any
	probe func(d any) any
}

// authzRow is one row of the matrix: a field of the schema, or a contact
// field seen through via (a field that returns a member).
type authzRow struct {
	field string
	via   string
	// note tells rows of one field apart.
	note string
	want [numCallers]outcome
	// op makes the cell's operation for the caller (nil for anonymous); it
	// may set up what the operation needs first.
	op func(t *testing.T, caller *member) operation
}

func (r authzRow) name() string {
	n := r.field
	if r.via != "" {
		n += " via " + r.via
	}
	if r.note != "" {
		n += " (" + r.note + ")"
	}
	return n
}

// authzFixture is the world the matrix runs in: a job action with the line
// the operations are about, a second line with its own captain, a scratch
// line for operations that would change who takes part, another job
// action, and the callers.
type authzFixture struct {
	s       *testServer
	ja      *db.JobAction
	line    *db.PicketLine
	scratch *db.PicketLine
	callers [numCallers]*member
	// shift is on the line: the member signed up on the line holds a spot
	// on it, and so does the member of otherSignup, who is no caller.
	shift       *db.Shift
	otherSignup *db.Signup
	// coCaptain captains the line too and holds a spot on the second line,
	// whose captain may see their phone.
	coCaptain db.Actor
	// lineAnnouncement is the captain's on the line, posted after
	// lineCursor; jobActionAnnouncement is staff's to the job action.
	lineAnnouncement, jobActionAnnouncement *db.Announcement
	lineCursor                              string
	shifts                                  atomic.Int64
}

// freshShiftOn makes a shift on line that overlaps no other shift the
// fixture made.
func (f *authzFixture) freshShiftOn(t *testing.T, line *db.PicketLine) *db.Shift {
	n := f.shifts.Add(1)
	return f.s.kit(t).ShiftOn(line, 48*time.Hour+time.Duration(n)*5*time.Hour, 10)
}

// freshShift makes a shift on the line.
func (f *authzFixture) freshShift(t *testing.T) *db.Shift { return f.freshShiftOn(t, f.line) }

func newAuthzFixture(t *testing.T) *authzFixture {
	s := startServer(t, func(env map[string]string) {
		// The matrix is about who may, not how often: one member makes
		// dozens of mutations and sign-ins here.
		env["RATE_LIMIT_MEMBER_PER_MINUTE"] = "0"
		env["RATE_LIMIT_LOGIN_PER_ADDRESS_PER_HOUR"] = "1000"
		env["WS_MAX_UNAUTHENTICATED_PER_ADDRESS"] = "1000"
	})
	k := s.kit(t)
	f := &authzFixture{s: s}
	f.ja = k.JobAction()
	f.line = k.LineOf(f.ja)
	otherLine := k.LineOf(f.ja)
	f.scratch = k.LineOf(f.ja)
	elsewhere := k.LineOf(k.JobAction())

	f.shift = k.ShiftOn(f.line, 48*time.Hour, 10)
	f.callers[plainMember] = s.addMember(t, db.RoleMember)
	f.callers[signedUp] = s.addMember(t, db.RoleMember)
	k.SignUp(f.callers[signedUp].Actor(), f.shift)
	f.callers[otherJobAction] = s.addMember(t, db.RoleMember)
	k.SignUp(f.callers[otherJobAction].Actor(), k.ShiftOn(elsewhere, 48*time.Hour, 10))
	f.callers[captainHere] = s.captain(t, f.line)
	f.callers[captainThere] = s.captain(t, otherLine)
	f.callers[coordinator] = s.addMember(t, db.RoleCoordinator)
	f.callers[admin] = s.addMember(t, db.RoleAdmin)

	f.otherSignup = k.SignUp(k.NewMember(), f.shift)
	f.coCaptain = k.CaptainOf(f.line)
	k.SignUp(f.coCaptain, k.ShiftOn(otherLine, 48*time.Hour, 10))

	f.lineCursor = s.lineCursor(t, f.callers[coordinator].Token, f.line.ID)
	var err error
	if f.lineAnnouncement, err = k.Store.PostAnnouncement(k.Ctx, f.callers[captainHere].Actor(), db.NewAnnouncement{PicketLineID: &f.line.ID, Body: authzBody}); err != nil {
		t.Fatal(err)
	}
	if f.jobActionAnnouncement, err = k.Store.PostAnnouncement(k.Ctx, k.Staff, db.NewAnnouncement{JobActionID: &f.ja.ID, Body: authzBody}); err != nil {
		t.Fatal(err)
	}
	return f
}

// at walks decoded JSON data: a string steps into an object, a where picks
// the element of a list that holds a value. It is nil wherever the way
// ends early.
func at(v any, steps ...any) any {
	for _, step := range steps {
		switch step := step.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[step]
		case where:
			list, _ := v.([]any)
			v = nil
			for _, el := range list {
				if at(el, step.path...) == step.value {
					v = el
					break
				}
			}
		}
		if v == nil {
			return nil
		}
	}
	return v
}

// where picks the element of a list whose path holds value.
type where struct {
	path  []any
	value any
}

func whereID(id string, path ...any) where { return where{append(path, "id"), id} }

// probe picks a value out of data with at.
func probe(steps ...any) func(any) any { return func(d any) any { return at(d, steps...) } }

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	f := newAuthzFixture(t)
	s := f.s
	rows := authzRows(f)

	t.Run("every field of the schema has its row, and every row its field", func(t *testing.T) {
		for _, gap := range matrixGaps(s.introspect(t), rows) {
			t.Error(gap)
		}
	})

	for _, r := range rows {
		for k := range numCallers {
			t.Run(fmt.Sprintf("%s/%s", r.name(), k), func(t *testing.T) {
				t.Parallel()
				if strings.HasPrefix(r.field, "Subscription.") {
					f.subscribe(t, r, k)
				} else {
					f.request(t, r, k)
				}
			})
		}
	}
}

// request runs a cell over HTTP. Every call has a session of its own, so
// logout ends nothing else.
func (f *authzFixture) request(t *testing.T, r authzRow, k callerKind) {
	token := ""
	caller := f.callers[k]
	if caller != nil {
		token = f.s.mintToken(t, caller.ID)
	}
	op := r.op(t, caller)
	resp := f.s.gql(t, token, op.query, op.vars)
	want := r.want[k]
	if len(resp.Errors) > 0 {
		switch {
		case outcome(resp.Code()) != want:
			t.Fatalf("%s as %s: got %s, want %s", r.name(), k, resp, want)
		case !resp.NoData():
			t.Fatalf("%s as %s: got %s, want no data with the error", r.name(), k, resp)
		case resp.Status != 200:
			// Refusals are GraphQL errors, not HTTP ones: a request
			// without a token is not a bad token.
			t.Fatalf("%s as %s: HTTP %d, want 200 with an error", r.name(), k, resp.Status)
		}
		return
	}
	if resp.Status != 200 || !resp.HasData() {
		t.Fatalf("%s as %s: got %s, want %s", r.name(), k, resp, want)
	}
	var d any
	if err := json.Unmarshal(resp.Data, &d); err != nil {
		t.Fatal(err)
	}
	pick := op.probe
	if pick == nil {
		_, root, _ := strings.Cut(r.field, ".")
		pick = probe(root)
	}
	got := null
	if pick(d) != nil {
		got = data
	}
	if got != want {
		t.Fatalf("%s as %s: got %s (%s), want %s", r.name(), k, got, resp.Data, want)
	}
}

// subscribe runs a cell over a websocket: a subscription allowed delivers
// the event it replays; a refused one gets an error for its id and no
// data; a socket without a token is closed 4403 before it can subscribe
// at all.
func (f *authzFixture) subscribe(t *testing.T, r authzRow, k callerKind) {
	ws := f.s.dialWS(t, nil)
	caller := f.callers[k]
	if caller == nil {
		if r.want[k] != unauth {
			t.Fatalf("%s: want %s for a caller who cannot open a socket", r.name(), r.want[k])
		}
		payload, _ := json.Marshal(map[string]string{})
		ws.send(wsMsg{Type: "connection_init", Payload: payload})
		ws.expectClose(realtime.CloseForbidden)
		return
	}
	ws.init(f.s.mintToken(t, caller.ID))
	op := r.op(t, caller)
	ws.subscribe("1", op.query, op.vars)
	m := ws.next()
	got := outcome(m.Type)
	switch m.Type {
	case "next":
		// The resolver's refusal comes as the subscription's one result,
		// an error without data, and then its end.
		var body struct {
			Data   json.RawMessage `json:"data"`
			Errors []gqlError      `json:"errors"`
		}
		if err := json.Unmarshal(m.Payload, &body); err != nil {
			t.Fatalf("%s as %s: next %s: %v", r.name(), k, m.Payload, err)
		}
		got = data
		if len(body.Errors) > 0 {
			got = outcome(body.Errors[0].Extensions.Code)
			if d := strings.TrimSpace(string(body.Data)); d != "" && d != "null" {
				t.Fatalf("%s as %s: got data with the error: %s", r.name(), k, m.Payload)
			}
		}
	case "error":
		// Refused before it ran (validation, the cost limits).
		var errs []gqlError
		if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 {
			t.Fatalf("%s as %s: error %s", r.name(), k, m.Payload)
		}
		got = outcome(errs[0].Extensions.Code)
	}
	if m.ID != "1" || got != r.want[k] {
		t.Fatalf("%s as %s: got %s for %q: %s, want %s", r.name(), k, m.Type, m.ID, m.Payload, r.want[k])
	}
}

// Roles are read on every request: a coordinator who is made a member
// loses the coordinator's powers at once, with the same token.
func TestRoleChangesTakeEffectAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.addMember(t, db.RoleCoordinator)
	create := `mutation { createJobAction(input: {name: "Strike", kind: STRIKE, employer: "E", startsAt: "2026-01-01T00:00:00Z"}) { id } }`
	s.do(t, c.Token, create, nil, nil)
	s.sql(t, `UPDATE members SET role = 'MEMBER' WHERE id = $1`, c.ID)
	s.fails(t, c.Token, create, nil, "FORBIDDEN")
	var me struct{ Me memberJSON }
	s.do(t, c.Token, `{ me { id role } }`, nil, &me)
	if me.Me.Role != "MEMBER" {
		t.Fatalf("me.role = %s after the change, want MEMBER", me.Me.Role)
	}
}
