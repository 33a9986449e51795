package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The shape of the seeded schedule. Every line gets seedDays × shiftsPerDay
// short shifts that never overlap each other, so a member only conflicts
// with a shift at the same hour on another line.
const (
	seedDays      = 7
	shiftsPerDay  = 6
	shiftLength   = 2 * time.Hour
	shiftSpacing  = 4 * time.Hour
	shiftCapacity = 20
	tokenTTL      = time.Hour
)

// member is a seeded member with a live session and an access token for it.
type member struct {
	ID    string
	Token string
}

// dataset is what seed created.
type dataset struct {
	Coordinator string
	Members     []member
	JobActionID string
	LineIDs     []string
	ShiftIDs    []string
	// Base is the start of the first shift; every seeded shift ends
	// within seedDays of it, so later shifts overlap none of them.
	Base time.Time
	Took time.Duration
}

// newUUID returns a random (version 4) UUID.
func newUUID() pgtype.UUID {
	var u pgtype.UUID
	rand.Read(u.Bytes[:])
	u.Bytes[6] = u.Bytes[6]&0x0f | 0x40
	u.Bytes[8] = u.Bytes[8]&0x3f | 0x80
	u.Valid = true
	return u
}

// uuidString formats u the way PostgreSQL prints it.
func uuidString(u pgtype.UUID) string {
	b := u.Bytes
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// minter gets an access token for the member of each email, in order, the
// way an operator would: from the server binary's token command, which
// starts a session for each.
type minter func(ctx context.Context, emails []string) ([]string, error)

// seed fills the migrated bench database on a connection of its own, with
// COPY: a coordinator, n members, one strike, lines picket lines and their
// shifts; mint gives each member a session and a token.
func seed(ctx context.Context, dsn string, mint minter, n, lines int) (*dataset, error) {
	start := time.Now()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())

	ds := &dataset{Base: time.Now().Truncate(time.Hour).Add(2 * time.Hour)}
	now := time.Now()

	// Members, the coordinator first.
	ids := make([]pgtype.UUID, n+1)
	rows := make([][]any, n+1)
	emails := make([]string, n)
	for i := range ids {
		ids[i] = newUUID()
		name, email, role := fmt.Sprintf("Bench Member %d", i), fmt.Sprintf("member%06d@bench.picketline.test", i), "MEMBER"
		if i == 0 {
			name, email, role = "Bench Coordinator", "coordinator@bench.picketline.test", "COORDINATOR"
		} else {
			emails[i-1] = email
		}
		rows[i] = []any{ids[i], name, email, role}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"members"}, []string{"id", "name", "email", "role"}, pgx.CopyFromRows(rows)); err != nil {
		return nil, fmt.Errorf("copy members: %w", err)
	}
	ds.Coordinator = uuidString(ids[0])

	tokens, err := mint(ctx, emails)
	if err != nil {
		return nil, err
	}
	ds.Members = make([]member, n)
	for i := range n {
		ds.Members[i] = member{ID: uuidString(ids[i+1]), Token: tokens[i]}
	}

	err = conn.QueryRow(ctx, `INSERT INTO job_actions (name, kind, employer, starts_at)
		VALUES ('Bench strike', 'STRIKE', 'Bench Corp', $1) RETURNING id`, now).Scan(&ds.JobActionID)
	if err != nil {
		return nil, fmt.Errorf("insert job action: %w", err)
	}

	var lineRows, shiftRows [][]any
	for l := range lines {
		lid := newUUID()
		ds.LineIDs = append(ds.LineIDs, uuidString(lid))
		lineRows = append(lineRows, []any{lid, ds.JobActionID, fmt.Sprintf("Gate %d", l+1),
			fmt.Sprintf("%d Bench Street", l+1), 45 + float64(l)/1000, -73 - float64(l)/1000})
		for d := range seedDays {
			for s := range shiftsPerDay {
				sid := newUUID()
				ds.ShiftIDs = append(ds.ShiftIDs, uuidString(sid))
				st := ds.Base.Add(time.Duration(d)*24*time.Hour + time.Duration(s)*shiftSpacing)
				shiftRows = append(shiftRows, []any{sid, lid, st, st.Add(shiftLength), shiftCapacity})
			}
		}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"picket_lines"},
		[]string{"id", "job_action_id", "name", "address", "latitude", "longitude"}, pgx.CopyFromRows(lineRows)); err != nil {
		return nil, fmt.Errorf("copy picket lines: %w", err)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"shifts"},
		[]string{"id", "picket_line_id", "starts_at", "ends_at", "capacity"}, pgx.CopyFromRows(shiftRows)); err != nil {
		return nil, fmt.Errorf("copy shifts: %w", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return nil, err
	}
	ds.Took = time.Since(start)
	return ds, nil
}

// createShift adds one shift on a line, for scenarios that need a shift of
// their own.
func createShift(ctx context.Context, pool *pgxpool.Pool, lineID string, start time.Time, capacity int) (string, error) {
	var id string
	err := pool.QueryRow(ctx, `INSERT INTO shifts (picket_line_id, starts_at, ends_at, capacity)
		VALUES ($1, $2, $3, $4) RETURNING id`, lineID, start, start.Add(shiftLength), capacity).Scan(&id)
	return id, err
}

// resetSignups removes every sign-up and zeroes the shift counters, then
// vacuums, so the next scenario starts from the freshly seeded state.
func resetSignups(ctx context.Context, pool *pgxpool.Pool) error {
	for _, q := range []string{
		"DELETE FROM signups",
		"UPDATE shifts SET signed_up_count = 0, waitlist_count = 0",
		"VACUUM (ANALYZE) signups, shifts",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
