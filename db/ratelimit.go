package db

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Limits are the caps a deployment may tune, set once at start (see
// SetLimits); every use-case that enforces one reads it from here.
type Limits struct {
	// LoginPerAddressPerHour caps requestLoginCode and, counted apart,
	// verifyLoginCode per client address per hour.
	LoginPerAddressPerHour int
	// DevicesPerMember caps a member's registered devices: registering one
	// more forgets the one registered or seen longest ago.
	DevicesPerMember int
	// UrgentPerHour caps urgent announcements and coverage calls together,
	// per poster per hour.
	UrgentPerHour int
	// WSConnectionsPerMember caps a member's open websockets, on every
	// replica together.
	WSConnectionsPerMember int
}

// DefaultLimits are the limits of a store nobody tuned.
var DefaultLimits = Limits{LoginPerAddressPerHour: 30, DevicesPerMember: 10, UrgentPerHour: 6, WSConnectionsPerMember: 10}

// SetLimits replaces the store's limits; a value below 1 keeps its default.
// Call it before the store serves.
func (s *Store) SetLimits(l Limits) {
	d := DefaultLimits
	pick := func(v, def int) int {
		if v < 1 {
			return def
		}
		return v
	}
	s.limits = Limits{
		LoginPerAddressPerHour: pick(l.LoginPerAddressPerHour, d.LoginPerAddressPerHour),
		DevicesPerMember:       pick(l.DevicesPerMember, d.DevicesPerMember),
		UrgentPerHour:          pick(l.UrgentPerHour, d.UrgentPerHour),
		WSConnectionsPerMember: pick(l.WSConnectionsPerMember, d.WSConnectionsPerMember),
	}
}

// Limits returns the store's limits.
func (s *Store) Limits() Limits { return s.limits }

func (l Limits) loginPerAddress() Limit {
	return Limit{Max: l.LoginPerAddressPerHour, Window: time.Hour}
}

func (l Limits) urgent() Limit { return Limit{Max: l.UrgentPerHour, Window: time.Hour} }

// Limit is a fixed-window rate limit: at most Max hits per Window.
type Limit struct {
	Max    int
	Window time.Duration
}

const hitRateLimitSQL = `
INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1)
ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1
RETURNING hits`

// hit counts one use of key and fails with RATE_LIMITED past the limit. The
// counters live in PostgreSQL so every replica shares them. Keys hold hashes,
// never an email or an address in clear.
func (s *Store) hit(ctx context.Context, tx pgx.Tx, key string, l Limit) error {
	if l.Window > RateLimitRetention {
		// The purge would delete the window while it still counts.
		return fmt.Errorf("rate limit %s: its window %v outlasts RateLimitRetention (%v)", key, l.Window, RateLimitRetention)
	}
	now := s.clock.Now()
	start := now.Truncate(l.Window)
	var hits int
	if err := tx.QueryRow(ctx, hitRateLimitSQL, key, start).Scan(&hits); err != nil {
		return err
	}
	if hits > l.Max {
		wait := start.Add(l.Window).Sub(now)
		return &Error{
			Code:              CodeRateLimited,
			Message:           "too many attempts; try again later",
			RetryAfterSeconds: int(math.Ceil(wait.Seconds())),
		}
	}
	return nil
}

// hitUrgent counts one push that interrupts many members (an urgent
// announcement or a coverage call) against its poster, whatever their role:
// one counter for both kinds, so neither is a way around the other.
func (s *Store) hitUrgent(ctx context.Context, tx pgx.Tx, poster Actor) error {
	return s.hit(ctx, tx, "urgent:"+poster.MemberID, s.limits.urgent())
}

// limitKey builds a rate-limit key that does not reveal the value it counts.
func limitKey(kind, value string) string {
	sum := sha256.Sum256([]byte(value))
	return kind + ":" + hex.EncodeToString(sum[:16])
}
