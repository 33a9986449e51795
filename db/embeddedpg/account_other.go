//go:build !unix

package embeddedpg

import "os/exec"

// account is never needed off unix: there is no root uid to drop, and
// PostgreSQL's own Windows builds restrict administrator tokens themselves.
type account struct{}

func serviceAccount() (*account, error) { return nil, nil }

func (a *account) String() string { return "the current user" }

func (a *account) configure(cmd *exec.Cmd) {}

func (a *account) chown(path string, recursive bool) error { return nil }

func (a *account) checkTraversable(dir string) error { return nil }
