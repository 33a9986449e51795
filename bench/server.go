package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// moduleRoot returns the directory of the Picketline module, so the bench
// can be run from anywhere inside it.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the bench inside the picketline module (go run ./bench)")
	}
	return filepath.Dir(mod), nil
}

// revision names the code under test: the commit, and whether the
// server's packages had uncommitted changes.
func revision(ctx context.Context) string {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "unknown"
	}
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	rev := strings.TrimSpace(string(out))
	dirty, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--", "db", "graph", "server", "go.mod").Output()
	if err == nil && len(bytes.TrimSpace(dirty)) > 0 {
		rev += " with uncommitted changes in db, graph, server or go.mod"
	}
	return rev
}

// buildServer compiles ./server into dir and returns the binary's path.
func buildServer(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "picketline")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./server: %w\n%s", err, out)
	}
	return bin, nil
}

// serverProc is the Picketline server running as a child process.
type serverProc struct {
	cmd *exec.Cmd
	// URL is the server's base URL, http://127.0.0.1:<port>.
	URL  string
	done chan struct{}
	err  error // of Wait, once done is closed
	stop sync.Once
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs the server binary with the bench's configuration on top
// of this process's environment, and waits until /readyz answers 200 (the
// server has applied its migrations by then).
func startServer(ctx context.Context, bin string, env map[string]string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env["HOST"] = "127.0.0.1"
	env["PORT"] = strconv.Itoa(port)
	cmd := exec.Command(bin, "serve")
	cmd.Env = environ(env)
	cmd.Stdout = io.Discard
	cmd.Stderr = &prefixWriter{w: os.Stderr, prefix: "  server| "}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &serverProc{cmd: cmd, URL: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx, 2*time.Minute); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// environ is this process's environment with env on top.
func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); env[k] == "" {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// mintTokens runs `picketline token --emails -` with the bench's server
// environment: the command starts a session for the member of each email
// and prints a token for it, valid for tokenTTL, one a line in order.
func mintTokens(ctx context.Context, bin string, env map[string]string, emails []string) ([]string, error) {
	cmd := exec.CommandContext(ctx, bin, "token", "--emails", "-", "--ttl", tokenTTL.String())
	cmd.Env = environ(env)
	cmd.Stdin = strings.NewReader(strings.Join(emails, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("picketline token --emails: %w\n%s", err, stderr.Bytes())
	}
	tokens := strings.Fields(string(out))
	if len(tokens) != len(emails) {
		return nil, fmt.Errorf("picketline token --emails printed %d tokens for %d emails", len(tokens), len(emails))
	}
	return tokens, nil
}

// PID is the server's process id.
func (s *serverProc) PID() int { return s.cmd.Process.Pid }

func (s *serverProc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(s.URL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("the server exited before it was ready: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server was not ready after %s", timeout)
		}
	}
}

// Stop sends SIGTERM and waits for the server to drain and exit, killing it
// if it takes longer than its drain timeout allows.
func (s *serverProc) Stop() error {
	var err error
	s.stop.Do(func() {
		select {
		case <-s.done:
			err = s.err
			return
		default:
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			err = s.err
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
			err = errors.New("the server did not stop within 30s of SIGTERM and was killed")
		}
	})
	return err
}

// prefixWriter prefixes every line written through it, so the server's
// warnings stand out from the bench's own output.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
}
