// Package db holds Picketline's domain: its types, its rules and all of its
// SQL. Every exported use-case takes the calling Actor, checks permission
// first, and runs in one transaction.
package db

import (
	"context"
	"crypto/cipher"
	"errors"
	"math/rand/v2"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store runs the use-cases against PostgreSQL.
type Store struct {
	pool     *pgxpool.Pool
	clock    Clock
	notifier Notifier
	// pepper keys the hashes of login codes, so a copy of the database alone
	// is not enough to brute-force the six-digit codes.
	pepper []byte
	// codeSeal seals the codes waiting in the login email outbox.
	codeSeal cipher.AEAD
	// fanOutBatch: see SetFanOutBatch.
	fanOutBatch int
	limits      Limits
}

// NewStore returns a Store on pool. pepper must be secret and stable across
// restarts (the server derives it from JWT_SECRET).
func NewStore(pool *pgxpool.Pool, clock Clock, pepper []byte) *Store {
	if clock == nil {
		clock = WallClock()
	}
	return &Store{pool: pool, clock: clock, pepper: pepper, codeSeal: newCodeSeal(pepper), notifier: NoNotifier{}, fanOutBatch: DefaultFanOutBatch, limits: DefaultLimits}
}

// Pool returns the connection pool, for health checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Now returns the store's current time.
func (s *Store) Now() time.Time { return s.clock.Now() }

const maxTxAttempts = 5

// inTx runs fn in one transaction and commits it, retrying the whole function
// on serialization failures and deadlocks, which PostgreSQL resolves by
// aborting one of the transactions involved.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil || attempt == maxTxAttempts || !retryable(err) {
			return err
		}
		backoff := time.Duration(attempt*attempt) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff + rand.N(backoff)):
		}
	}
}

// write is inTx for use-cases that record events: fn notes what it touched
// in c, and the notifier hears of it only after the commit.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx, c *changes) error) error {
	var c changes
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c.reset()
		return fn(tx, &c)
	})
	if err == nil {
		s.publish(&c)
	}
	return err
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// validID reports whether id can name a row. Malformed ids name nothing, so
// callers answer NOT_FOUND without asking the database.
func validID(id string) bool { return uuidPattern.MatchString(id) }

// validIDs keeps the ids that can name a row.
func validIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if validID(id) {
			out = append(out, id)
		}
	}
	return out
}

// loadByIDs runs a query taking an id array and indexes its rows by id, for
// the dataloaders.
func loadByIDs[T any](ctx context.Context, q querier, sql string, ids []string, scan func(pgx.Row) (*T, error), id func(*T) string) (map[string]*T, error) {
	rows, err := q.Query(ctx, sql, validIDs(ids))
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*T, error) { return scan(r) })
	if err != nil {
		return nil, err
	}
	out := make(map[string]*T, len(list))
	for _, v := range list {
		out[id(v)] = v
	}
	return out, nil
}

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (*T, error)) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*T, error) { return scan(r) })
}

// querier is what pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// queryStrings runs a query of one text or uuid column and returns its values.
func queryStrings(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
