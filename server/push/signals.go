package push

// signals tell a test which points of its work a worker has passed, so
// that the test waits for what happened instead of for time to pass. A
// worker has none outside tests, where each costs a nil check per claim or
// recording round.
type signals struct {
	// claimed gets the number of messages of every claim.
	claimed chan int
	// recorded gets the number of outcomes the recorder wrote at each tick
	// or full batch.
	recorded chan int
}

func (s *signals) claim(n int) {
	if s != nil {
		notify(s.claimed, n)
	}
}

func (s *signals) record(n int) {
	if s != nil {
		notify(s.recorded, n)
	}
}

// notify never blocks the worker: a test that lets a signal go unread has
// lost track of the worker, and is told so.
func notify(ch chan int, n int) {
	select {
	case ch <- n:
	default:
		panic("push: a test left the worker's signals unread")
	}
}
