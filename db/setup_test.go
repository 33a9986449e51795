package db_test

import (
	"testing"

	"github.com/picketline/picketline/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// setup returns the test kit's bundle for a domain test that runs in
// parallel with the others.
func setup(t *testing.T) *dbtest.Bundle {
	t.Helper()
	t.Parallel()
	return dbtest.Setup(t)
}
