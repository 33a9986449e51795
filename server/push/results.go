package push

// Result is what became of one message handed to the push service, in the
// classes an operator watches.
type Result int

// The results of a send.
const (
	// Delivered: the service accepted the message.
	Delivered Result = iota
	// TokenGone: the device token is dead; the device was forgotten.
	TokenGone
	// Rejected: the service refused the message itself.
	Rejected
	// Retryable: a transient failure; the message is tried again later.
	Retryable
	// Dead: a transient failure on the last attempt; the message is
	// dead-lettered.
	Dead
)

// Results lists every Result, in order.
var Results = []Result{Delivered, TokenGone, Rejected, Retryable, Dead}

var resultNames = [...]string{"delivered", "token_gone", "rejected", "retryable", "dead"}

// String names the result as the metrics label it.
func (r Result) String() string { return resultNames[r] }
