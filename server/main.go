// Command picketline is the Picketline server and its operator commands.
//
//	picketline [serve]        serve the API (the default)
//	picketline migrate        apply the schema migrations and exit
//	picketline member add     add a member
//	picketline token          print access tokens for members
//	picketline demo           fill an empty database with a demo strike
//	picketline purge          delete what the retention windows no longer keep
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "picketline:", err)
		os.Exit(1)
	}
}

const usage = `usage: picketline [command]

commands:
  serve                 serve the API (default)
  migrate               apply the schema migrations and exit
  member add --email E --name N [--phone P] [--role member|coordinator|admin]
                        add a member and print its id
  member role --email E --role member|coordinator|admin
                        give a member another role; the running servers
                        apply it to the member's open websockets at once
  token --email E [--ttl 15m]
                        print an access token for that member
  token --emails FILE [--ttl 15m]
                        print an access token for each member FILE lists,
                        one email a line (- for standard input), in order
  demo                  fill an empty database with a demo strike
  purge                 delete what the retention windows no longer keep,
                        once, and print how many rows went from each table

configuration comes from the environment: PORT, DATABASE_URL, JWT_SECRET,
ALLOWED_ORIGINS, APP_ENV (dev or prod), DATA_DIR, LOGIN_CODE_SENDER (smtp,
with SMTP_URL and SMTP_FROM, in prod); see README.md.
`

// run is the whole program, with its surroundings passed in so tests can
// run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd != "help" && cmd != "-h" && cmd != "--help" {
		if err := cfg.ensureSecret(); err != nil {
			return fmt.Errorf("token secret: %w", err)
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, stdout, stderr)
	case "migrate":
		return migrateCommand(ctx, cfg, stdout, stderr)
	case "member":
		switch {
		case len(args) > 0 && args[0] == "add":
			return memberAddCommand(ctx, cfg, args[1:], stdout, stderr)
		case len(args) > 0 && args[0] == "role":
			return memberRoleCommand(ctx, cfg, args[1:], stdout, stderr)
		}
		return fmt.Errorf("usage: picketline member add --email E --name N [--phone P] [--role R]\n       picketline member role --email E --role R")
	case "token":
		return tokenCommand(ctx, cfg, args, stdin, stdout, stderr)
	case "demo":
		return demoCommand(ctx, cfg, stdout, stderr)
	case "purge":
		return purgeCommand(ctx, cfg, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
