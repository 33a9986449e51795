package metrics

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/picketline/picketline/db"
)

// outboxTimeout bounds the outbox count of one scrape: a database that
// does not answer costs the scrape that metric, not the scrape itself.
const outboxTimeout = 2 * time.Second

// Sources are the parts of the process read at each scrape.
type Sources struct {
	// Websockets tells how many websockets are open.
	Websockets func() int
	// Pool is the database pool.
	Pool *pgxpool.Pool
	// Outbox counts the push outbox's backlog; the outbox is shared by every
	// replica, so each reports the same numbers.
	Outbox func(ctx context.Context) (db.PushBacklog, error)
}

// Watch registers the gauges read from s at each scrape.
func (m *Metrics) Watch(s Sources) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "websockets_open",
			Help: "Websockets open on this process.",
		}, func() float64 { return float64(s.Websockets()) }),
		poolCollector{s.Pool},
		outboxCollector{s.Outbox},
	)
}

var outboxDesc = prometheus.NewDesc(namespace+"_push_outbox_messages",
	"Push outbox messages by status: pending (waiting for a worker), sending (claimed), dead (out of attempts).",
	[]string{"status"}, nil)

// outboxCollector counts the outbox when scraped, so an idle server asks
// the database nothing.
type outboxCollector struct {
	count func(ctx context.Context) (db.PushBacklog, error)
}

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- outboxDesc }

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxTimeout)
	defer cancel()
	b, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxDesc, err)
		return
	}
	for status, n := range map[string]int{"pending": b.Pending, "sending": b.Sending, "dead": b.Dead} {
		ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(n), status)
	}
}

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_db_pool_"+name, help, nil, nil)
}

var (
	poolAcquired     = poolDesc("acquired_connections", "Connections in use.")
	poolIdle         = poolDesc("idle_connections", "Connections open and unused.")
	poolTotal        = poolDesc("total_connections", "Connections open, or being opened.")
	poolMax          = poolDesc("max_connections", "The pool's size (DATABASE_MAX_CONNS).")
	poolAcquires     = poolDesc("acquires_total", "Connections taken from the pool.")
	poolAcquireTime  = poolDesc("acquire_seconds_total", "Time spent taking connections from the pool, waits included.")
	poolEmptyAcquire = poolDesc("empty_acquires_total", "Takes that found no idle connection and waited for one.")
	poolCanceled     = poolDesc("canceled_acquires_total", "Takes abandoned before a connection came free.")
)

// poolCollector reads pgxpool's statistics when scraped.
type poolCollector struct{ pool *pgxpool.Pool }

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax, poolAcquires, poolAcquireTime, poolEmptyAcquire, poolCanceled} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(poolAcquired, float64(s.AcquiredConns()))
	gauge(poolIdle, float64(s.IdleConns()))
	gauge(poolTotal, float64(s.TotalConns()))
	gauge(poolMax, float64(s.MaxConns()))
	counter(poolAcquires, float64(s.AcquireCount()))
	counter(poolAcquireTime, s.AcquireDuration().Seconds())
	counter(poolEmptyAcquire, float64(s.EmptyAcquireCount()))
	counter(poolCanceled, float64(s.CanceledAcquireCount()))
}
