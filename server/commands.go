package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
	"github.com/picketline/picketline/server/realtime"
)

func migrateCommand(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	d, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := migrate(ctx, d.URL); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func memberAddCommand(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("member add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email address (required)")
	name := fs.String("name", "", "full name (required)")
	phone := fs.String("phone", "", "phone number")
	role := fs.String("role", "member", "member, coordinator or admin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" || *name == "" {
		return fmt.Errorf("member add needs --email and --name")
	}
	store, closeStore, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer closeStore()
	m, err := store.AddMember(ctx, db.System, db.NewMember{Name: *name, Email: *email, Phone: *phone, Role: db.Role(strings.ToUpper(*role))})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, m.ID)
	return nil
}

// memberRoleCommand gives a member another role through the use-case, never
// by editing rows, so that the running replicas hear of it: the member's
// open sockets follow at once.
func memberRoleCommand(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("member role", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the member's email address (required)")
	role := fs.String("role", "", "member, coordinator or admin (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" || *role == "" {
		return fmt.Errorf("member role needs --email and --role")
	}
	store, closeStore, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer closeStore()
	replicas := realtime.NewCommandNotifier(store.Pool())
	store.SetNotifier(replicas)
	m, err := store.SetMemberRoleByEmail(ctx, db.System, *email, db.Role(strings.ToUpper(*role)))
	if err != nil {
		return err
	}
	if err := replicas.Send(ctx); err != nil {
		fmt.Fprintf(stderr, "the role is changed; the running servers were not told (%v) and follow within %s\n", err, realtime.CheckInterval)
	}
	fmt.Fprintln(stdout, m.ID, m.Role)
	return nil
}

// prodMaxTokenTTL is the longest token `picketline token` mints in prod,
// where a token pasted into a script or a chat is the likelier leak.
const prodMaxTokenTTL = time.Hour

func tokenCommand(ctx context.Context, cfg config, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the member's email address")
	emails := fs.String("emails", "", "a file of email addresses, one a line (- for standard input): print a token for each, in the same order")
	ttl := fs.Duration("ttl", auth.DefaultTTL, "how long the token is valid: at most 24h, and 1h in APP_ENV=prod")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *email == "" && *emails == "":
		return fmt.Errorf("token needs --email or --emails")
	case *email != "" && *emails != "":
		return fmt.Errorf("token takes --email or --emails, not both")
	}
	maxTTL := auth.MaxTTL
	if !cfg.dev() {
		maxTTL = prodMaxTokenTTL
	}
	if *ttl <= 0 || *ttl > maxTTL {
		return fmt.Errorf("--ttl must be more than 0 and at most %s in APP_ENV=%s, not %s", maxTTL, cfg.Env, *ttl)
	}
	var list []string
	if *emails != "" {
		var err error
		if list, err = readEmails(*emails, stdin); err != nil {
			return err
		}
	}
	store, closeStore, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer closeStore()
	tokens, err := auth.NewTokens(cfg.JWTSecret, auth.DefaultTTL, nil)
	if err != nil {
		return err
	}
	var sessions []*db.Session
	if *email != "" {
		m, err := store.MemberByEmail(ctx, db.System, *email)
		if err != nil {
			return err
		}
		sess, err := store.StartSession(ctx, db.System, m.ID)
		if err != nil {
			return err
		}
		sessions = []*db.Session{sess}
	} else if sessions, err = store.StartSessionsByEmail(ctx, db.System, list); err != nil {
		return err
	}
	out := bufio.NewWriter(stdout)
	for _, sess := range sessions {
		token, _, err := tokens.IssueTTL(sess.Member.ID, sess.ID, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, token)
	}
	return out.Flush()
}

// readEmails reads the token command's list of emails, one a line, from
// the file name or, for "-", from stdin. A blank line is refused rather than
// skipped, so that line n of the output is always the token for line n.
func readEmails(name string, stdin io.Reader) ([]string, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var emails []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			return nil, fmt.Errorf("--emails %s: line %d is blank; give one email a line", name, len(emails)+1)
		}
		emails = append(emails, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--emails %s: %w", name, err)
	}
	if len(emails) == 0 {
		return nil, fmt.Errorf("--emails %s lists no email", name)
	}
	return emails, nil
}

func demoCommand(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	store, closeStore, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer closeStore()
	summary, err := loadDemo(ctx, store, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, summary)
	return nil
}

// purgeCommand runs the retention purge once, for a cron job, and prints
// how many rows went from each table. What it printed before a table
// failed still stands: each batch is committed as it goes.
func purgeCommand(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	store, closeStore, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer closeStore()
	report, err := store.Purge(ctx, db.System, db.Retention{Events: cfg.EventRetention})
	out := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, p := range report {
		fmt.Fprintf(out, "%s\t%d\n", p.Table, p.Rows)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	return err
}
