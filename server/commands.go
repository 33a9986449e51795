package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
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

func tokenCommand(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the member's email address (required)")
	ttl := fs.Duration("ttl", auth.DefaultTTL, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		return fmt.Errorf("token needs --email")
	}
	if *ttl <= 0 || *ttl > 30*24*time.Hour {
		return fmt.Errorf("--ttl must be between 1s and 720h")
	}
	store, closeStore, err := openStore(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer closeStore()
	m, err := store.MemberByEmail(ctx, db.System, *email)
	if err != nil {
		return err
	}
	sess, err := store.StartSession(ctx, db.System, m.ID)
	if err != nil {
		return err
	}
	tokens, err := auth.NewTokens(cfg.JWTSecret, auth.DefaultTTL, nil)
	if err != nil {
		return err
	}
	token, _, err := tokens.IssueTTL(m.ID, sess.ID, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	return nil
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
