package embeddedpg

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNotInstalled is wrapped by errors from FindBinaries and Start when the
// machine has no PostgreSQL server binaries, so callers can fall back (for
// example to DATABASE_URL) or skip tests with errors.Is instead of matching
// message text.
var ErrNotInstalled = errors.New("no PostgreSQL server binaries found")

// requiredBinaries must all live in one directory: pg_ctl locates postgres
// next to itself, and mixing binaries from different majors breaks initdb.
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres"}

// installGlobs lists where packagers put the server binaries outside PATH.
// Debian/Ubuntu and RHEL deliberately keep them off PATH, so PATH alone
// misses the most common Linux installs.
var installGlobs = []string{
	"/usr/lib/postgresql/*/bin",                               // Debian/Ubuntu
	"/usr/pgsql-*/bin",                                        // RHEL/Fedora (PGDG)
	"/opt/homebrew/opt/postgresql@*/bin",                      // Homebrew, Apple silicon
	"/usr/local/opt/postgresql@*/bin",                         // Homebrew, Intel
	"/usr/local/pgsql/bin",                                    // source builds
	"/Applications/Postgres.app/Contents/Versions/latest/bin", // Postgres.app
}

// FindBinaries returns the directory holding initdb, pg_ctl and postgres.
// It is exported so that servers can report in diagnostics which
// installation they would use before (or without) starting a cluster.
//
// pg_ctl on PATH wins, because an explicit PATH is the user's way of choosing
// a version; otherwise the usual install folders are tried, newest major
// version first.
func FindBinaries() (binDir string, err error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		// Resolve symlinks first: /usr/local/bin/pg_ctl is often a link into
		// a versioned directory that is the only place postgres lives.
		var dirs []string
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
		for _, d := range dirs {
			if hasBinaries(d) {
				return absOrSelf(d), nil
			}
		}
	}
	for _, pattern := range installGlobs {
		matches, _ := filepath.Glob(pattern) // only ErrBadPattern, impossible for constants
		sortNewestFirst(pattern, matches)
		for _, d := range matches {
			if hasBinaries(d) {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("%w (looked for %s on PATH and in %s): install PostgreSQL 14 or later (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16), or set DATABASE_URL",
		ErrNotInstalled, "initdb, pg_ctl and postgres", strings.Join(installGlobs, ", "))
}

func hasBinaries(dir string) bool {
	for _, name := range requiredBinaries {
		// LookPath with a separator checks just that file, and adds .exe on
		// Windows.
		if _, err := exec.LookPath(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

func absOrSelf(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// sortNewestFirst orders glob matches by the version in the wildcard
// position numerically, so that 10 beats 9.6 and 16 beats 15.
func sortNewestFirst(pattern string, matches []string) {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return
	}
	prefix, suffix := pattern[:star], pattern[star+1:]
	version := func(m string) []int {
		v := strings.TrimSuffix(strings.TrimPrefix(m, prefix), suffix)
		var parts []int
		for _, f := range strings.Split(v, ".") {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil // not a version: sorts last
			}
			parts = append(parts, n)
		}
		return parts
	}
	sort.SliceStable(matches, func(i, j int) bool {
		a, b := version(matches[i]), version(matches[j])
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
}
