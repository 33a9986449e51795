package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
	"github.com/picketline/picketline/server/mail"
	"github.com/picketline/picketline/server/metrics"
	"github.com/picketline/picketline/server/push"
	"github.com/picketline/picketline/server/realtime"
)

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.dev() {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serve runs the API until ctx is cancelled, then drains: /readyz turns 503
// first so load balancers stop sending, in-flight requests finish within
// the drain timeout, and the database is let go last.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	log.Info("starting picketline", "config", cfg)
	loginSender, err := newLoginSender(cfg, log)
	if err != nil {
		return err
	}

	tokens, err := auth.NewTokens(cfg.JWTSecret, auth.DefaultTTL, nil)
	if err != nil {
		return err
	}
	dbase, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer dbase.Close()
	pool, err := newPool(ctx, dbase.URL, cfg.DBMaxConns, cfg.DBStatementTimeout)
	if err != nil {
		return err
	}
	defer pool.Close()
	// One clock for the store, the hub, the websockets and the push worker:
	// every rule about time reads the same one.
	clock := db.WallClock()
	store := db.NewStore(pool, clock, pepper(cfg.JWTSecret))
	store.SetLimits(cfg.Limits)
	mutations := db.NewMutationLimiter(store, cfg.MutationsPerMemberPerMinute)
	rt := newRealtime(cfg, store, clock, pool, log)
	store.SetNotifier(rt.notifier)
	sender, err := newPushSender(ctx, cfg, clock, log)
	if err != nil {
		return err
	}
	worker := push.NewWorker(store, clock, sender, cfg.Push, log)
	rt.notifier.OnPush = worker.Wake
	mailer := mail.NewWorker(store, clock, loginSender, cfg.LoginEmail, log)
	rt.notifier.OnLoginEmail = mailer.Wake
	m := metrics.New()
	m.Watch(metrics.Sources{
		Websockets: rt.conns.Len,
		Pool:       pool,
		Outbox:     func(ctx context.Context) (db.PushBacklog, error) { return store.PushBacklog(ctx, db.System) },
	})
	worker.ObserveResults(m.PushResult)
	mailer.Metrics = m

	var ready atomic.Bool
	srv := &http.Server{
		Handler:           newServer(cfg, log, m, store, mutations, tokens, rt, &ready),
		ReadHeaderTimeout: cfg.HTTP.ReadHeader,
		ReadTimeout:       cfg.HTTP.Read,
		WriteTimeout:      cfg.HTTP.Write,
		IdleTimeout:       cfg.HTTP.Idle,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	if cfg.DebugAddr != "" {
		dln, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("DEBUG_ADDR: %w", err)
		}
		log.Info("profiler listening", "addr", dln.Addr().String())
		defer serveDebug(dln).Close()
	}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
		defer serveMetrics(mln, m.Handler(log)).Close()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = migrate(mctx, dbase.URL)
	cancel()
	if err != nil {
		srv.Close()
		return fmt.Errorf("migrate: %w", err)
	}
	bg, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	go rt.hub.Run(bg)
	go rt.authority.Run(bg)
	go rt.notifier.Run(bg)
	go rt.notifier.Listen(bg, dbase.URL)
	go rt.conns.KeepAlive(bg, wsPingInterval)
	go rt.admission.Run(bg)
	go purgeLoop(bg, store, clock, db.Retention{Events: cfg.EventRetention}, log)
	var workers sync.WaitGroup
	workers.Go(func() { worker.Run(bg) })
	workers.Go(func() { mailer.Run(bg) })
	if mutations != nil {
		workers.Go(func() { flushMutationsLoop(bg, mutations, clock, log) })
	}
	defer func() { stopBackground(); workers.Wait() }()
	ready.Store(true)
	log.Info("ready")

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	ready.Store(false)
	log.Info("shutting down", "unreadyDelay", cfg.UnreadyDelay, "drainTimeout", cfg.DrainTimeout)
	clock.Sleep(cfg.UnreadyDelay)
	// Websockets are hijacked, so Shutdown does not see them: close them
	// with 1012 so clients reconnect to another replica and resume.
	rt.conns.CloseAll()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// The closed sockets' slots all go in one statement, rather than each
	// waiting its turn or going stale; with time of its own, should the
	// drain have used all of it.
	ectx, cancelEnd := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelEnd()
	if err := rt.admission.EndAll(ectx); err != nil {
		log.Warn("free this replica's websocket slots", "err", err)
	}
	log.Info("stopped")
	return nil
}

// newLoginSender is how login codes reach members: by email through the
// SMTP server, or, in dev only, the log. The settings are checked here, by
// the one command that sends email, before anything starts.
func newLoginSender(cfg config, log *slog.Logger) (mail.Sender, error) {
	switch {
	case cfg.LoginCodeSender == "log" && !cfg.dev():
		return nil, errors.New("APP_ENV=prod refuses LOGIN_CODE_SENDER=log (the default in dev): it writes login codes to the server log, " +
			"where whoever reads it could sign in as anyone; set LOGIN_CODE_SENDER=smtp with SMTP_URL and SMTP_FROM")
	case cfg.LoginCodeSender == "log":
		log.Info("LOGIN_CODE_SENDER=log: login codes are written to this log, not emailed")
		return mail.LogSender{Log: log}, nil
	case cfg.SMTPURL == "":
		return nil, errors.New("LOGIN_CODE_SENDER=smtp needs SMTP_URL, the mail server to send login codes through")
	case cfg.SMTPFrom == "":
		return nil, errors.New("LOGIN_CODE_SENDER=smtp needs SMTP_FROM, the address login emails come from")
	}
	server, err := mail.ParseServer(cfg.SMTPURL)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	from, err := mail.ParseFrom(cfg.SMTPFrom)
	if err != nil {
		return nil, fmt.Errorf("SMTP_FROM: %w", err)
	}
	return mail.NewSMTP(server, from, nil), nil
}

// newPushSender is FCM when a Firebase project is configured, and the log
// otherwise, so the server runs with no configuration at all.
func newPushSender(ctx context.Context, cfg config, clock db.Clock, log *slog.Logger) (push.Sender, error) {
	if cfg.FirebaseProjectID == "" {
		log.Info("no FIREBASE_PROJECT_ID: push notifications are logged, not sent")
		return push.LogSender{Log: log}, nil
	}
	return push.NewFCM(ctx, clock, cfg.FirebaseProjectID, cfg.FCMEndpoint, cfg.FCMEndpoint != "" && cfg.GoogleCredentials == "")
}

// realtimeParts are the live-delivery pieces of one process.
type realtimeParts struct {
	hub       *realtime.Hub
	conns     *realtime.Conns
	authority *realtime.Authority
	notifier  *realtime.Notifier
	admission *realtime.Admission
}

func newRealtime(cfg config, store *db.Store, clock db.Clock, pool *pgxpool.Pool, log *slog.Logger) *realtimeParts {
	hub := realtime.NewHub(store, clock, log)
	conns := realtime.NewConns(clock)
	authority := realtime.NewAuthority(store, hub, conns, clock, log)
	return &realtimeParts{hub: hub, conns: conns, authority: authority, notifier: realtime.NewNotifier(hub, conns, authority, pool, log),
		admission: realtime.NewAdmission(store, clock, log, cfg.WSMaxUnauthenticatedPerAddress, wsInitTimeout)}
}

// purgeInterval is how often the server purges what the retention windows
// no longer keep.
const purgeInterval = 10 * time.Minute

// purgeLoop runs the retention purge every purgeInterval on the clock, the
// same use-case as `picketline purge`.
func purgeLoop(ctx context.Context, store *db.Store, clock db.Clock, retention db.Retention, log *slog.Logger) {
	t := clock.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			report, err := store.Purge(ctx, db.System, retention)
			if err != nil && ctx.Err() == nil {
				log.Error("purge", "err", err)
			}
			if report.Total() > 0 {
				log.Info("purged", purgeAttrs(report)...)
			}
		}
	}
}

// finalFlushTimeout bounds the last flush of the mutation counts when the
// server stops.
const finalFlushTimeout = 2 * time.Second

// flushMutationsLoop shares the mutation counts through the database every
// db.MutationFlushInterval on the clock, and once more when ctx ends, so
// that what this replica admitted last still counts on the others.
func flushMutationsLoop(ctx context.Context, mutations *db.MutationLimiter, clock db.Clock, log *slog.Logger) {
	t := clock.NewTicker(db.MutationFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			if _, err := mutations.FlushMutationCounts(fctx, db.System); err != nil {
				log.Warn("flush mutation counts on stop", "err", err)
			}
			return
		case <-t.Chan():
			n, err := mutations.FlushMutationCounts(ctx, db.System)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Error("flush mutation counts", "err", err)
			case n > 0:
				log.Debug("shared mutation counts", "members", n)
			}
		}
	}
}

// serveMetrics serves the Prometheus metrics on a listener of their own,
// apart from the API, so that prod never shows them to the public.
func serveMetrics(ln net.Listener, metrics http.Handler) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv
}

// purgeAttrs are a purge report's counts as log attributes, one a table.
func purgeAttrs(report db.PurgeReport) []any {
	attrs := make([]any, len(report))
	for i, p := range report {
		attrs[i] = slog.Int64(p.Table, p.Rows)
	}
	return attrs
}

// serveDebug serves Go's profiler on addr, apart from the API, for
// operators measuring a running server; it is off unless DEBUG_ADDR is set.
func serveDebug(ln net.Listener) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv
}
