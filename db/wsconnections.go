package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConnectionID names an admitted websocket's row.
type ConnectionID [16]byte

// How replicas share the count of open websockets per member: each
// refreshes its connections' rows every ConnectionRefreshInterval, and a
// row not refreshed for ConnectionStaleAfter is a replica's that died
// without saying so (SIGKILL, a lost host); it no longer counts, and the
// purge deletes it. Three intervals, so that one late refresh of a busy
// replica does not free its members' slots.
const (
	ConnectionRefreshInterval = 30 * time.Second
	ConnectionStaleAfter      = 3 * ConnectionRefreshInterval
)

const (
	// Admissions of one member take turns, so that two replicas cannot both
	// count nine and admit a tenth and an eleventh. An advisory lock rather
	// than the member's row: locking a row writes to the WAL, and the commit
	// would then wait for a disk flush, for every websocket that opens.
	lockMemberConnectionsSQL = `SELECT pg_advisory_xact_lock(hashtextextended('ws_connections:' || $1::text, 0))`
	// admitConnectionSQL adds the connection only while the member's
	// session ($6) is live at $3 and the member's fresh rows (seen since
	// $4) number fewer than $5. It runs as a statement of its own after the
	// lock: in READ COMMITTED its snapshot, taken then, sees the rows the
	// previous holder committed.
	admitConnectionSQL = `
INSERT INTO ws_connections (member_id, replica, opened_at, seen_at)
SELECT $1, $2, $3, $3
WHERE (SELECT count(*) FROM ws_connections WHERE member_id = $1 AND seen_at >= $4) < $5
  AND EXISTS (SELECT 1 FROM sessions WHERE id = $6 AND member_id = $1 AND revoked_at IS NULL AND expires_at > $3)
RETURNING id`
)

// AdmitSession turns a token's session into its actor, as SessionActor
// does, and counts the websocket it opens against
// Limits.WSConnectionsPerMember, shared by every replica, in one round
// trip: the session check, the member's lock and the insert go in one
// batch, which PostgreSQL runs as one transaction, with no flush to wait
// for (the table is unlogged). It returns the connection's id for
// EndConnections. A session that is not live fails with UNAUTHENTICATED
// and counts nothing; one over the cap fails with RATE_LIMITED and is not
// counted. System only: a websocket's connection_init asks it before the
// socket has an actor.
func (s *Store) AdmitSession(ctx context.Context, actor Actor, sessionID, memberID, replica string) (a Actor, id ConnectionID, err error) {
	if err := actor.requireSystem(); err != nil {
		return Actor{}, id, err
	}
	defer wrap(&err, "AdmitSession")
	if !validID(sessionID) || !validID(memberID) {
		return Actor{}, id, errUnauthenticated()
	}
	now := s.clock.Now()
	a = Actor{MemberID: memberID, SessionID: sessionID}
	live, full := false, false
	batch := &pgx.Batch{}
	// A refusal is no error to the batch: pgx makes a batch whose callback
	// fails several times slower.
	batch.Queue(sessionActorSQL, sessionID, memberID, now).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&a.Role)
		live = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	batch.Queue(lockMemberConnectionsSQL, memberID)
	batch.Queue(admitConnectionSQL, memberID, replica, now, now.Add(-ConnectionStaleAfter), s.limits.WSConnectionsPerMember, sessionID).
		QueryRow(func(row pgx.Row) error {
			err := row.Scan((*[16]byte)(&id))
			if full = errors.Is(err, pgx.ErrNoRows); full {
				return nil
			}
			return err
		})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return Actor{}, id, err
	}
	switch {
	case !live:
		return Actor{}, id, errUnauthenticated()
	case full:
		return Actor{}, id, &Error{Code: CodeRateLimited, Message: "too many connections"}
	}
	return a, id, nil
}

const refreshConnectionsSQL = `UPDATE ws_connections SET seen_at = $2 WHERE id = ANY($1)`

// RefreshConnections marks connections as still open, so that they go on
// counting. A replica names its open connections rather than all of its
// rows: a row whose end was lost (the database did not answer) then goes
// stale instead of counting for as long as the replica runs. System only:
// each replica runs it every ConnectionRefreshInterval.
func (s *Store) RefreshConnections(ctx context.Context, actor Actor, ids []ConnectionID) (err error) {
	if err := actor.requireSystem(); err != nil {
		return err
	}
	defer wrap(&err, "RefreshConnections")
	_, err = s.pool.Exec(ctx, refreshConnectionsSQL, uuids(ids), s.clock.Now())
	return err
}

const endConnectionsSQL = `DELETE FROM ws_connections WHERE id = ANY($1)`

// EndConnections frees the slots of connections that closed. System only:
// the replica holding them runs it.
func (s *Store) EndConnections(ctx context.Context, actor Actor, ids []ConnectionID) (err error) {
	if err := actor.requireSystem(); err != nil {
		return err
	}
	defer wrap(&err, "EndConnections")
	_, err = s.pool.Exec(ctx, endConnectionsSQL, uuids(ids))
	return err
}

const endReplicaConnectionsSQL = `DELETE FROM ws_connections WHERE replica = $1`

// EndReplicaConnections frees the slots of every connection of a replica
// that is shutting down, in one statement, however many it held. System
// only: the replica runs it as it stops.
func (s *Store) EndReplicaConnections(ctx context.Context, actor Actor, replica string) (err error) {
	if err := actor.requireSystem(); err != nil {
		return err
	}
	defer wrap(&err, "EndReplicaConnections")
	_, err = s.pool.Exec(ctx, endReplicaConnectionsSQL, replica)
	return err
}

// uuids is ids as pgx encodes a uuid[].
func uuids(ids []ConnectionID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
