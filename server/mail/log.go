package mail

import (
	"context"
	"log/slog"

	"github.com/picketline/picketline/db"
)

// LogSender writes login codes to the log instead of sending them, for
// development: whoever reads the log could sign in as anyone, so prod
// refuses it.
type LogSender struct{ Log *slog.Logger }

// Send implements Sender.
func (s LogSender) Send(ctx context.Context, e db.LoginEmail) error {
	s.Log.InfoContext(ctx, "login code", "email", e.Email, "code", e.Code)
	return nil
}
