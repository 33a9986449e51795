package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picketline/picketline/db/embeddedpg"
)

// pgTarget is the PostgreSQL server the bench runs against, and the
// connection string of a database on it that the bench may use to create
// and drop its own.
type pgTarget struct {
	// Source says how it was found, for the report.
	Source string
	// adminDSN connects to an existing database. It is a URL, a libpq
	// keyword/value string, or empty (all from the PG* environment).
	adminDSN string
	cluster  *embeddedpg.Cluster
	// postmaster is the server's main process when it runs on this
	// machine, for CPU accounting; 0 otherwise.
	postmaster int
}

// findPostgres picks the PostgreSQL to use: DATABASE_URL's server if set,
// else the one the libpq environment (PGHOST and friends) names, else a
// private throwaway cluster started under dir.
func findPostgres(ctx context.Context, dir string) (*pgTarget, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return &pgTarget{Source: "DATABASE_URL", adminDSN: u}, nil
	}
	if os.Getenv("PGHOST") != "" {
		return &pgTarget{Source: "libpq environment (PGHOST=" + os.Getenv("PGHOST") + ")"}, nil
	}
	// When this process is root the cluster runs as an unprivileged user,
	// which must be able to enter dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	c, err := embeddedpg.Start(ctx, embeddedpg.Options{Dir: filepath.Join(dir, "pg"), Fast: true})
	if err != nil {
		return nil, fmt.Errorf("no DATABASE_URL or PGHOST, and the embedded cluster did not start: %w", err)
	}
	return &pgTarget{
		Source:   fmt.Sprintf("embedded cluster (db/embeddedpg, Fast, port %d)", c.Port()),
		adminDSN: c.URL("postgres"),
		cluster:  c,
	}, nil
}

// dsn returns the connection string of database name on the target's
// server, in the same form as the admin connection string.
func (t *pgTarget) dsn(name string) string {
	if strings.HasPrefix(t.adminDSN, "postgres://") || strings.HasPrefix(t.adminDSN, "postgresql://") {
		u, err := url.Parse(t.adminDSN)
		if err == nil {
			u.Path = "/" + name
			u.RawPath = ""
			return u.String()
		}
	}
	// In a keyword/value string the last setting of a keyword wins, and
	// the PG* environment fills in whatever is not set.
	return strings.TrimSpace(t.adminDSN + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(name) + "'")
}

// admin runs fn on a fresh connection to the admin database.
func (t *pgTarget) admin(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, t.adminDSN)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL (%s): %w", t.Source, err)
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

// createDatabase creates an empty database and describes the server.
func (t *pgTarget) createDatabase(ctx context.Context, name string, m *Machine) error {
	return t.admin(ctx, func(c *pgx.Conn) error {
		var backend int
		if err := c.QueryRow(ctx, "SELECT version(), pg_backend_pid()").Scan(&m.Postgres, &backend); err != nil {
			return err
		}
		t.postmaster = postmasterOf(backend)
		var fsync, syncCommit, sharedBuffers, maxConns string
		err := c.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit'),
			current_setting('shared_buffers'), current_setting('max_connections')`).Scan(&fsync, &syncCommit, &sharedBuffers, &maxConns)
		if err != nil {
			return err
		}
		m.PostgresSettings = fmt.Sprintf("fsync=%s synchronous_commit=%s shared_buffers=%s max_connections=%s",
			fsync, syncCommit, sharedBuffers, maxConns)
		_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		return err
	})
}

// dropDatabase drops the bench database, disconnecting whoever is left.
func (t *pgTarget) dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return t.admin(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	})
}

// close stops the private cluster, if the bench started one.
func (t *pgTarget) close() error {
	if t.cluster == nil {
		return nil
	}
	return t.cluster.Stop()
}
