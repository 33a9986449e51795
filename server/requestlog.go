package main

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/metrics"
)

// requestRecordKey finds a request's requestRecord in its context.
type requestRecordKey struct{}

// requestRecord is what the handlers tell the request's log line.
type requestRecord struct {
	// operation describes the GraphQL operation the request was, if any.
	operation []slog.Attr
}

// otherRoute names, in logs and metrics, a path the server does not serve.
const otherRoute = "other"

// probes are answered too often to log each success at info.
var probes = map[string]bool{"/livez": true, "/readyz": true}

// logRequests writes one log line per HTTP request, when it is answered
// (a websocket's, when it closes): its id, method, route, status and
// duration, and for a GraphQL operation its root fields, kind and result
// code. Paths are logged only as the route they matched, never as sent,
// and nothing of the query string, the headers or the body is logged.
func logRequests(log *slog.Logger, m *metrics.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &requestRecord{}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), requestRecordKey{}, rec))
		next.ServeHTTP(sw, r)
		// The mux records the pattern it matched on this very request: the
		// handlers between here and it pass the request on unchanged.
		route := routeOf(r.Pattern)
		status := sw.result()
		m.HTTPRequest(route, status)
		level := slog.LevelInfo
		if probes[route] && status == http.StatusOK {
			level = slog.LevelDebug
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("requestId", db.RequestID(r.Context())),
			slog.String("method", methodOf(r.Method)),
			slog.String("path", route),
			slog.Int("status", status),
			durationAttr(time.Since(start)),
		}
		if rec.operation != nil {
			attrs = append(append(attrs, slog.String("transport", "http")), rec.operation...)
		}
		log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// routeOf turns a mux pattern ("POST /graphql", "GET /{$}") into the path
// it serves; a request that matched none (404, 405) is otherRoute.
func routeOf(pattern string) string {
	if pattern == "" {
		return otherRoute
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	return strings.TrimSuffix(pattern, "{$}")
}

// methodOf keeps the methods of HTTP; a client may send any word.
func methodOf(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return otherRoute
}

// statusWriter notes the status of an answer. It lets the websocket
// upgrade take the connection over, which answers 101 on its own.
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack hands the connection to the websocket upgrade.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	w.hijacked = err == nil
	return conn, rw, err
}

// Flush sends what was written so far.
func (w *statusWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) result() int {
	switch {
	case w.hijacked:
		return http.StatusSwitchingProtocols
	case w.status == 0:
		return http.StatusOK
	}
	return w.status
}
