// Command ops-updater keeps the agents of one host at the versions ops-meta
// desires: it heartbeats, downloads, verifies, switches, health-checks and
// rolls back. It never updates itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/ops-updater/internal/config"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/install"
	"github.com/kestrel-mon/kestrel/ops-updater/internal/updater"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	cfgPath := flag.String("c", "ops-updater.yaml", "config file")
	showVersion := flag.Bool("version", false, "print the version and exit")
	logLevel := flag.String("log.level", "", "override log.level (debug|info|warn|error)")
	flag.Parse()
	if *showVersion {
		fmt.Printf("ops-updater %s\n", version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ops-updater:", err)
		return 2
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "ops-updater: -log.level:", err)
			return 2
		}
	}
	log := newLogger(cfg.Log)
	log.Info("starting", "version", version, "config", *cfgPath, "hostname", cfg.Hostname, "install_dir", cfg.InstallDir)

	release, err := install.Lock(cfg.InstallDir)
	if err != nil {
		log.Error("cannot lock install dir", "err", err)
		return 1
	}
	defer release()
	u, err := updater.FromConfig(cfg, log, version)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var srv *http.Server
	httpErr := make(chan error, 1)
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			log.Error("cannot listen", "addr", cfg.HTTP.Listen, "err", err)
			return 1
		}
		srv = &http.Server{Handler: u.Handler(), ReadHeaderTimeout: 5 * time.Second}
		log.Info("http listening", "addr", ln.Addr().String())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				httpErr <- err
			}
		}()
	}

	runErr := make(chan error, 1)
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	go func() { runErr <- u.Run(runCtx) }()

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-httpErr:
		log.Error("http server failed", "err", err)
		code = 1
	case err := <-runErr:
		if err != nil {
			log.Error("updater failed", "err", err)
			code = 1
		}
		runErr <- nil
	}
	start := time.Now()
	cancelRun()
	if err := <-runErr; err != nil {
		log.Error("updater failed", "err", err)
		code = 1
	}
	log.Info("updater stopped", "took", time.Since(start).Round(time.Millisecond))
	if srv != nil {
		start = time.Now()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
		log.Info("http stopped", "took", time.Since(start).Round(time.Millisecond))
	}
	return code
}

func newLogger(c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
