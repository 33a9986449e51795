// Package dbtest gives each test its own freshly migrated PostgreSQL
// database, so tests run in parallel and never see each other's data.
//
// The server is the one named by DATABASE_URL, else by the libpq PG*
// variables when PGHOST is set, else a private cluster started from the
// machine's PostgreSQL binaries for the life of the test binary (packages
// using it call Main from TestMain so that cluster is stopped).
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/db/embeddedpg"
)

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	cluster    *embeddedpg.Cluster
	clusterDir string

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// Main runs the tests and stops the private cluster, if one was started.
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "dbtest: stop private PostgreSQL:", err)
		} else {
			os.RemoveAll(clusterDir)
		}
	}
	os.Exit(code)
}

// server returns a URL of the maintenance database of the test server.
func server() (string, error) {
	serverOnce.Do(func() {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			serverURL, serverErr = withDatabase(u, "postgres")
			return
		}
		if os.Getenv("PGHOST") != "" {
			cfg, err := pgx.ParseConfig("")
			if err != nil {
				serverErr = err
				return
			}
			serverURL = (&url.URL{
				Scheme:   "postgres",
				User:     url.UserPassword(cfg.User, cfg.Password),
				Host:     fmt.Sprintf("%s:%d", cfg.Host, cfg.Port),
				Path:     "/postgres",
				RawQuery: "sslmode=disable",
			}).String()
			if strings.HasPrefix(cfg.Host, "/") {
				serverURL = fmt.Sprintf("postgres:///postgres?host=%s&port=%d&user=%s&sslmode=disable", url.QueryEscape(cfg.Host), cfg.Port, url.QueryEscape(cfg.User))
			}
			return
		}
		dir, err := os.MkdirTemp("", "picketline-testpg-")
		if err != nil {
			serverErr = err
			return
		}
		// MkdirTemp makes the directory 0700; when tests run as root the
		// cluster runs as an unprivileged user who must be able to enter it.
		if err := os.Chmod(dir, 0o711); err != nil {
			serverErr = err
			return
		}
		clusterDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cluster, serverErr = embeddedpg.Start(ctx, embeddedpg.Options{Dir: dir, Fast: true})
		if serverErr == nil {
			serverURL = cluster.URL("postgres")
		}
	})
	return serverURL, serverErr
}

// withDatabase returns u with its database replaced.
func withDatabase(u, database string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("dbtest: DATABASE_URL must be a URL: %w", err)
	}
	parsed.Path = "/" + database
	return parsed.String(), nil
}

// migrationsHash names the template after the migrations it holds, so every
// test binary and every run with the same migrations shares one template.
func migrationsHash() (string, error) {
	h := sha256.New()
	root := filepath.Join(moduleRoot(), "db", "migrations")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", d.Name(), len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// template makes sure a migrated template database exists and returns its
// name. Creation runs under an advisory lock and ends with a rename, so
// concurrent test binaries never see a half-migrated template.
func template(ctx context.Context, admin string) (string, error) {
	templateOnce.Do(func() {
		hash, err := migrationsHash()
		if err != nil {
			templateErr = err
			return
		}
		name := "picketline_tpl_" + hash
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			templateErr = err
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7411)`); err != nil {
			templateErr = err
			return
		}
		defer conn.Exec(ctx, `SELECT pg_advisory_unlock(7411)`)
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
			templateErr = err
			return
		}
		if !exists {
			templateErr = buildTemplate(ctx, conn, admin, name)
		}
		templateName = name
	})
	return templateName, templateErr
}

func buildTemplate(ctx context.Context, conn *pgx.Conn, admin, name string) error {
	building := name + "_building"
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		return err
	}
	u, err := withDatabase(admin, building)
	if err != nil {
		return err
	}
	tc, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	err = db.Migrate(ctx, tc)
	tc.Close(ctx)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name)
	return err
}

// NewDatabase creates a fresh, migrated database for this test, drops it
// when the test ends, and returns its URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := server()
	if err != nil {
		tb.Fatalf("dbtest: no PostgreSQL for tests: %v", err)
	}
	tpl, err := template(ctx, admin)
	if err != nil {
		tb.Fatalf("dbtest: template database: %v", err)
	}
	return newDatabase(tb, admin, tpl)
}

// NewEmptyDatabase creates a fresh database with no migrations applied,
// for testing the migrations themselves, and returns its URL.
func NewEmptyDatabase(tb testing.TB) string {
	tb.Helper()
	admin, err := server()
	if err != nil {
		tb.Fatalf("dbtest: no PostgreSQL for tests: %v", err)
	}
	return newDatabase(tb, admin, "template0")
}

// newDatabase creates a database from template, dropped when the test
// ends.
func newDatabase(tb testing.TB, admin, template string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "picketline_test_" + strings.ToLower(rand.Text()[:16])
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("dbtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+template); err != nil {
		tb.Fatalf("dbtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("dbtest: connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("dbtest: drop %s: %v", name, err)
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// NewPool returns a connection pool on a fresh database, closed when the
// test ends.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return PoolFor(tb, NewDatabase(tb))
}

// PoolFor returns a connection pool on the database at url, closed when the
// test ends.
func PoolFor(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}
