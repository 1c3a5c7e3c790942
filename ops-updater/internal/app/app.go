// Package app wires ops-updater together and runs it with an ordered,
// bounded shutdown (lib/run).
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/config"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/install"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/updater"
)

// httpStopTimeout bounds the status server's drain.
const httpStopTimeout = 5 * time.Second

// App is a configured ops-updater holding its install dir's lock.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	release func()
	u       *updater.Updater
	ln      net.Listener // nil when http.listen is ""
	httpSrv *http.Server
}

// New locks the install dir (a second updater on it fails here), builds
// the updater and listens on http.listen.
func New(cfg config.Config, log *slog.Logger, version string) (*App, error) {
	release, err := install.Lock(cfg.InstallDir)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, release: release, u: updater.FromConfig(cfg, log, version)}
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			release()
			return nil, fmt.Errorf("cannot listen on http.listen %s: %w", cfg.HTTP.Listen, err)
		}
		a.ln = ln
		a.httpSrv = &http.Server{Handler: a.u.Handler(), ReadHeaderTimeout: 5 * time.Second}
	}
	return a, nil
}

// HTTPAddr returns the address the status server listens on ("" when
// http.listen is "").
func (a *App) HTTPAddr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Run heartbeats and serves until ctx ends or a part fails, then shuts
// down in order: stop heartbeating and let the installs under way finish
// (a download is abandoned, a health wait rolled back; bounded by
// control_timeout), stop HTTP, release the install dir.
func (a *App) Run(ctx context.Context) error {
	httpErr := make(chan error, 1)
	if a.ln != nil {
		a.log.Info("http listening", "addr", a.ln.Addr().String())
		go func() { httpErr <- a.httpSrv.Serve(a.ln) }()
	}
	runCtx, stopUpdater := context.WithCancel(ctx)
	defer stopUpdater()
	updErr := make(chan error, 1)
	go func() { updErr <- a.u.Run(runCtx) }()

	var runErr error
	updaterDone := false
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case err := <-httpErr: // Serve returns only on failure before Shutdown
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-updErr:
		updaterDone = true
		if err != nil {
			runErr = fmt.Errorf("updater: %w", err)
		}
	}
	// A rollback on the way out runs ./control stop and start, each
	// bounded by control_timeout; HTTP gets what remains, at least
	// httpStopTimeout after a quick stop.
	sd := run.NewShutdown(a.log, 2*a.cfg.ControlTimeout+httpStopTimeout)
	sd.Step("stop updater", func(context.Context) error {
		stopUpdater()
		if updaterDone {
			return nil
		}
		// The installs under way are bounded by control_timeout, not by
		// the shutdown's deadline: an agent is never left half switched.
		if err := <-updErr; err != nil && runErr == nil {
			runErr = fmt.Errorf("updater: %w", err)
		}
		return nil
	})
	if a.httpSrv != nil {
		sd.Step("stop http", a.httpSrv.Shutdown)
	}
	sd.Step("release install dir", func(context.Context) error { a.release(); return nil })
	return runErr
}
