package db_test

import (
	"context"
	"errors"
	"go/ast"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

// lockShift holds the shift's row lock, as a sign-up in progress does,
// until the returned function releases it.
func lockShift(t *testing.T, b *dbtest.Bundle, shiftID string) (release func()) {
	t.Helper()
	tx, err := b.Pool.Begin(b.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(b.Ctx, `SELECT 1 FROM shifts WHERE id = $1 FOR UPDATE`, shiftID); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			tx.Rollback(context.Background())
		}
	}
	t.Cleanup(release)
	return release
}

// TestStatementTimeoutIsUnavailable: a use-case whose statement runs into
// the statement timeout fails with UNAVAILABLE, writes nothing, and
// succeeds when asked again once the database has caught up.
func TestStatementTimeoutIsUnavailable(t *testing.T) {
	b := setup(t)
	cfg, err := pgxpool.ParseConfig(b.Pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "100"
	pool, err := pgxpool.NewWithConfig(b.Ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := db.NewStore(pool, b.Clock, dbtest.Pepper)
	sh := b.Shift(2)
	member := b.NewMember()

	release := lockShift(t, b, sh.ID)
	_, err = store.SignUpForShift(b.Ctx, member, sh.ID, "tap-1")
	dbtest.WantCode(t, err, db.CodeUnavailable)
	release()
	if got := b.ReloadShift(sh.ID).SignedUpCount; got != 0 {
		t.Fatalf("the sign-up that timed out took a spot: %d signed up", got)
	}
	if _, err := store.SignUpForShift(b.Ctx, member, sh.ID, "tap-1"); err != nil {
		t.Fatalf("the same sign-up once the shift is free: %v", err)
	}
}

// TestCancelledRequestIsNotUnavailable: a caller that goes away while its
// statement waits gets its own cancellation back, not UNAVAILABLE, which
// would tell it to retry.
func TestCancelledRequestIsNotUnavailable(t *testing.T) {
	b := setup(t)
	sh := b.Shift(2)
	lockShift(t, b, sh.ID)
	ctx, cancel := context.WithCancel(b.Ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := b.Store.SignUpForShift(ctx, b.NewMember(), sh.ID, "")
		done <- err
	}()
	b.WaitForLockWait()
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || db.ErrorCode(err) == db.CodeUnavailable {
		t.Fatalf("a sign-up whose caller went away: %v (code %s), want context.Canceled and not UNAVAILABLE", err, db.ErrorCode(err))
	}
}

// TestEveryUseCaseReturnsThroughWrap reads the package's source: every
// exported method of Store that takes a context defers wrap, the one place
// where a timed-out statement becomes UNAVAILABLE.
func TestEveryUseCaseReturnsThroughWrap(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, fn := range sourceFuncs(t) {
		if fn.Recv == nil || !fn.Name.IsExported() || !takesContext(fn) {
			continue
		}
		checked++
		if !defersWrap(fn.Body) {
			t.Errorf("%s does not defer wrap", fn.Name.Name)
		}
	}
	if checked == 0 {
		t.Fatal("found no use-case to check")
	}
}

func takesContext(fn *ast.FuncDecl) bool {
	params := fn.Type.Params.List
	if len(params) == 0 {
		return false
	}
	sel, ok := params[0].Type.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Context"
}

func defersWrap(body *ast.BlockStmt) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		if d, ok := n.(*ast.DeferStmt); ok {
			if id, ok := d.Call.Fun.(*ast.Ident); ok && id.Name == "wrap" {
				found = true
			}
		}
		return !found
	})
	return found
}

// TestUnreachableDatabaseIsUnavailable: a use-case that cannot reach the
// database at all fails with UNAVAILABLE, for the app to retry, not
// INTERNAL.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: every connection is refused.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := db.NewStore(pool, dbtest.NewClock(dbtest.Epoch), dbtest.Pepper)
	_, err = store.SessionActor(context.Background(), db.System, "5d0c7c44-5a6e-4bd5-9d56-2f1e1b0b9a01", "9e1f0a22-3b4c-4d5e-8f60-718293a4b5c6")
	dbtest.WantCode(t, err, db.CodeUnavailable)
}
