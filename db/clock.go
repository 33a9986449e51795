package db

import "github.com/jonboulle/clockwork"

// Clock tells the time and makes the timers and tickers that wait on it.
// One clock is passed to the store, the realtime hub and the push worker,
// so that tests move time (cutoffs, expiries, retries, polls) by hand with
// clockwork's fake clock and wait for what happened, never for time to pass.
//
// Two kinds of waiting stay on the wall clock on purpose: socket read and
// write deadlines, which the kernel enforces, and the short backoff between
// attempts of a transaction that lost a serialization race, which is about
// contention inside PostgreSQL, not about any rule of ours.
type Clock = clockwork.Clock

// WallClock returns the real clock.
func WallClock() Clock { return clockwork.NewRealClock() }
