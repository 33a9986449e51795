package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/embeddedpg"
)

// embeddedDatabase is the database the private cluster serves.
const embeddedDatabase = "picketline"

// database is the PostgreSQL the process uses, with how to let go of it.
type database struct {
	URL     string
	cluster *embeddedpg.Cluster
}

// openDatabase returns DATABASE_URL, or starts the private cluster under
// the data directory when none is set.
func openDatabase(ctx context.Context, cfg config, log *slog.Logger) (*database, error) {
	if cfg.DatabaseURL != "" {
		return &database{URL: cfg.DatabaseURL}, nil
	}
	cluster, err := embeddedpg.Start(ctx, embeddedpg.Options{
		Dir:    filepath.Join(cfg.DataDir, "postgres"),
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	d := &database{URL: cluster.URL(embeddedDatabase), cluster: cluster}
	if err := createDatabase(ctx, cluster.URL("postgres"), embeddedDatabase); err != nil {
		d.Close()
		return nil, err
	}
	log.Info("embedded PostgreSQL running", "port", cluster.Port(), "dir", filepath.Join(cfg.DataDir, "postgres"))
	return d, nil
}

// Close stops the private cluster, if this process started one.
func (d *database) Close() error {
	if d.cluster == nil {
		return nil
	}
	return d.cluster.Stop()
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	return err
}

// migrate applies pending migrations on a connection of its own, which no
// statement timeout cuts short, whatever the database or the URL sets for
// its sessions: a migration may build an index on a big table, and
// waiting for the advisory lock while another replica migrates is no
// fault. The setting goes in the connection's start-up parameters, which
// tern's RESET ALL after each migration returns to.
func migrate(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	cfg.RuntimeParams["statement_timeout"] = "0"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	defer conn.Close(context.Background())
	return db.Migrate(ctx, conn)
}

// newPool opens the connection pool every use-case runs on.
func newPool(ctx context.Context, url string, maxConns int, statementTimeout time.Duration) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	// A runaway statement or a transaction left open must not hold locks
	// that every sign-up on a shift waits for. PostgreSQL counts whole
	// milliseconds, and 0 would mean no limit: round up.
	ms := (statementTimeout + time.Millisecond - 1) / time.Millisecond
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(int64(ms), 10)
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "30s"
	cfg.ConnConfig.RuntimeParams["application_name"] = "picketline"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return pool, nil
}

// openStore opens the database, migrates it and returns a store on it, for
// the operator commands.
func openStore(ctx context.Context, cfg config, log *slog.Logger) (*db.Store, func(), error) {
	d, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := migrate(mctx, d.URL); err != nil {
		d.Close()
		return nil, nil, err
	}
	pool, err := newPool(ctx, d.URL, 4, cfg.DBStatementTimeout)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	closeAll := func() {
		pool.Close()
		d.Close()
	}
	return db.NewStore(pool, db.WallClock(), pepper(cfg.JWTSecret)), closeAll, nil
}
