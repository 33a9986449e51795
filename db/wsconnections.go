package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

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
	// count nine and admit a tenth and an eleventh. The count runs in a
	// statement of its own after the lock: in READ COMMITTED, that
	// statement's snapshot sees the rows the previous holder committed.
	lockMemberConnectionsSQL = `SELECT 1 FROM members WHERE id = $1 FOR NO KEY UPDATE`
	// admitConnectionSQL adds the connection only while the member's fresh
	// rows (seen since $4) number fewer than $5.
	admitConnectionSQL = `
INSERT INTO ws_connections (member_id, replica, opened_at, seen_at)
SELECT $1, $2, $3, $3
WHERE (SELECT count(*) FROM ws_connections WHERE member_id = $1 AND seen_at >= $4) < $5
RETURNING id`
)

// AdmitConnection counts a websocket of the caller's, opened on replica,
// against Limits.WSConnectionsPerMember, shared by every replica, and
// returns the connection's id for EndConnections. One over the cap fails
// with RATE_LIMITED and is not counted.
func (s *Store) AdmitConnection(ctx context.Context, actor Actor, replica string) (id int64, err error) {
	defer wrap(&err, "AdmitConnection")
	if err := actor.requireMember(); err != nil {
		return 0, err
	}
	now := s.clock.Now()
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockMemberConnectionsSQL, actor.MemberID); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, admitConnectionSQL, actor.MemberID, replica, now, now.Add(-ConnectionStaleAfter), s.limits.WSConnectionsPerMember).Scan(&id)
		if err == pgx.ErrNoRows {
			return &Error{Code: CodeRateLimited, Message: "too many connections"}
		}
		return err
	})
	return id, err
}

const refreshConnectionsSQL = `UPDATE ws_connections SET seen_at = $2 WHERE id = ANY($1)`

// RefreshConnections marks connections as still open, so that they go on
// counting. A replica names its open connections rather than all of its
// rows: a row whose end was lost (the database did not answer) then goes
// stale instead of counting for as long as the replica runs. System only:
// each replica runs it every ConnectionRefreshInterval.
func (s *Store) RefreshConnections(ctx context.Context, actor Actor, ids []int64) (err error) {
	if err := actor.requireSystem(); err != nil {
		return err
	}
	defer wrap(&err, "RefreshConnections")
	_, err = s.pool.Exec(ctx, refreshConnectionsSQL, ids, s.clock.Now())
	return err
}

const endConnectionsSQL = `DELETE FROM ws_connections WHERE id = ANY($1)`

// EndConnections frees the slots of connections that closed. System only:
// the replica holding them runs it.
func (s *Store) EndConnections(ctx context.Context, actor Actor, ids []int64) (err error) {
	if err := actor.requireSystem(); err != nil {
		return err
	}
	defer wrap(&err, "EndConnections")
	_, err = s.pool.Exec(ctx, endConnectionsSQL, ids)
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
