package db_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/dbtest"
)

func TestRegisteringOneDeviceTooManyForgetsTheOldest(t *testing.T) {
	b := setup(t)
	a := signedIn(b)
	register := func(token string) {
		t.Helper()
		b.Clock.Advance(time.Minute)
		if _, err := b.Store.RegisterDevice(b.Ctx, a, token, db.PlatformAndroid); err != nil {
			t.Fatalf("register %s: %v", token, err)
		}
	}
	mine := func() []string {
		t.Helper()
		devices, err := b.Store.MyDevices(b.Ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		var tokens []string
		for _, d := range devices {
			tokens = append(tokens, d.Token)
		}
		return tokens
	}
	limit := b.Store.Limits().DevicesPerMember
	for i := 1; i <= limit; i++ {
		register(fmt.Sprintf("phone-%02d", i))
	}
	// The first phone starts again, so the second is now the one seen
	// longest ago.
	register("phone-01")
	register("phone-11")
	var want []string
	want = append(want, "phone-11", "phone-01")
	for i := limit; i >= 3; i-- {
		want = append(want, fmt.Sprintf("phone-%02d", i))
	}
	if diff := cmp.Diff(want, mine()); diff != "" {
		t.Fatalf("devices after one too many (-want +got):\n%s", diff)
	}
	// Another member's devices are not counted.
	other := signedIn(b)
	if _, err := b.Store.RegisterDevice(b.Ctx, other, "other-phone", db.PlatformIOS); err != nil {
		t.Fatal(err)
	}
	if got := len(mine()); got != limit {
		t.Fatalf("%d devices after another member registered, want %d", got, limit)
	}
}

func TestDevicesPerMemberHoldUnderConcurrentRegistrations(t *testing.T) {
	b := setup(t)
	a := signedIn(b)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := b.Store.RegisterDevice(b.Ctx, a, fmt.Sprintf("phone-%03d", i), db.PlatformWeb); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	devices, err := b.Store.MyDevices(b.Ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if got, limit := len(devices), b.Store.Limits().DevicesPerMember; got != limit {
		t.Fatalf("%d devices after %d registrations at once, want %d", got, n, limit)
	}
}

// signedIn is a new member on a session of its own, as devices are
// registered from.
func signedIn(b *dbtest.Bundle) db.Actor {
	a := b.NewMember()
	a.SessionID = b.Session(a.MemberID).ID
	return a
}
