package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/picketline/picketline/db"
)

// The demo strike: a public-sector union's health-care strike and a
// continuing-care lockout, with lines in Edmonton and Calgary, a week of
// shifts, captains and members signed up.
type demoLine struct {
	name, address string
	lat, lng      float64
}

type demoAction struct {
	name, employer string
	kind           db.JobActionKind
	lines          []demoLine
}

var demoActions = []demoAction{
	{
		name: "Health Care Strike 2026", employer: "Chinook Regional Health", kind: db.KindStrike,
		lines: []demoLine{
			{"Royal Alexandra Hospital — Main Entrance", "10240 Kingsway NW, Edmonton, AB", 53.5587, -113.4977},
			{"University Hospital — 114 Street Gate", "8440 112 St NW, Edmonton, AB", 53.5203, -113.5243},
			{"Foothills Medical Centre — North Lot", "1403 29 St NW, Calgary, AB", 51.0650, -114.1333},
			{"Rockyview General — Main Doors", "7007 14 St SW, Calgary, AB", 50.9875, -114.0970},
		},
	},
	{
		name: "Continuing Care Lockout", employer: "Capital Region Continuing Care Ltd.", kind: db.KindLockout,
		lines: []demoLine{
			{"Riverbend Lodge", "5103 Riverbend Rd NW, Edmonton, AB", 53.4822, -113.5580},
			{"Bow Valley Care Centre", "1070 McKenzie Towne Blvd SE, Calgary, AB", 50.9160, -113.9590},
		},
	},
}

var demoFirstNames = []string{"Amara", "Ben", "Chantal", "Dev", "Elena", "Farid", "Grace", "Harjit", "Isla", "Jonah",
	"Keiko", "Liam", "Maya", "Nikhil", "Olivia", "Pierre", "Quinn", "Rosa", "Samir", "Tanya",
	"Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Aiden", "Brianna", "Carlos", "Deepa"}

var demoLastNames = []string{"Okafor", "Tremblay", "Singh", "Nguyen", "MacLeod", "Haddad", "Cardinal", "Kowalski",
	"Fernandes", "Lam", "Bouchard", "Ahmed", "Whitehorse", "Petrov", "Sato"}

// Shifts run 06:00–10:00, 10:00–14:00 and 14:00–18:00 Mountain time.
var demoShiftHours = []int{6, 10, 14}

// loadDemo fills an empty database with the demo strike and returns a
// summary for the operator.
func loadDemo(ctx context.Context, store *db.Store, now time.Time) (string, error) {
	has, err := store.HasJobActions(ctx, db.System)
	if err != nil {
		return "", err
	}
	if has {
		return "", errors.New("the database already holds job actions; demo data goes only into an empty database")
	}
	zone, err := time.LoadLocation("America/Edmonton")
	if err != nil {
		zone = time.FixedZone("MST", -7*3600)
	}
	coordinator, err := store.AddMember(ctx, db.System, db.NewMember{Name: "Dana Whitford", Email: "coordinator@picketline.example", Phone: "+1 780 555 0100", Role: db.RoleCoordinator})
	if err != nil {
		return "", err
	}
	staff := db.Actor{MemberID: coordinator.ID, Role: db.RoleCoordinator}

	var members []*db.Member
	for i := range 60 {
		first := demoFirstNames[i%len(demoFirstNames)]
		last := demoLastNames[(i*7)%len(demoLastNames)]
		m, err := store.AddMember(ctx, db.System, db.NewMember{
			Name:  first + " " + last,
			Email: fmt.Sprintf("%s.%s%d@picketline.example", strings.ToLower(first), strings.ToLower(last), i+1),
			Phone: fmt.Sprintf("+1 403 555 %04d", 1000+i),
		})
		if err != nil {
			return "", err
		}
		members = append(members, m)
	}

	firstDay := time.Date(now.In(zone).Year(), now.In(zone).Month(), now.In(zone).Day()+1, 0, 0, 0, 0, zone)
	var (
		lines, shifts, signups int
		strikeID               string
	)
	for ai, a := range demoActions {
		// The strike is under way; the lockout begins tomorrow.
		starts := now.Add(-24 * time.Hour)
		if a.kind == db.KindLockout {
			starts = firstDay.Add(6 * time.Hour)
		}
		ja, err := store.CreateJobAction(ctx, staff, db.NewJobAction{Name: a.name, Kind: a.kind, Employer: a.employer, StartsAt: starts})
		if err != nil {
			return "", err
		}
		if strikeID == "" {
			strikeID = ja.ID
		}
		for li, l := range a.lines {
			line, err := store.CreatePicketLine(ctx, staff, db.NewPicketLine{JobActionID: ja.ID, Name: l.name, Address: l.address, Latitude: l.lat, Longitude: l.lng})
			if err != nil {
				return "", err
			}
			lines++
			captain := members[(ai*len(demoActions[0].lines)+li)%len(members)]
			if _, err := store.AssignCaptain(ctx, staff, line.ID, captain.ID); err != nil {
				return "", err
			}
			for day := range 7 {
				for si, h := range demoShiftHours {
					start := firstDay.AddDate(0, 0, day).Add(time.Duration(h) * time.Hour)
					sh, err := store.CreateShift(ctx, staff, db.NewShift{PicketLineID: line.ID, StartsAt: start, EndsAt: start.Add(4 * time.Hour), Capacity: 6 + 2*si})
					if err != nil {
						return "", err
					}
					shifts++
					// Fill the first morning to overflowing so the waitlist shows,
					// and the rest partly.
					want := (day*3 + si + li) % 7
					if day == 0 && si == 0 {
						want = sh.Capacity + 3
					}
					for k := range want {
						m := members[(li*11+day*5+si*3+k)%len(members)]
						_, err := store.SignUpForShift(ctx, db.Actor{MemberID: m.ID, Role: db.RoleMember}, sh.ID, "")
						if db.ErrorCode(err) == db.CodeConflict {
							continue // the member already holds an overlapping shift
						}
						if err != nil {
							return "", err
						}
						signups++
					}
				}
			}
		}
	}
	if _, err := store.PostAnnouncement(ctx, staff, db.NewAnnouncement{
		JobActionID: &strikeID,
		Body:        "Strike headquarters opens at 5:30 each morning. Bring water, dress for the weather, and check in with your picket captain on arrival.",
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("demo loaded: %d job actions, %d picket lines, %d shifts, %d members, %d sign-ups\nsign in as the coordinator with coordinator@picketline.example, or as a member such as %s\n",
		len(demoActions), lines, shifts, len(members)+1, signups, members[0].Email), nil
}
