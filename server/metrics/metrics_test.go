package metrics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/push"
)

// watched returns metrics watching a pool that never connects (statistics
// need no connection) and an outbox counted by count.
func watched(t *testing.T, count func(context.Context) (db.PushBacklog, error)) *Metrics {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	m := New()
	m.Watch(Sources{Websockets: func() int { return 2 }, Pool: pool, Outbox: count})
	return m
}

func TestMetricsFollowPrometheusNaming(t *testing.T) {
	m := watched(t, func(context.Context) (db.PushBacklog, error) { return db.PushBacklog{Pending: 4}, nil })
	m.Operation("me", "OK", "http", time.Millisecond)
	m.HTTPRequest("/graphql", 401)
	for _, r := range push.Results {
		m.PushResult(r)
	}
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestPushResultsAreCountedByClass(t *testing.T) {
	m := New()
	m.PushResult(push.Delivered)
	m.PushResult(push.Delivered)
	m.PushResult(push.Dead)
	for r, want := range map[push.Result]float64{push.Delivered: 2, push.Dead: 1, push.Retryable: 0} {
		if got := testutil.ToFloat64(m.pushResults[r]); got != want {
			t.Errorf("%s: %v, want %v", r, got, want)
		}
	}
}

func TestAnOutboxThatDoesNotAnswerCostsOnlyItsOwnMetric(t *testing.T) {
	m := watched(t, func(context.Context) (db.PushBacklog, error) {
		return db.PushBacklog{}, errors.New("database unreachable")
	})
	var log bytes.Buffer
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.NewTextHandler(&log, nil))).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "picketline_websockets_open 2") || !strings.Contains(body, "picketline_db_pool_max_connections 3") {
		t.Fatalf("HTTP %d, want the other metrics served:\n%s", rec.Code, body)
	}
	if strings.Contains(body, "picketline_push_outbox_messages{") {
		t.Errorf("the outbox's metric served without a count:\n%s", body)
	}
	if !strings.Contains(log.String(), "database unreachable") {
		t.Errorf("the failure is not logged: %q", log.String())
	}
}
