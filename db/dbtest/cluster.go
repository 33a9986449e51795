package dbtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picketline/picketline/db/embeddedpg"
)

// Cluster is a private PostgreSQL of one test's own, for fault tests that
// stop and start it: it runs on a port of its own even when PGHOST names a
// shared server, so stopping it never touches a server other tests use.
type Cluster struct {
	tb      testing.TB
	dir     string
	port    int
	running *embeddedpg.Cluster
}

// clusterDatabase is the database a Cluster holds for the test.
const clusterDatabase = "picketline"

// StartCluster starts a private cluster with an empty database for the
// test, and stops it when the test ends.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	dir, err := os.MkdirTemp("", "picketline-faultpg-")
	if err != nil {
		tb.Fatal(err)
	}
	// As in the shared cluster: when tests run as root the cluster runs as
	// an unprivileged user who must be able to enter the directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{tb: tb, dir: dir}
	tb.Cleanup(func() {
		c.Stop()
		os.RemoveAll(dir)
	})
	c.Start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.running.URL("postgres"))
	if err != nil {
		tb.Fatalf("dbtest: connect to the private cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+clusterDatabase); err != nil {
		tb.Fatalf("dbtest: create the test's database: %v", err)
	}
	return c
}

// URL is the test's database on the cluster.
func (c *Cluster) URL() string { return c.running.URL(clusterDatabase) }

// Stop shuts the cluster down, as an operator's restart or a failover does:
// open connections are cut and in-flight transactions roll back.
func (c *Cluster) Stop() {
	c.tb.Helper()
	if c.running == nil {
		return
	}
	if err := c.running.Stop(); err != nil {
		c.tb.Errorf("dbtest: stop the private cluster: %v", err)
	}
	c.running = nil
}

// Start starts the cluster again on the same port, with its data.
func (c *Cluster) Start() {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	running, err := embeddedpg.Start(ctx, embeddedpg.Options{Dir: c.dir, Port: c.port, Fast: true})
	if err != nil {
		c.tb.Fatalf("dbtest: start the private cluster: %v", err)
	}
	c.running, c.port = running, running.Port()
}
