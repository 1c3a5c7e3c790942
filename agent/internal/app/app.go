// Package app wires the agent together: config, NATS, publisher,
// collectors and the HTTP API, with an ordered, bounded shutdown.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/collect"
	"github.com/kestrel-mon/kestrel/agent/internal/config"
	"github.com/kestrel-mon/kestrel/agent/internal/publish"
	"github.com/kestrel-mon/kestrel/agent/internal/push"
	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Main parses flags and runs the agent until SIGINT/SIGTERM. It returns
// the process exit code.
func Main(name, version string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "config file (YAML); without it the built-in defaults are used")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log.level", "", "override log.level (debug|info|warn|error)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "%s %s\n", name, version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err == nil && *logLevel != "" {
		cfg.Log.Level = *logLevel
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	log := NewLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, version, log, nil); err != nil {
		log.Error("agent failed", "err", err)
		return 1
	}
	return 0
}

// NewLogger builds the slog logger of the log block.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Run runs the agent until ctx is done or a part fails, then shuts down in
// order: HTTP, collection, retry-queue flush, NATS drain. ready, when not
// nil, receives the HTTP listen address once the agent serves.
func Run(ctx context.Context, cfg config.Config, version string, log *slog.Logger, ready chan<- string) error {
	start := time.Now()
	subjects, err := proto.NewSubjects(cfg.NATS.SubjectPrefix)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var kick atomic.Pointer[publish.Publisher] // re-send the retry queue as soon as NATS is back
	nc, err := natsconn.Connect(ctx, cfg.NATS, natsconn.Options{
		Name:    "kestrel-agent " + cfg.Hostname,
		Log:     log,
		Metrics: natsconn.NewMetrics(reg, "kestrel_agent"),
		OnConnect: func(*nats.Conn) {
			if p := kick.Load(); p != nil {
				p.Kick()
			}
		},
		Extra: publish.NATSOptions(),
	})
	if err != nil {
		return err
	}
	defer nc.Close()
	if !nc.IsConnected() {
		log.Warn("nats not reachable yet, will keep trying; batches wait in the retry queue", "urls", cfg.NATS.URLs)
	}

	pub, err := publish.New(publish.Config{
		Subject:        subjects.Ingest(cfg.Hostname),
		MsgIDPrefix:    publish.NewMsgIDPrefix(cfg.Hostname),
		Timeout:        cfg.Publish.Timeout.D(),
		MaxPayload:     cfg.Publish.MaxPayload,
		MaxBatches:     cfg.Retry.MaxBatches,
		MaxBytes:       cfg.Retry.MaxBytes,
		InitialBackoff: cfg.Retry.InitialBackoff.D(),
		MaxBackoff:     cfg.Retry.MaxBackoff.D(),
	}, nc, publish.NewMetrics(reg), log)
	if err != nil {
		return err
	}
	kick.Store(pub)

	col := collect.New(cfg.Hostname, cfg.Tags, cfg.Step, collect.NewMetrics(reg), log)
	ph := push.NewHandler(push.Defaults{Endpoint: cfg.Hostname, Step: int32(cfg.Step)},
		cfg.HTTP.MaxBodyBytes, pub, push.NewMetrics(reg), log)
	health := func() (bool, string) {
		if s := nc.Status(); s != nats.CONNECTED {
			return false, "nats not connected: " + s.String()
		}
		return true, ""
	}
	srv := &http.Server{
		Handler:           push.NewMux(ph, health, reg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on http.listen %s: %w", cfg.HTTP.Listen, err)
	}

	errc := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	colCtx, colCancel := context.WithCancel(context.Background())
	var colWG sync.WaitGroup
	colWG.Go(func() { col.Run(colCtx, pub.Enqueue) })

	log.Info("agent started", "version", version, "hostname", cfg.Hostname, "step", cfg.Step,
		"http", ln.Addr().String(), "subject", subjects.Ingest(cfg.Hostname), "startup", time.Since(start))
	if ready != nil {
		ready <- ln.Addr().String()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("shutting down after failure", "err", runErr)
	}

	step := time.Now()
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := srv.Shutdown(hctx); err != nil {
		log.Warn("http shutdown incomplete", "err", err)
		_ = srv.Close()
	}
	hcancel()
	log.Info("http stopped", "took", time.Since(step))

	step = time.Now()
	colCancel()
	colWG.Wait()
	log.Info("collection stopped", "took", time.Since(step))

	step = time.Now()
	// NATS is not dialled again once ctx is done: when it is not
	// connected now, nothing could be flushed, so do not wait for it.
	flushFor := cfg.Publish.FlushTimeout.D()
	if !nc.IsConnected() {
		flushFor = 0
	}
	fctx, fcancel := context.WithTimeout(context.Background(), flushFor)
	batches, points := pub.Stop(fctx)
	fcancel()
	if batches > 0 {
		log.Warn("retry queue not flushed, dropped", "batches", batches, "points", points, "took", time.Since(step))
	} else {
		log.Info("retry queue flushed", "took", time.Since(step))
	}

	step = time.Now()
	if err := natsconn.Drain(nc, 5*time.Second); err != nil {
		log.Warn("nats not drained", "err", err)
	}
	log.Info("nats closed", "took", time.Since(step))
	return runErr
}
