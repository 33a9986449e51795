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
	// admitConnectionSQL adds the connection only while the member's fresh
	// rows (seen since $4) number fewer than $5. It runs as a statement of
	// its own after the lock: in READ COMMITTED its snapshot, taken then,
	// sees the rows the previous holder committed.
	admitConnectionSQL = `
INSERT INTO ws_connections (member_id, replica, opened_at, seen_at)
SELECT $1, $2, $3, $3
WHERE (SELECT count(*) FROM ws_connections WHERE member_id = $1 AND seen_at >= $4) < $5
RETURNING id`
)

// AdmitConnection counts a websocket of the caller's, opened on replica,
// against Limits.WSConnectionsPerMember, shared by every replica, and
// returns the connection's id for EndConnections. One over the cap fails
// with RATE_LIMITED and is not counted. The lock and the insert go in one
// batch, which PostgreSQL runs as one transaction: one round trip, and no
// flush to wait for (the table is unlogged).
func (s *Store) AdmitConnection(ctx context.Context, actor Actor, replica string) (id ConnectionID, err error) {
	defer wrap(&err, "AdmitConnection")
	if err := actor.requireMember(); err != nil {
		return id, err
	}
	now := s.clock.Now()
	full := false
	batch := &pgx.Batch{}
	batch.Queue(lockMemberConnectionsSQL, actor.MemberID)
	batch.Queue(admitConnectionSQL, actor.MemberID, replica, now, now.Add(-ConnectionStaleAfter), s.limits.WSConnectionsPerMember).
		QueryRow(func(row pgx.Row) error {
			// A refusal is no error to the batch: pgx makes a batch whose
			// callback fails several times slower.
			err := row.Scan((*[16]byte)(&id))
			if full = errors.Is(err, pgx.ErrNoRows); full {
				return nil
			}
			return err
		})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return id, err
	}
	if full {
		return id, &Error{Code: CodeRateLimited, Message: "too many connections"}
	}
	return id, nil
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
