package dbtest

import (
	"time"

	"github.com/jonboulle/clockwork"
)

// NewClock returns a fake clock standing at t. Tests move it with Advance
// and wait for the code under test to be waiting on it with
// BlockUntilContext, instead of sleeping.
func NewClock(t time.Time) *clockwork.FakeClock { return clockwork.NewFakeClockAt(t) }
