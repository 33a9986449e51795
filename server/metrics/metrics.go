// Package metrics holds the process's Prometheus metrics: what the GraphQL
// operations, the websockets, the push worker, the login emails and the
// database pool are doing, on a registry of the process's own (never the
// global one, so servers started side by side in tests count apart).
//
// Every label takes values from a fixed set: the schema's root field
// names, the error codes of the API, the transports, the push results and
// the routes. Nothing a client writes becomes a label.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/picketline/picketline/server/push"
)

// namespace prefixes every metric of the server's own.
const namespace = "picketline"

// Metrics are one process's metrics. The zero value is not usable; New
// makes them.
type Metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	rateLimited   *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	subscriptions prometheus.Gauge
	events        prometheus.Counter
	// pushResults is indexed by push.Result: a send costs an atomic add,
	// not a label lookup under the vector's lock.
	pushResults []prometheus.Counter
	emailsSent  prometheus.Counter
	emailsFail  prometheus.Counter
}

// New returns the metrics on a fresh registry, with the Go runtime's and
// the process's own collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "graphql", Name: "requests_total",
		Help: "GraphQL operations finished, by root field, result code and transport (http or ws).",
	}, []string{"operation", "code", "transport"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "graphql", Name: "request_duration_seconds",
		Help:    "How long GraphQL operations took, by root field, result code and transport; a subscription's is its lifetime.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"operation", "code", "transport"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "rate_limited_total",
		Help: "GraphQL operations refused with RATE_LIMITED, by root field.",
	}, []string{"operation"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by route (other for paths the server does not serve) and status.",
	}, []string{"route", "status"})
	m.subscriptions = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "graphql", Name: "subscriptions_active",
		Help: "GraphQL subscriptions running on this process's websockets.",
	})
	m.events = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "events_delivered_total",
		Help: "Events sent to subscribers.",
	})
	pushResults := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "push", Name: "results_total",
		Help: "Push messages handed to FCM, by result: delivered, token_gone, rejected, retryable, dead.",
	}, []string{"result"})
	for _, r := range push.Results {
		m.pushResults = append(m.pushResults, pushResults.WithLabelValues(r.String()))
	}
	m.emailsSent = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "login_emails", Name: "sent_total",
		Help: "Login-code emails the SMTP server accepted.",
	})
	m.emailsFail = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "login_emails", Name: "failed_total",
		Help: "Login-code emails given up on after their last attempt.",
	})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency, m.rateLimited, m.httpRequests, m.subscriptions, m.events,
		pushResults, m.emailsSent, m.emailsFail,
	)
	return m
}

// Handler serves the metrics in Prometheus's text format. A collector that
// fails (the database did not answer in time) is logged and left out; the
// rest are served.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Operation counts one finished GraphQL operation. operation must be a
// root field of the schema or "other", code one of the API's error codes
// or "OK", transport "http" or "ws".
func (m *Metrics) Operation(operation, code, transport string, took time.Duration) {
	m.requests.WithLabelValues(operation, code, transport).Inc()
	m.latency.WithLabelValues(operation, code, transport).Observe(took.Seconds())
	if code == "RATE_LIMITED" {
		m.rateLimited.WithLabelValues(operation).Inc()
	}
}

// HTTPRequest counts one answered HTTP request; route is a route the
// server serves, or "other".
func (m *Metrics) HTTPRequest(route string, status int) {
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

// SubscriptionStarted and SubscriptionEnded keep the count of running
// subscriptions.
func (m *Metrics) SubscriptionStarted() { m.subscriptions.Inc() }

// SubscriptionEnded: see SubscriptionStarted.
func (m *Metrics) SubscriptionEnded() { m.subscriptions.Dec() }

// EventDelivered counts one event sent to a subscriber.
func (m *Metrics) EventDelivered() { m.events.Inc() }

// PushResult counts one send of the push worker; it is the worker's
// ObserveResults hook.
func (m *Metrics) PushResult(r push.Result) { m.pushResults[r].Inc() }

// LoginEmailSent counts a login-code email the SMTP server accepted.
func (m *Metrics) LoginEmailSent() { m.emailsSent.Inc() }

// LoginEmailFailed counts a login-code email given up on.
func (m *Metrics) LoginEmailFailed() { m.emailsFail.Inc() }
