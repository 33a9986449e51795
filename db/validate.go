package db

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NormalizeEmail trims and lower-cases an email address and checks its form.
func NormalizeEmail(field, email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if len(email) < 3 || len(email) > 254 {
		return "", errInput(field, "enter a valid email address")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.IndexByte(email, '@')+1:], ".") {
		return "", errInput(field, "enter a valid email address")
	}
	return email, nil
}

// plainText refuses what PostgreSQL cannot store in a text column (NUL)
// and bytes that are not UTF-8, which it would refuse as well: either
// would otherwise surface as an internal error.
func plainText(field, v string) error {
	if strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
		return errInput(field, "must be UTF-8 text without NUL characters")
	}
	return nil
}

func normalizeName(field, name string) (string, error) {
	if err := plainText(field, name); err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 200 {
		return "", errInput(field, "must be 1 to 200 characters")
	}
	return name, nil
}

// normalizePhone trims a phone number and checks it is made of digits and the
// usual separators. The empty string means no phone.
func normalizePhone(field, phone string) (string, error) {
	phone = strings.TrimSpace(phone)
	digits := 0
	for _, r := range phone {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("+-(). ", r):
		default:
			return "", errInput(field, "use digits, spaces and + - ( ) . only")
		}
	}
	if phone != "" && (digits < 3 || len(phone) > 40) {
		return "", errInput(field, "enter a phone number of 3 to 40 characters")
	}
	return phone, nil
}

func validKind(k JobActionKind) error {
	if k != KindStrike && k != KindLockout {
		return errInput("kind", "must be STRIKE or LOCKOUT")
	}
	return nil
}

func validCutoff(minutes int) error {
	if minutes < 0 || minutes > 7*24*60 {
		return errInput("cancelCutoffMinutes", "must be between 0 and 10080 (a week)")
	}
	return nil
}

func trimmedText(field, v string, max int) (string, error) {
	if err := plainText(field, v); err != nil {
		return "", err
	}
	v = strings.TrimSpace(v)
	if v == "" || len([]rune(v)) > max {
		return "", errInput(field, "must not be empty and at most "+strconv.Itoa(max)+" characters")
	}
	return v, nil
}

func validCoordinates(lat, lng *float64) error {
	if lat != nil && (*lat < -90 || *lat > 90) {
		return errInput("latitude", "must be between -90 and 90")
	}
	if lng != nil && (*lng < -180 || *lng > 180) {
		return errInput("longitude", "must be between -180 and 180")
	}
	return nil
}

func validGeofence(m *int) error {
	if m != nil && (*m < 10 || *m > 10000) {
		return errInput("geofenceMeters", "must be between 10 and 10000")
	}
	return nil
}
