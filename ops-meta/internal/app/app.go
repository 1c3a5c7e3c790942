// Package app wires ops-meta together and runs it with an ordered,
// bounded shutdown (lib/run).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/config"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/server"
	"github.com/kestrel-mon/kestrel/ops-meta/internal/store"
)

const (
	// openTimeout bounds opening (and migrating) the MySQL store.
	openTimeout = 30 * time.Second
	// shutdownTimeout bounds the shutdown; draining HTTP takes most of it.
	shutdownTimeout = 10 * time.Second
)

// App is a configured ops-meta.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	st      store.Store
	srv     *server.Server
	ln      net.Listener
	httpSrv *http.Server
}

// New opens the store (MySQL, or memory without mysql.dsn), builds the
// server, starts the file's rollouts the store does not have yet, and
// listens on http.listen. cfg's file is the one Reload re-reads.
func New(cfg config.Config, log *slog.Logger, version string) (*App, error) {
	a := &App{cfg: cfg, log: log, version: version}
	if cfg.MySQL.DSN != "" {
		ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
		m, err := store.OpenMySQL(ctx, cfg.MySQL.DSN, cfg.MySQL.MaxOpenConns)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cannot open the mysql store: %w", err)
		}
		a.st = m
		log.Info("inventory in mysql", "schema_version", store.SchemaVersion())
	} else {
		a.st = store.NewMemory()
		log.Info("inventory in memory (set mysql.dsn to keep it)")
	}
	instance, _ := os.Hostname()
	a.srv = server.New(server.Options{Config: &a.cfg, ConfigPath: cfg.File(), Store: a.st, Logger: log, Instance: instance})
	if err := a.srv.SyncFileRollouts(context.Background()); err != nil {
		log.Error("cannot start the file's rollouts", "err", err)
	}
	if cfg.AdminToken == "" {
		log.Warn("admin_token is empty: rollout and reload endpoints are disabled")
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		_ = a.st.Close()
		return nil, fmt.Errorf("cannot listen on http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	a.ln = ln
	a.httpSrv = &http.Server{Handler: a.srv.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: cfg.HTTP.ReadTimeout, WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: 2 * time.Minute}
	return a, nil
}

// HTTPAddr returns the address the HTTP server listens on.
func (a *App) HTTPAddr() string { return a.ln.Addr().String() }

// Server returns the HTTP side (heartbeats, API, rollout evaluation).
func (a *App) Server() *server.Server { return a.srv }

// Reload re-reads the config file; a bad file keeps the old config (the
// server logs why and counts it).
func (a *App) Reload(ctx context.Context) error {
	a.log.Info("reloading config", "file", a.cfg.File())
	return a.srv.Reload(ctx)
}

// Run serves heartbeats and the API and evaluates rollouts until ctx ends
// or the HTTP server fails, then shuts down in order: drain HTTP, stop
// the rollout evaluation, close the store.
func (a *App) Run(ctx context.Context) error {
	httpErr := make(chan error, 1)
	go func() { httpErr <- a.httpSrv.Serve(a.ln) }()
	evalCtx, stopEval := context.WithCancel(context.Background())
	evalDone := make(chan struct{})
	go func() { defer close(evalDone); a.srv.Run(evalCtx) }()
	a.log.Info("ops-meta listening", "addr", a.HTTPAddr(), "version", a.version)

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case err := <-httpErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
	}
	sd := run.NewShutdown(a.log, shutdownTimeout)
	sd.Step("stop http", a.httpSrv.Shutdown)
	sd.Step("stop rollout evaluation", func(context.Context) error {
		stopEval()
		<-evalDone // an evaluation round under way finishes its store writes
		return nil
	})
	sd.Step("close store", func(context.Context) error { return a.st.Close() })
	return runErr
}
