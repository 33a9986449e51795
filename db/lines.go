package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultGeofenceMeters is the radius around a line's coordinates that counts
// as being on the line, unless the coordinator sets another.
const DefaultGeofenceMeters = 150

// PicketLine is a place where members picket. Address is the stored value;
// who may see it is decided by AddressVisibility.
type PicketLine struct {
	ID             string
	JobActionID    string
	Name           string
	Address        string
	Latitude       float64
	Longitude      float64
	GeofenceMeters int
	CreatedAt      time.Time
	// EventSeq is the number of the line's latest event.
	EventSeq int64
}

const lineColumns = `id, job_action_id, name, address, latitude, longitude, geofence_meters, created_at, event_seq`

func scanLine(row pgx.Row) (*PicketLine, error) {
	var l PicketLine
	err := row.Scan(&l.ID, &l.JobActionID, &l.Name, &l.Address, &l.Latitude, &l.Longitude, &l.GeofenceMeters, &l.CreatedAt, &l.EventSeq)
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// NewPicketLine is the input to CreatePicketLine.
type NewPicketLine struct {
	JobActionID    string
	Name           string
	Address        string
	Latitude       float64
	Longitude      float64
	GeofenceMeters *int
}

// PicketLineUpdate changes a picket line; nil fields stay.
type PicketLineUpdate struct {
	ID             string
	Name           *string
	Address        *string
	Latitude       *float64
	Longitude      *float64
	GeofenceMeters *int
}

const insertLineSQL = `
INSERT INTO picket_lines (job_action_id, name, address, latitude, longitude, geofence_meters)
SELECT id, $2, $3, $4, $5, $6 FROM job_actions WHERE id = $1
RETURNING ` + lineColumns

// CreatePicketLine creates a line of a job action. Coordinators only.
func (s *Store) CreatePicketLine(ctx context.Context, actor Actor, in NewPicketLine) (l *PicketLine, err error) {
	defer wrap(&err, "CreatePicketLine")
	if err := actor.requireCoordinator(); err != nil {
		return nil, err
	}
	if !validID(in.JobActionID) {
		return nil, errNotFound("job action")
	}
	if in.Name, err = trimmedText("name", in.Name, 200); err != nil {
		return nil, err
	}
	if in.Address, err = trimmedText("address", in.Address, 500); err != nil {
		return nil, err
	}
	if err := validCoordinates(&in.Latitude, &in.Longitude); err != nil {
		return nil, err
	}
	geofence := DefaultGeofenceMeters
	if in.GeofenceMeters != nil {
		geofence = *in.GeofenceMeters
	}
	if err := validGeofence(&geofence); err != nil {
		return nil, err
	}
	l, err = scanLine(s.pool.QueryRow(ctx, insertLineSQL, in.JobActionID, in.Name, in.Address, in.Latitude, in.Longitude, geofence))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("job action")
	}
	return l, err
}

const updateLineSQL = `
UPDATE picket_lines SET
    name = COALESCE($2, name),
    address = COALESCE($3, address),
    latitude = COALESCE($4, latitude),
    longitude = COALESCE($5, longitude),
    geofence_meters = COALESCE($6, geofence_meters)
WHERE id = $1
RETURNING ` + lineColumns

// UpdatePicketLine changes a line. Coordinators only.
func (s *Store) UpdatePicketLine(ctx context.Context, actor Actor, in PicketLineUpdate) (l *PicketLine, err error) {
	defer wrap(&err, "UpdatePicketLine(%s)", in.ID)
	if err := actor.requireCoordinator(); err != nil {
		return nil, err
	}
	if !validID(in.ID) {
		return nil, errNotFound("picket line")
	}
	if in.Name != nil {
		v, err := trimmedText("name", *in.Name, 200)
		if err != nil {
			return nil, err
		}
		in.Name = &v
	}
	if in.Address != nil {
		v, err := trimmedText("address", *in.Address, 500)
		if err != nil {
			return nil, err
		}
		in.Address = &v
	}
	if err := validCoordinates(in.Latitude, in.Longitude); err != nil {
		return nil, err
	}
	if err := validGeofence(in.GeofenceMeters); err != nil {
		return nil, err
	}
	l, err = scanLine(s.pool.QueryRow(ctx, updateLineSQL, in.ID, in.Name, in.Address, in.Latitude, in.Longitude, in.GeofenceMeters))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("picket line")
	}
	return l, err
}

const linesByIDsSQL = `SELECT ` + lineColumns + ` FROM picket_lines WHERE id = ANY($1)`

// PicketLinesByIDs loads lines by id, for the dataloader. Any member may see
// a line, but not necessarily its address (see AddressVisibility).
func (s *Store) PicketLinesByIDs(ctx context.Context, actor Actor, ids []string) (_ map[string]*PicketLine, err error) {
	defer wrap(&err, "PicketLinesByIDs")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	return loadByIDs(ctx, s.pool, linesByIDsSQL, ids, scanLine, func(l *PicketLine) string { return l.ID })
}

const linesOfJobActionSQL = `
SELECT ` + lineColumns + ` FROM picket_lines
WHERE job_action_id = $1 AND ($2::text IS NULL OR (name, id) > ($2, $3::uuid))
ORDER BY name, id
LIMIT $4`

// PicketLineCursor is the opaque cursor of a line in PicketLinesOfJobAction.
func PicketLineCursor(l *PicketLine) string { return encodeCursor(l.Name, l.ID) }

// PicketLinesOfJobAction pages through a job action's lines by name.
func (s *Store) PicketLinesOfJobAction(ctx context.Context, actor Actor, jobActionID string, q PageQuery) (_ *Page[*PicketLine], err error) {
	defer wrap(&err, "PicketLinesOfJobAction(%s)", jobActionID)
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	first, err := q.size()
	if err != nil {
		return nil, err
	}
	var afterName, afterID *string
	if q.After != "" {
		parts, err := decodeCursor(q.After, 2)
		if err != nil {
			return nil, err
		}
		afterName, afterID = &parts[0], &parts[1]
	}
	rows, err := s.pool.Query(ctx, linesOfJobActionSQL, jobActionID, afterName, afterID, first+1)
	return collectPage(rows, err, first, scanLine)
}

// Lines on which the actor holds a sign-up that is not cancelled, or which
// they captain: there they may see the street address.
const linesKnownToMemberSQL = `
SELECT watch_line FROM unnest($2::uuid[]) AS l(watch_line), (SELECT $1::uuid AS watch_member) AS m
WHERE ` + takesPartSQL

// AddressVisibility tells, for each line id, whether the actor may see its
// street address: coordinators and the line's captains always, members once
// they hold a sign-up on the line. The address tells an employer where a
// picket will stand, so it goes only to those taking part.
func (s *Store) AddressVisibility(ctx context.Context, actor Actor, lineIDs []string) (_ map[string]bool, err error) {
	defer wrap(&err, "AddressVisibility")
	if err := actor.requireMember(); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(lineIDs))
	for _, id := range lineIDs {
		out[id] = actor.Coordinator()
	}
	if actor.Coordinator() {
		return out, nil
	}
	known, err := queryStrings(ctx, s.pool, linesKnownToMemberSQL, actor.MemberID, validIDs(lineIDs))
	if err != nil {
		return nil, err
	}
	for _, id := range known {
		out[id] = true
	}
	return out, nil
}

const isCaptainSQL = `SELECT EXISTS (SELECT 1 FROM captains WHERE picket_line_id = $1 AND member_id = $2)`

// isCaptain reports whether member captains line.
func isCaptain(ctx context.Context, q querier, lineID, memberID string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, isCaptainSQL, lineID, memberID).Scan(&ok)
	return ok, err
}

// requireLineManager allows coordinators and the line's captains.
func requireLineManager(ctx context.Context, q querier, actor Actor, lineID string) error {
	if err := actor.requireMember(); err != nil {
		return err
	}
	if actor.Coordinator() {
		return nil
	}
	ok, err := isCaptain(ctx, q, lineID, actor.MemberID)
	if err != nil {
		return err
	}
	if !ok {
		return errForbidden("only this line's captains and coordinators can do this")
	}
	return nil
}
