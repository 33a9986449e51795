package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/picketline/picketline/db"
	"github.com/picketline/picketline/server/auth"
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

	tokens, err := auth.NewTokens(cfg.JWTSecret, auth.DefaultTTL, nil)
	if err != nil {
		return err
	}
	dbase, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer dbase.Close()
	pool, err := newPool(ctx, dbase.URL, cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := db.NewStore(pool, db.SystemClock{}, pepper(cfg.JWTSecret))

	var ready atomic.Bool
	srv := &http.Server{
		Handler:           newServer(cfg, log, store, tokens, &ready),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = migrate(mctx, dbase.URL)
	cancel()
	if err != nil {
		srv.Close()
		return fmt.Errorf("migrate: %w", err)
	}
	ready.Store(true)
	log.Info("ready")

	go purgeLoop(ctx, store, log)

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	ready.Store(false)
	log.Info("shutting down", "drainTimeout", cfg.DrainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info("stopped")
	return nil
}

// purgeLoop removes expired login codes, sessions and rate-limit windows.
func purgeLoop(ctx context.Context, store *db.Store, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := store.PurgeExpired(ctx); err != nil && ctx.Err() == nil {
				log.Error("purge expired rows", "err", err)
			}
		}
	}
}
