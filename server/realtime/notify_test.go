package realtime

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/picketline/picketline/db/dbtest"
)

// TestListenerBacksOffFromTheStartAfterEachConnection drops the listener's
// connection again and again: each time it listened, so each reconnect is
// one minimal backoff away, not twice the last.
func TestListenerBacksOffFromTheStartAfterEachConnection(t *testing.T) {
	url := dbtest.NewDatabase(t)
	f := newFixture(t, dbtest.PoolFor(t, url))
	log := slog.New(slog.DiscardHandler)
	conns := NewConns(f.Clock)
	n := NewNotifier(f.hub, conns, NewAuthority(f.Store, f.hub, conns, f.Clock, log), f.Pool, log)
	listening := make(chan struct{}, 1)
	n.listening = func() { listening <- struct{}{} }
	ctx, cancel := context.WithCancel(f.Ctx)
	defer cancel()
	go n.Listen(ctx, url)
	waitListening := func(what string) {
		t.Helper()
		select {
		case <-listening:
		case <-time.After(10 * time.Second):
			t.Fatalf("the listener did not listen %s", what)
		}
	}
	waitListening("at first")
	for drop := 1; drop <= 4; drop++ {
		var ended int
		if err := f.Pool.QueryRow(ctx, `
SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
WHERE datname = current_database() AND query = 'LISTEN '||$1`, Channel).Scan(&ended); err != nil || ended != 1 {
			t.Fatalf("drop %d: ended %d listeners: %v", drop, ended, err)
		}
		// The listener waits out its backoff on the clock, alone there.
		if err := f.Clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		f.Clock.Advance(listenBackoff)
		waitListening("again one minimal backoff after its connection dropped")
	}
}
