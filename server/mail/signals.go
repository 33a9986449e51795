package mail

import "github.com/picketline/picketline/db"

// signals tell a test which points of its work a worker has passed, so
// that the test waits for what happened instead of for time to pass. A
// worker has none outside tests.
type signals struct {
	// recorded gets the status of every outcome recorded ("" when the
	// record failed).
	recorded chan db.LoginEmailStatus
	// failed gets the id of every email reported as never to be sent.
	failed chan int64
}

func (s *signals) record(status db.LoginEmailStatus) {
	if s != nil {
		notify(s.recorded, status)
	}
}

func (s *signals) fail(id int64) {
	if s != nil {
		notify(s.failed, id)
	}
}

// notify never blocks the worker: a test that lets a signal go unread has
// lost track of the worker, and is told so.
func notify[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
		panic("mail: a test left the worker's signals unread")
	}
}
