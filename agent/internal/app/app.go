// Package app wires the agent together — NATS, publisher, collectors and
// the HTTP API — and runs it with an ordered, bounded shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kestrel-mon/kestrel/agent/internal/collect"
	"github.com/kestrel-mon/kestrel/agent/internal/config"
	"github.com/kestrel-mon/kestrel/agent/internal/publish"
	"github.com/kestrel-mon/kestrel/agent/internal/push"
	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Bounds of the shutdown steps other than the retry-queue flush
// (publish.flush_timeout).
const (
	httpStopTimeout  = 5 * time.Second
	natsDrainTimeout = 5 * time.Second
)

// App is a configured agent.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	subject string

	nc             *nats.Conn
	stopConnecting context.CancelFunc
	pub            *publish.Publisher
	col            *collect.Collector
	ln             net.Listener
	srv            *http.Server
}

// New builds every part: it connects to NATS (the agent starts while
// NATS is down; batches wait in the retry queue) and listens on
// http.listen. ctx bounds connecting: New returns ctx's error when ctx is
// done (SIGTERM) before NATS answered, and NATS is not dialled again once
// it is done. Run starts the work.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	subjects, err := proto.NewSubjects(cfg.NATS.SubjectPrefix)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, subject: subjects.Ingest(cfg.Hostname)}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Connecting stops on ctx or when the shutdown starts (Run).
	connCtx, stopConnecting := context.WithCancel(ctx)
	var kick atomic.Pointer[publish.Publisher] // re-send the retry queue as soon as NATS is there
	nc, err := natsconn.Connect(connCtx, cfg.NATS, natsconn.Options{
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
		stopConnecting()
		return nil, err
	}
	a.nc, a.stopConnecting = nc, stopConnecting
	if !nc.IsConnected() {
		log.Info("nats not connected yet, will keep trying; batches wait in the retry queue")
	}
	a.pub, err = publish.New(publish.Config{
		Subject:        a.subject,
		MsgIDPrefix:    publish.NewMsgIDPrefix(cfg.Hostname),
		Timeout:        cfg.Publish.Timeout,
		MaxPayload:     cfg.Publish.MaxPayload,
		MaxBatches:     cfg.Retry.MaxBatches,
		MaxBytes:       cfg.Retry.MaxBytes,
		InitialBackoff: cfg.Retry.InitialBackoff,
		MaxBackoff:     cfg.Retry.MaxBackoff,
	}, nc, publish.NewMetrics(reg), log)
	if err != nil {
		a.closeNATS()
		return nil, err
	}
	kick.Store(a.pub)

	a.col = collect.New(cfg.Hostname, cfg.Tags, cfg.Step, collect.NewMetrics(reg), log)
	ph := push.NewHandler(push.Defaults{Endpoint: cfg.Hostname, Step: int32(cfg.Step)},
		cfg.HTTP.MaxBodyBytes, a.pub, push.NewMetrics(reg), log)
	health := func() (bool, string) {
		if s := nc.Status(); s != nats.CONNECTED {
			return false, "nats not connected: " + s.String()
		}
		return true, ""
	}
	a.srv = &http.Server{
		Handler:           push.NewMux(ph, health, reg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	if a.ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		a.pub.Stop(canceled())
		a.closeNATS()
		return nil, fmt.Errorf("cannot listen on http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	return a, nil
}

// Addr is the address the HTTP API listens on.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Run serves and collects until ctx is done or a part fails, then shuts
// down in order: HTTP, collection, retry-queue flush, NATS drain, each
// step logged with how long it took. It returns the failure, if any.
func (a *App) Run(ctx context.Context) error {
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	colCtx, colCancel := context.WithCancel(context.Background())
	defer colCancel()
	var colWG sync.WaitGroup
	colWG.Go(func() { a.col.Run(colCtx, a.pub.Enqueue) })
	a.log.Info("agent started", "hostname", a.cfg.Hostname, "step", a.cfg.Step,
		"http", a.Addr(), "subject", a.subject, "startup", time.Since(start))

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case runErr = <-errc:
		a.log.Error("shutting down after failure", "err", runErr)
	}
	// NATS is not dialled again from here on: a stop while NATS is
	// unreachable does not wait for it.
	a.stopConnecting()

	sd := run.NewShutdown(a.log, httpStopTimeout+a.cfg.Publish.FlushTimeout+natsDrainTimeout)
	sd.Step("stop http", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, httpStopTimeout)
		defer cancel()
		if err := a.srv.Shutdown(ctx); err != nil {
			_ = a.srv.Close()
			return err
		}
		return nil
	})
	sd.Step("stop collection", func(context.Context) error {
		colCancel()
		colWG.Wait()
		return nil
	})
	sd.Step("flush retry queue", a.flush)
	sd.Step("drain nats", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, natsDrainTimeout)
		defer cancel()
		return a.drain(ctx)
	})
	return errors.Join(runErr, sd.Err())
}

// flush publishes the retry queue for up to publish.flush_timeout and
// drops (and counts) what is left. A dropped batch is logged, not a failed
// step: the agent stops as configured.
func (a *App) flush(ctx context.Context) error {
	flushFor := a.cfg.Publish.FlushTimeout
	if !a.nc.IsConnected() {
		flushFor = 0 // nothing can be published: do not wait
	}
	ctx, cancel := context.WithTimeout(ctx, flushFor)
	defer cancel()
	if batches, points := a.pub.Stop(ctx); batches > 0 {
		a.log.Warn("retry queue not flushed, dropped", "batches", batches, "points", points)
	}
	return nil
}

// drain drains the connection; one that is not connected is closed.
func (a *App) drain(ctx context.Context) error {
	err := natsconn.Drain(ctx, a.nc)
	if errors.Is(err, nats.ErrConnectionReconnecting) {
		a.log.Info("nats not connected, closed without draining")
		return nil
	}
	return err
}

// closeNATS stops connecting and closes the connection (New failed).
func (a *App) closeNATS() {
	a.stopConnecting()
	a.nc.Close()
}

// canceled is a done context: Stop the publisher without flushing.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
