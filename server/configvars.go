package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/picketline/picketline/server/auth"
	"github.com/picketline/picketline/server/mail"
)

// A settingVar is a setting's field of the config, in flag.Value's shape:
// each kind of value parses the same way and prints the same way, masks
// included, whichever variable it serves.
type settingVar interface {
	// Set parses v, the variable's value or its default, into the field;
	// name is the variable's, for the error.
	Set(name, v string) error
	// String is the field as the start-up line shows it.
	String() string
}

// textVar is a string taken as it is.
type textVar struct{ p *string }

func (t textVar) Set(_, v string) error { *t.p = v; return nil }
func (t textVar) String() string        { return *t.p }

// choiceVar is a string that must be one of allowed.
type choiceVar struct {
	p       *string
	allowed []string
}

func (c choiceVar) Set(name, v string) error {
	if !slices.Contains(c.allowed, v) {
		return fmt.Errorf("%s must be %s, not %q", name, strings.Join(c.allowed, " or "), v)
	}
	*c.p = v
	return nil
}

func (c choiceVar) String() string { return *c.p }

// listVar is a comma-separated list; blanks around the items and empty
// items are dropped.
type listVar struct{ p *[]string }

func (l listVar) Set(_, v string) error {
	*l.p = nil
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l.p = append(*l.p, item)
		}
	}
	return nil
}

func (l listVar) String() string { return strings.Join(*l.p, ",") }

// levelVar is a log level by name.
type levelVar struct{ p *slog.Level }

func (l levelVar) Set(name, v string) error {
	if err := l.p.UnmarshalText([]byte(v)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (l levelVar) String() string { return l.p.String() }

// wholeVar is a whole number of units: a count, or a duration in the unit
// the variable's name says. A value under least is raised to it, where
// zero would stop the server doing the work at all.
type wholeVar[T ~int | ~int64 | ~float64] struct {
	p     *T
	unit  T
	least int
}

func count[T ~int | ~float64](p *T) wholeVar[T] { return wholeVar[T]{p: p, unit: 1} }

func seconds(p *time.Duration) wholeVar[time.Duration] {
	return wholeVar[time.Duration]{p: p, unit: time.Second}
}

func days(p *time.Duration) wholeVar[time.Duration] {
	return wholeVar[time.Duration]{p: p, unit: 24 * time.Hour}
}

func milliseconds(p *time.Duration) wholeVar[time.Duration] {
	return wholeVar[time.Duration]{p: p, unit: time.Millisecond}
}

func (w wholeVar[T]) atLeast(n int) wholeVar[T] {
	w.least = n
	return w
}

func (w wholeVar[T]) Set(name, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("%s must be a whole number, not %q", name, v)
	}
	*w.p = T(max(n, w.least)) * w.unit
	return nil
}

func (w wholeVar[T]) String() string { return strconv.Itoa(int(*w.p / w.unit)) }

// durationVar is a Go duration ("5s", "250ms"), more than zero.
type durationVar struct{ p *time.Duration }

func (d durationVar) Set(name, v string) error {
	n, err := time.ParseDuration(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("%s must be a duration above zero, such as 5s or 500ms, not %q", name, v)
	}
	*d.p = n
	return nil
}

func (d durationVar) String() string { return d.p.String() }

// secretVar is a secret: unset leaves it nil, and only its length is shown.
type secretVar struct{ p *[]byte }

func (s secretVar) Set(_, v string) error {
	if v != "" {
		*s.p = []byte(v)
	}
	return nil
}

func (s secretVar) String() string {
	if len(*s.p) == 0 {
		return "(from data dir)"
	}
	return fmt.Sprintf("(%d bytes)", len(*s.p))
}

// urlVar is a URL, shown without the password it may carry.
type urlVar struct{ p *string }

func (u urlVar) Set(_, v string) error { *u.p = v; return nil }

func (u urlVar) String() string {
	if *u.p == "" {
		return ""
	}
	parsed, err := url.Parse(*u.p)
	if err != nil {
		return "(unparsable)"
	}
	return parsed.Redacted()
}

// smtpVar is the SMTP server's URL: checked when given, shown without its
// password.
type smtpVar struct{ urlVar }

func (s smtpVar) Set(name, v string) error {
	if v != "" {
		if _, err := mail.ParseServer(v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	*s.p = v
	return nil
}

// addressVar is an email address, display name allowed: checked when given.
type addressVar struct{ p *string }

func (a addressVar) Set(name, v string) error {
	if v != "" {
		if _, err := mail.ParseFrom(v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	*a.p = v
	return nil
}

func (a addressVar) String() string { return *a.p }

// databaseVar is the PostgreSQL connection string; unset, the server runs
// its own cluster under the data directory.
type databaseVar struct{ url, dataDir *string }

func (d databaseVar) Set(_, v string) error { *d.url = v; return nil }

// String names the database without any secret, whatever form the
// connection string takes (a URL with the password in its user part or in
// a parameter, or keyword=value pairs).
func (d databaseVar) String() string {
	if *d.url == "" {
		return "embedded PostgreSQL in " + filepath.Join(*d.dataDir, "postgres")
	}
	cfg, err := pgconn.ParseConfig(*d.url)
	if err != nil {
		return "(unparsable)"
	}
	u := url.URL{Scheme: "postgres", User: url.User(cfg.User), Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + cfg.Database}
	return u.String()
}

// proxiesVar is a comma-separated list of IP addresses and CIDR prefixes.
type proxiesVar struct{ p *auth.TrustedProxies }

func (v proxiesVar) Set(name, s string) error {
	var items []string
	if err := (listVar{&items}).Set(name, s); err != nil {
		return err
	}
	proxies, err := auth.ParseTrustedProxies(items)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	*v.p = proxies
	return nil
}

func (v proxiesVar) String() string { return v.p.String() }
