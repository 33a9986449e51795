package db

import (
	"context"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // members' time zones for quiet hours, wherever the server runs

	"github.com/jackc/pgx/v5"
)

// DevicePlatform is the kind of device a push token belongs to.
type DevicePlatform string

// The platforms.
const (
	PlatformAndroid DevicePlatform = "ANDROID"
	PlatformIOS     DevicePlatform = "IOS"
	PlatformWeb     DevicePlatform = "WEB"
)

// Device is a phone or browser that receives a member's push notifications.
type Device struct {
	Token      string
	MemberID   string
	Platform   DevicePlatform
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// DeviceIdleLimit is how long a device may go unregistered again before
// its token is purged as stale.
const DeviceIdleLimit = 60 * 24 * time.Hour

const deviceColumns = `token, member_id, platform, created_at, last_seen_at`

func scanDevice(row pgx.Row) (*Device, error) {
	var d Device
	if err := row.Scan(&d.Token, &d.MemberID, &d.Platform, &d.CreatedAt, &d.LastSeenAt); err != nil {
		return nil, err
	}
	return &d, nil
}

// A token belongs to one member: registering it again, by anyone, moves it.
const registerDeviceSQL = `
INSERT INTO devices (token, member_id, session_id, platform, created_at, last_seen_at)
VALUES ($1, $2, $3, $4, $5, $5)
ON CONFLICT (token) DO UPDATE SET member_id = $2, session_id = $3, platform = $4, last_seen_at = $5
RETURNING ` + deviceColumns

const (
	// Registrations of one member take turns, so two at once cannot both
	// count the devices before either adds its own and leave one too many.
	lockMemberDevicesSQL = `SELECT 1 FROM members WHERE id = $1 FOR NO KEY UPDATE`
	// forgetExtraDevicesSQL keeps the member's $3 newest devices, token $2
	// (the one being registered) always among them; newest is the one
	// registered or seen last.
	forgetExtraDevicesSQL = `
DELETE FROM devices WHERE member_id = $1 AND token <> $2 AND token NOT IN (
    SELECT token FROM devices WHERE member_id = $1 AND token <> $2
    ORDER BY last_seen_at DESC, created_at DESC, token LIMIT $3 - 1)
RETURNING token`
)

// RegisterDevice records the caller's push token. Apps register at every
// start, which also keeps the token from being purged as stale. A member
// keeps at most Limits.DevicesPerMember devices: one more forgets those
// registered or seen longest ago, with their unsent notifications.
func (s *Store) RegisterDevice(ctx context.Context, actor Actor, token string, platform DevicePlatform) (d *Device, err error) {
	defer wrap(&err, "RegisterDevice")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 4096 {
		return nil, errInput("token", "must be 1 to 4096 characters")
	}
	if !slices.Contains([]DevicePlatform{PlatformAndroid, PlatformIOS, PlatformWeb}, platform) {
		return nil, errInput("platform", "must be ANDROID, IOS or WEB")
	}
	var session *string
	if validID(actor.SessionID) {
		session = &actor.SessionID
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockMemberDevicesSQL, actor.MemberID); err != nil {
			return err
		}
		// A token that moved to another member must not carry the previous
		// member's notifications.
		if _, err := tx.Exec(ctx, cancelDevicePushSQL, token, actor.MemberID); err != nil {
			return err
		}
		d, err = scanDevice(tx.QueryRow(ctx, registerDeviceSQL, token, actor.MemberID, session, platform, s.clock.Now()))
		if err != nil {
			return err
		}
		forgotten, err := queryStrings(ctx, tx, forgetExtraDevicesSQL, actor.MemberID, token, s.limits.DevicesPerMember)
		if err != nil {
			return err
		}
		for _, t := range forgotten {
			if _, err := tx.Exec(ctx, cancelDevicePushSQL, t, nil); err != nil {
				return err
			}
		}
		return nil
	})
	return d, err
}

// cancelDevicePushSQL withdraws unsent messages on a token, except those
// of member $2 (nil: everyone's).
const cancelDevicePushSQL = `
UPDATE push_outbox SET status = 'CANCELLED'
WHERE device_token = $1 AND status IN ('PENDING', 'SENDING') AND member_id IS DISTINCT FROM $2`

const unregisterDeviceSQL = `DELETE FROM devices WHERE token = $1 AND member_id = $2`

// UnregisterDevice removes the caller's push token and reports whether it
// was theirs.
func (s *Store) UnregisterDevice(ctx context.Context, actor Actor, token string) (removed bool, err error) {
	defer wrap(&err, "UnregisterDevice")
	if err := actor.requireMember(); err != nil {
		return false, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, unregisterDeviceSQL, token, actor.MemberID)
		if removed = tag.RowsAffected() == 1; err != nil || !removed {
			return err
		}
		_, err = tx.Exec(ctx, cancelDevicePushSQL, token, nil)
		return err
	})
	return removed, err
}

const myDevicesSQL = `SELECT ` + deviceColumns + ` FROM devices WHERE member_id = $1 ORDER BY last_seen_at DESC, token LIMIT $2`

// MyDevices lists the caller's devices, most recently seen first: at most
// Limits.DevicesPerMember, even when a lower cap was set after a member
// registered more.
func (s *Store) MyDevices(ctx context.Context, actor Actor) (_ []*Device, err error) {
	defer wrap(&err, "MyDevices")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, myDevicesSQL, actor.MemberID, s.limits.DevicesPerMember)
	return collect(rows, err, scanDevice)
}

const (
	failDevicePushSQL = `UPDATE push_outbox SET status = 'FAILED', last_error = 'device token no longer valid' WHERE device_token = $1 AND status IN ('PENDING', 'SENDING')`
	dropDeviceSQL     = `DELETE FROM devices WHERE token = $1`
)

// DropDevice forgets a token FCM no longer accepts, with its unsent messages.
// System only: the push worker runs it.
func (s *Store) DropDevice(ctx context.Context, actor Actor, token string) (err error) {
	if err := actor.requireSystem(); err != nil {
		return err
	}
	defer wrap(&err, "DropDevice")
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, failDevicePushSQL, token); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, dropDeviceSQL, token)
		return err
	})
}

const purgeStaleDevicesSQL = `DELETE FROM devices WHERE last_seen_at < $1`

// PurgeStaleDevices deletes tokens not registered again for
// DeviceIdleLimit and reports how many went. System only: the push worker
// runs it periodically.
func (s *Store) PurgeStaleDevices(ctx context.Context, actor Actor) (n int, err error) {
	if err := actor.requireSystem(); err != nil {
		return 0, err
	}
	defer wrap(&err, "PurgeStaleDevices")
	tag, err := s.pool.Exec(ctx, purgeStaleDevicesSQL, s.clock.Now().Add(-DeviceIdleLimit))
	return int(tag.RowsAffected()), err
}

const pushCountsSQL = `SELECT status, count(*) FROM push_outbox GROUP BY status`

// NotificationKind is a kind of push notification.
type NotificationKind string

// The kinds of push notification.
const (
	NotifyWaitlistPromoted   NotificationKind = "WAITLIST_PROMOTED"
	NotifyShiftReminder      NotificationKind = "SHIFT_REMINDER"
	NotifyShiftChanged       NotificationKind = "SHIFT_CHANGED"
	NotifyShiftCancelled     NotificationKind = "SHIFT_CANCELLED"
	NotifyUrgentAnnouncement NotificationKind = "URGENT_ANNOUNCEMENT"
	NotifyCoverageCall       NotificationKind = "COVERAGE_CALL"
)

var notificationKinds = []NotificationKind{NotifyWaitlistPromoted, NotifyShiftReminder, NotifyShiftChanged,
	NotifyShiftCancelled, NotifyUrgentAnnouncement, NotifyCoverageCall}

// NotificationPreferences say which notifications a member wants and when.
type NotificationPreferences struct {
	MemberID string
	// Muted kinds are not sent; urgent announcements cannot be muted.
	Muted []NotificationKind
	// QuietStart and QuietEnd are minutes after midnight in TimeZone;
	// equal means no quiet hours. Only urgent announcements break them.
	QuietStart, QuietEnd int
	TimeZone             string
}

// Enabled reports whether the member wants kind.
func (p *NotificationPreferences) Enabled(kind NotificationKind) bool {
	return kind == NotifyUrgentAnnouncement || !slices.Contains(p.Muted, kind)
}

// EnabledKinds lists the kinds the member wants.
func (p *NotificationPreferences) EnabledKinds() []NotificationKind {
	var out []NotificationKind
	for _, k := range notificationKinds {
		if p.Enabled(k) {
			out = append(out, k)
		}
	}
	return out
}

// QuietUntil returns when the quiet hours around t end, or t itself
// outside quiet hours.
func (p *NotificationPreferences) QuietUntil(t time.Time) time.Time {
	if p.QuietStart == p.QuietEnd {
		return t
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	local := t.In(loc)
	minute := local.Hour()*60 + local.Minute()
	inside := p.QuietStart < p.QuietEnd && minute >= p.QuietStart && minute < p.QuietEnd ||
		p.QuietStart > p.QuietEnd && (minute >= p.QuietStart || minute < p.QuietEnd)
	if !inside {
		return t
	}
	end := time.Date(local.Year(), local.Month(), local.Day(), p.QuietEnd/60, p.QuietEnd%60, 0, 0, loc)
	if !end.After(local) {
		end = end.AddDate(0, 0, 1)
	}
	return end
}

// PreferencesUpdate changes notification preferences; nil fields stay.
type PreferencesUpdate struct {
	Enabled    []NotificationKind
	QuietStart *string
	QuietEnd   *string
	TimeZone   *string
}

const preferencesSQL = `
SELECT $1::uuid, COALESCE(muted_kinds, '{}'), COALESCE(quiet_start, 0), COALESCE(quiet_end, 0), COALESCE(time_zone, 'UTC')
FROM (SELECT 1) one LEFT JOIN notification_preferences ON member_id = $1`

func scanPreferences(row pgx.Row) (*NotificationPreferences, error) {
	var p NotificationPreferences
	if err := row.Scan(&p.MemberID, &p.Muted, &p.QuietStart, &p.QuietEnd, &p.TimeZone); err != nil {
		return nil, err
	}
	return &p, nil
}

// MyNotificationPreferences returns the caller's preferences (everything
// on and no quiet hours until they change them).
func (s *Store) MyNotificationPreferences(ctx context.Context, actor Actor) (p *NotificationPreferences, err error) {
	defer wrap(&err, "MyNotificationPreferences")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	return scanPreferences(s.pool.QueryRow(ctx, preferencesSQL, actor.MemberID))
}

const (
	// The row is made first so that there is always one to lock: two
	// changes at once then apply one after the other.
	ensurePreferencesSQL = `INSERT INTO notification_preferences (member_id) VALUES ($1) ON CONFLICT DO NOTHING`
	lockPreferencesSQL   = `
SELECT member_id, muted_kinds, quiet_start, quiet_end, time_zone
FROM notification_preferences WHERE member_id = $1 FOR UPDATE`
	upsertPreferencesSQL = `
INSERT INTO notification_preferences (member_id, muted_kinds, quiet_start, quiet_end, time_zone)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (member_id) DO UPDATE SET muted_kinds = $2, quiet_start = $3, quiet_end = $4, time_zone = $5`
)

// UpdateNotificationPreferences changes the caller's preferences. Enabled
// lists the kinds wanted (nil keeps the current choice); quiet hours are
// "HH:MM" in TimeZone, an IANA zone such as America/Edmonton.
func (s *Store) UpdateNotificationPreferences(ctx context.Context, actor Actor, in PreferencesUpdate) (p *NotificationPreferences, err error) {
	defer wrap(&err, "UpdateNotificationPreferences")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, ensurePreferencesSQL, actor.MemberID); err != nil {
			return err
		}
		p, err = scanPreferences(tx.QueryRow(ctx, lockPreferencesSQL, actor.MemberID))
		if err != nil {
			return err
		}
		if in.Enabled != nil {
			p.Muted = []NotificationKind{}
			for _, k := range notificationKinds {
				if !slices.Contains(in.Enabled, k) && k != NotifyUrgentAnnouncement {
					p.Muted = append(p.Muted, k)
				}
			}
		}
		if in.QuietStart != nil {
			if p.QuietStart, err = parseClock("quietStart", *in.QuietStart); err != nil {
				return err
			}
		}
		if in.QuietEnd != nil {
			if p.QuietEnd, err = parseClock("quietEnd", *in.QuietEnd); err != nil {
				return err
			}
		}
		if in.TimeZone != nil {
			if _, err := time.LoadLocation(*in.TimeZone); err != nil || *in.TimeZone == "" || *in.TimeZone == "Local" {
				return errInput("timeZone", "must be an IANA time zone such as America/Edmonton")
			}
			p.TimeZone = *in.TimeZone
		}
		_, err = tx.Exec(ctx, upsertPreferencesSQL, actor.MemberID, p.Muted, p.QuietStart, p.QuietEnd, p.TimeZone)
		return err
	})
	return p, err
}

// parseClock reads "HH:MM" as minutes after midnight.
func parseClock(field, v string) (int, error) {
	t, err := time.Parse("15:04", v)
	if err != nil {
		return 0, errInput(field, "must be a time of day such as 22:00")
	}
	return t.Hour()*60 + t.Minute(), nil
}

// FormatClock writes minutes after midnight as "HH:MM".
func FormatClock(minutes int) string {
	return time.Date(2000, 1, 1, minutes/60, minutes%60, 0, 0, time.UTC).Format("15:04")
}
