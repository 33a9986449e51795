package db_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// systemUseCases calls each use-case that runs as db.System, as actor, with
// arguments the system's call is meant to succeed with.
func systemUseCases(t *testing.T, b *dbtest.Bundle) map[string]func(actor db.Actor) error {
	t.Helper()
	m := b.Member(db.RoleMember)
	line := b.Line()
	sess, err := b.Store.StartSession(b.Ctx, db.System, m.ID)
	if err != nil {
		t.Fatalf("start session: %v", err)
	}
	added := 0
	mutations := db.NewMutationLimiter(b.Store, 10)
	return map[string]func(db.Actor) error{
		"AddMember": func(a db.Actor) error {
			added++
			_, err := b.Store.AddMember(b.Ctx, a, db.NewMember{Name: "Operator's Pick", Email: "added" + strconv.Itoa(added) + "@example.org"})
			return err
		},
		"MemberByEmail": func(a db.Actor) error {
			_, err := b.Store.MemberByEmail(b.Ctx, a, m.Email)
			return err
		},
		"StartSession": func(a db.Actor) error {
			_, err := b.Store.StartSession(b.Ctx, a, m.ID)
			return err
		},
		"StartSessionsByEmail": func(a db.Actor) error {
			_, err := b.Store.StartSessionsByEmail(b.Ctx, a, []string{m.Email})
			return err
		},
		"SessionActor": func(a db.Actor) error {
			_, err := b.Store.SessionActor(b.Ctx, a, sess.ID, m.ID)
			return err
		},
		"Standings": func(a db.Actor) error {
			_, err := b.Store.Standings(b.Ctx, a, []db.Watch{{SessionID: sess.ID, MemberID: m.ID, LineID: line.ID}})
			return err
		},
		"AdmitSession": func(a db.Actor) error {
			_, _, err := b.Store.AdmitSession(b.Ctx, a, sess.ID, m.ID, "00000000-0000-4000-8000-000000000001")
			return err
		},
		"RightsChangedSince": func(a db.Actor) error {
			_, _, err := b.Store.RightsChangedSince(b.Ctx, a, b.Clock.Now())
			return err
		},
		"SetMemberRoleByEmail": func(a db.Actor) error {
			_, err := b.Store.SetMemberRoleByEmail(b.Ctx, a, m.Email, db.RoleMember)
			return err
		},
		"FanOutAnnouncements": func(a db.Actor) error {
			_, err := b.Store.FanOutAnnouncements(b.Ctx, a)
			return err
		},
		"LineEventsAfter": func(a db.Actor) error {
			_, err := b.Store.LineEventsAfter(b.Ctx, a, []db.LineRead{{LineID: line.ID}}, 10)
			return err
		},
		"MemberEventsAfter": func(a db.Actor) error {
			_, err := b.Store.MemberEventsAfter(b.Ctx, a, map[string]int64{m.ID: 0}, 10)
			return err
		},
		"HasJobActions": func(a db.Actor) error {
			_, err := b.Store.HasJobActions(b.Ctx, a)
			return err
		},
		"ScheduleReminders": func(a db.Actor) error {
			_, err := b.Store.ScheduleReminders(b.Ctx, a)
			return err
		},
		"ClaimPush": func(a db.Actor) error {
			_, _, err := b.Store.ClaimPush(b.Ctx, a, 10, time.Minute, nil)
			return err
		},
		"RecordPush": func(a db.Actor) error {
			return b.Store.RecordPush(b.Ctx, a, []db.PushOutcome{{ID: 1, Result: db.PushDelivered}}, 5)
		},
		"DropDevice": func(a db.Actor) error {
			return b.Store.DropDevice(b.Ctx, a, "a token FCM refused")
		},
		"PurgeStaleDevices": func(a db.Actor) error {
			_, err := b.Store.PurgeStaleDevices(b.Ctx, a)
			return err
		},
		"PushCounts": func(a db.Actor) error {
			_, err := b.Store.PushCounts(b.Ctx, a)
			return err
		},
		"PushBacklog": func(a db.Actor) error {
			_, err := b.Store.PushBacklog(b.Ctx, a)
			return err
		},
		"ResolveLoginRequests": func(a db.Actor) error {
			_, err := b.Store.ResolveLoginRequests(b.Ctx, a, 10)
			return err
		},
		"ClaimLoginEmails": func(a db.Actor) error {
			_, err := b.Store.ClaimLoginEmails(b.Ctx, a, 10, time.Minute, 5)
			return err
		},
		"RecordLoginEmail": func(a db.Actor) error {
			_, err := b.Store.RecordLoginEmail(b.Ctx, a, db.LoginEmailOutcome{ID: 1, Result: db.LoginEmailDelivered}, 5)
			return err
		},
		"FlushMutationCounts": func(a db.Actor) error {
			if err := mutations.Admit(b.Actor(m), 1); err != nil {
				return err
			}
			_, err := mutations.FlushMutationCounts(b.Ctx, a)
			return err
		},
		"RefreshConnections": func(a db.Actor) error {
			return b.Store.RefreshConnections(b.Ctx, a, []db.ConnectionID{{1}})
		},
		"EndConnections": func(a db.Actor) error {
			return b.Store.EndConnections(b.Ctx, a, []db.ConnectionID{{1}})
		},
		"EndReplicaConnections": func(a db.Actor) error {
			return b.Store.EndReplicaConnections(b.Ctx, a, "00000000-0000-4000-8000-000000000001")
		},
		"Purge": func(a db.Actor) error {
			_, err := b.Store.Purge(b.Ctx, a, db.Retention{Events: 24 * time.Hour})
			return err
		},
	}
}

func TestSystemUseCasesRefuseEveryoneElse(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	member := b.Member(db.RoleMember)
	posing := b.Actor(member)
	posing.Role = db.RoleSystem
	others := []struct {
		name  string
		actor db.Actor
	}{
		{"anonymous", db.Actor{}},
		{"member", b.Actor(member)},
		{"captain", b.CaptainOf(b.Line())},
		{"coordinator", b.Staff},
		{"admin", b.Actor(b.Member(db.RoleAdmin))},
		// A member's id with the system's role, which no token can carry.
		{"member in the system's role", posing},
	}
	refusals := []db.Code{db.CodeUnauthenticated, db.CodeForbidden}
	useCases := systemUseCases(t, b)
	names := slices.Sorted(maps.Keys(useCases))
	if diff := cmp.Diff(slices.Sorted(maps.Keys(systemFuncs(t))), names); diff != "" {
		t.Errorf("use-cases requiring the system, in the source (-) and called here (+):\n%s", diff)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, who := range others {
				t.Run(who.name, func(t *testing.T) {
					dbtest.WantCode(t, useCases[name](who.actor), db.CodeForbidden)
				})
			}
			// Whether the work then succeeds is each use-case's own test.
			if err := useCases[name](db.System); slices.Contains(refusals, db.ErrorCode(err)) {
				t.Errorf("the system is refused: %v", err)
			}
		})
	}
}

func TestMemberUseCasesRefuseTheSystem(t *testing.T) {
	t.Parallel()
	b := dbtest.Setup(t)
	sh := b.Shift(2)
	refusals := []db.Code{db.CodeUnauthenticated, db.CodeForbidden}
	for name, call := range map[string]func() error{
		"SignUpForShift": func() error {
			_, err := b.Store.SignUpForShift(b.Ctx, db.System, sh.ID, "")
			return err
		},
		"Me": func() error {
			_, err := b.Store.Me(b.Ctx, db.System)
			return err
		},
		"MyShifts": func() error {
			_, err := b.Store.MyShifts(b.Ctx, db.System, db.PageQuery{})
			return err
		},
		"WatchLine": func() error {
			_, err := b.Store.WatchLine(b.Ctx, db.System, sh.PicketLineID)
			return err
		},
		"RegisterDevice": func() error {
			_, err := b.Store.RegisterDevice(b.Ctx, db.System, "a token", db.PlatformAndroid)
			return err
		},
		"CreateShift": func() error {
			start := b.Clock.Now().Add(48 * time.Hour)
			_, err := b.Store.CreateShift(b.Ctx, db.System, db.NewShift{PicketLineID: sh.PicketLineID, StartsAt: start, EndsAt: start.Add(time.Hour), Capacity: 1})
			return err
		},
		"CreateJobAction": func() error {
			_, err := b.Store.CreateJobAction(b.Ctx, db.System, db.NewJobAction{Name: "x", Kind: db.KindStrike, Employer: "y", StartsAt: b.Clock.Now()})
			return err
		},
	} {
		if err := call(); err == nil || !slices.Contains(refusals, db.ErrorCode(err)) {
			t.Errorf("%s as the system: got %v (code %s), want UNAUTHENTICATED or FORBIDDEN", name, err, db.ErrorCode(err))
		}
	}
	if got := b.ReloadShift(sh.ID).SignedUpCount; got != 0 {
		t.Errorf("the system's refused sign-up took a spot: %d signed up", got)
	}
}

// TestSystemUseCasesSayTheyAreForTheSystem reads the package's source:
// every use-case that requires the system checks it first, and its doc
// comment says "System only".
func TestSystemUseCasesSayTheyAreForTheSystem(t *testing.T) {
	t.Parallel()
	for name, fn := range systemFuncs(t) {
		if !isRequireSystemCheck(fn.Body.List[0]) {
			t.Errorf("%s: the first statement does not check for the system", name)
		}
		if doc := strings.Join(strings.Fields(fn.Doc.Text()), " "); !strings.Contains(doc, "System only") {
			t.Errorf("%s: the doc comment does not say it is for the system (\"System only\"): %q", name, doc)
		}
	}
}

// systemFuncs parses the package's source and returns, by name, the
// functions that call requireSystem.
func systemFuncs(t *testing.T) map[string]*ast.FuncDecl {
	t.Helper()
	out := map[string]*ast.FuncDecl{}
	for _, fn := range sourceFuncs(t) {
		if callsRequireSystem(fn.Body) {
			out[fn.Name.Name] = fn
		}
	}
	return out
}

// sourceFuncs parses the package's non-test source, doc comments included,
// and returns its functions that have a body, for the tests that hold
// every use-case to a rule.
func sourceFuncs(t *testing.T) []*ast.FuncDecl {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []*ast.FuncDecl
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
				out = append(out, fn)
			}
		}
	}
	return out
}

// callsRequireSystem reports whether body calls a requireSystem method.
func callsRequireSystem(body *ast.BlockStmt) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "requireSystem" {
			found = true
		}
		return !found
	})
	return found
}

// isRequireSystemCheck reports whether stmt is
// `if err := actor.requireSystem(); err != nil { ... }`.
func isRequireSystemCheck(stmt ast.Stmt) bool {
	ifs, ok := stmt.(*ast.IfStmt)
	if !ok || ifs.Init == nil {
		return false
	}
	assign, ok := ifs.Init.(*ast.AssignStmt)
	if !ok || len(assign.Rhs) != 1 {
		return false
	}
	call, ok := assign.Rhs[0].(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "requireSystem" {
		return false
	}
	recv, ok := sel.X.(*ast.Ident)
	return ok && recv.Name == "actor"
}
