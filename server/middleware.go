package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
)

// withRequestID gives each request a fresh id and echoes it in X-Request-Id.
// Ids sent by clients are ignored: they would let a client forge log lines.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(db.WithRequestID(r.Context(), id)))
	})
}

// newRequestID returns a fresh random id: 16 characters of base32.
func newRequestID() string { return rand.Text()[:16] }

// requireReady answers 503 until migrations are applied.
func requireReady(ready *atomic.Bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Codes of requests refused before GraphQL reads them.
const (
	codePayloadTooLarge      = "PAYLOAD_TOO_LARGE"
	codeMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	codeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	codeBatchingUnsupported  = "BATCHING_NOT_SUPPORTED"
	codeBadRequest           = "BAD_REQUEST"
)

// checkBody lets through only a JSON object of at most max bytes, so that a
// client cannot make the server read without end, and answers anything
// else with a GraphQL error and a code, never repeating the body: gqlgen's
// own answers to a batch or to broken JSON would.
func checkBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			auth.WriteError(w, r, http.StatusUnsupportedMediaType, "send the request as application/json",
				map[string]any{"code": codeUnsupportedMediaType})
			return
		}
		if r.ContentLength > max {
			tooLarge(w, r, max)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
		if errors.As(err, new(*http.MaxBytesError)) {
			tooLarge(w, r, max)
			return
		}
		if err != nil {
			// The client went away or stalled past the read timeout:
			// drop the connection rather than answer a request never
			// received whole.
			panic(http.ErrAbortHandler)
		}
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		switch {
		case len(trimmed) > 0 && trimmed[0] == '[':
			auth.WriteError(w, r, http.StatusBadRequest, "send one operation a request; batches are not supported",
				map[string]any{"code": codeBatchingUnsupported})
			return
		case len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(bytes.ToValidUTF8(body, []byte("\uFFFD"))):
			auth.WriteError(w, r, http.StatusBadRequest, "the body must be a JSON object: {\"query\": ..., \"variables\": ...}",
				map[string]any{"code": codeBadRequest})
			return
		}
		if problem := requestShape(body); problem != "" {
			auth.WriteError(w, r, http.StatusBadRequest, problem, map[string]any{"code": codeBadRequest})
			return
		}
		// Bytes that are not UTF-8 pass: decoding turns them into U+FFFD,
		// which GraphQL's input check refuses naming the field.
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// requestShape says what is wrong with the members of a request's JSON
// object, or "": gqlgen's own answer to a member of the wrong type has no
// code and quotes the whole body back.
func requestShape(body []byte) string {
	var req map[string]json.RawMessage
	if json.Unmarshal(bytes.ToValidUTF8(body, []byte("\uFFFD")), &req) != nil {
		return "the body must be a JSON object: {\"query\": ..., \"variables\": ...}"
	}
	for _, m := range []struct {
		name, want string
		kind       byte
	}{
		{"query", "a string", '"'},
		{"operationName", "a string", '"'},
		{"variables", "an object", '{'},
		{"extensions", "an object", '{'},
	} {
		v := bytes.TrimSpace(req[m.name])
		if len(v) == 0 || string(v) == "null" && m.name != "query" {
			continue
		}
		if v[0] != m.kind {
			return fmt.Sprintf("%q must be %s", m.name, m.want)
		}
	}
	return ""
}

func tooLarge(w http.ResponseWriter, r *http.Request, max int64) {
	auth.WriteError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over %d bytes", max),
		map[string]any{"code": codePayloadTooLarge})
}

// methodNotAllowed answers what /graphql does not serve: it takes POST,
// and GET only to open a websocket.
func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, POST")
	auth.WriteError(w, r, http.StatusMethodNotAllowed, "use POST with a JSON body, or GET to open a websocket",
		map[string]any{"code": codeMethodNotAllowed})
}

// websocketsOnly sends GET requests that are not websocket upgrades to
// methodNotAllowed: GET never runs queries.
func websocketsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			methodNotAllowed(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic outside GraphQL execution into a 500 with the
// request id, logged with its stack.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				id := db.RequestID(r.Context())
				log.Error("panic", "requestId", id, "panic", p, "stack", string(debug.Stack()))
				http.Error(w, "internal error (request "+id+")", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// cors lets browser apps on the allowed origins call the API. Native apps
// send no Origin and need none of this.
func cors(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(allowed, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", strings.Join([]string{"Authorization", "Content-Type"}, ", "))
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
