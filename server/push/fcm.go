package push

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"

	"github.com/picketline/picketline/db"
)

// FCM sends through Firebase Cloud Messaging with the Firebase Admin SDK.
type FCM struct {
	client *messaging.Client
	clock  db.Clock
}

// NewFCM connects to FCM for projectID. endpoint, when set, replaces FCM's
// address (a fake in tests); without Google credentials it then sends
// unauthenticated. clock is the store's: a message's TTL runs until an
// expiry the store reckoned on it.
func NewFCM(ctx context.Context, clock db.Clock, projectID, endpoint string, unauthenticated bool) (*FCM, error) {
	// No OpenTelemetry wrappers around every send: nothing here collects
	// them, and at thousands of messages a second they cost CPU.
	opts := []option.ClientOption{option.WithTelemetryDisabled()}
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	if unauthenticated {
		opts = append(opts, option.WithoutAuthentication())
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: projectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("firebase: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase messaging: %w", err)
	}
	return &FCM{client: client, clock: clock}, nil
}

// Send hands one message to FCM and classifies its errors as Firebase
// documents them.
func (f *FCM) Send(ctx context.Context, m db.PushMessage) error {
	_, err := f.client.Send(ctx, Message(m, f.clock.Now()))
	switch {
	case err == nil:
		return nil
	case messaging.IsUnregistered(err), messaging.IsSenderIDMismatch(err):
		return fmt.Errorf("%w: %v", ErrTokenGone, err)
	case messaging.IsInvalidArgument(err):
		return fmt.Errorf("%w: %v", ErrRejected, err)
	default:
		// QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL and network failures.
		return &RetryableError{Err: err, After: retryAfter(err, f.clock.Now())}
	}
}

// retryAfter reads the Retry-After header FCM sends with 429 and 503; a
// date in it is reckoned from now.
func retryAfter(err error, now time.Time) time.Duration {
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// Message builds the FCM message for m. It carries ids, never names,
// phone numbers or addresses: the app fetches what it shows. The event id
// lets the app drop a repeat, and collapses banners of one event into one.
func Message(m db.PushMessage, now time.Time) *messaging.Message {
	data := map[string]string{"event_id": m.EventID, "kind": string(m.Kind)}
	for k, v := range map[string]*string{"shift_id": m.ShiftID, "signup_id": m.SignupID, "announcement_id": m.AnnouncementID} {
		if v != nil {
			data[k] = *v
		}
	}
	title, body := text(m)
	ttl := max(m.ExpiresAt.Sub(now), time.Second)
	priority, apnsPriority := "normal", "5"
	if m.Urgent || m.Kind == db.NotifyCoverageCall || m.Kind == db.NotifyWaitlistPromoted {
		priority, apnsPriority = "high", "10"
	}
	return &messaging.Message{
		Token:        m.DeviceToken,
		Data:         data,
		Notification: &messaging.Notification{Title: title, Body: body},
		Android: &messaging.AndroidConfig{
			CollapseKey: m.EventID,
			Priority:    priority,
			TTL:         &ttl,
		},
		APNS: &messaging.APNSConfig{Headers: map[string]string{
			"apns-collapse-id": m.EventID,
			"apns-expiration":  strconv.FormatInt(m.ExpiresAt.Unix(), 10),
			"apns-priority":    apnsPriority,
		}},
		Webpush: &messaging.WebpushConfig{Headers: map[string]string{
			"TTL":     strconv.Itoa(int(ttl.Seconds())),
			"Topic":   m.EventID[:32],
			"Urgency": map[string]string{"high": "high", "normal": "normal"}[priority],
		}},
	}
}

// text is the banner: general words only, since it crosses Google's and
// Apple's servers.
func text(m db.PushMessage) (title, body string) {
	switch m.Kind {
	case db.NotifyWaitlistPromoted:
		return "You're off the waitlist", "A spot opened on a picket shift you're waiting for. Open the app for details."
	case db.NotifyShiftReminder:
		return "Picket shift soon", "Your picket shift starts soon. Open the app for details."
	case db.NotifyShiftChanged:
		return "Shift changed", "The time of one of your picket shifts changed. Open the app to check."
	case db.NotifyShiftCancelled:
		return "Shift cancelled", "One of your picket shifts was cancelled. Open the app for details."
	case db.NotifyUrgentAnnouncement:
		return "Urgent message", "Your picket captain posted an urgent message. Open the app to read it."
	case db.NotifyCoverageCall:
		body := "A picket shift needs people. Can you take it?"
		if m.Message != nil {
			body = *m.Message
		}
		return "People needed on the line", body
	}
	return "Picketline", "Open the app for news."
}

// LogSender stands in for FCM when none is configured: it logs what it
// would send, with the kind and event id only.
type LogSender struct{ Log *slog.Logger }

// Send logs the message.
func (l LogSender) Send(ctx context.Context, m db.PushMessage) error {
	l.Log.InfoContext(ctx, "push notification (no FCM configured)", "kind", m.Kind, "eventId", m.EventID, "platform", m.Platform)
	return nil
}
