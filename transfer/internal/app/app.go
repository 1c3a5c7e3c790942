// Package app wires the transfer together — NATS, the ring parameter
// check, the membership, the stream keeper, the forwarding engine and the
// HTTP API — and runs it with an ordered, bounded shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/deadletter"
	"github.com/kestrel-mon/kestrel/transfer/internal/forward"
	"github.com/kestrel-mon/kestrel/transfer/internal/httpapi"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/ringcheck"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Bounds of the shutdown steps other than forwarding (shutdown_timeout).
const (
	httpStopTimeout  = 5 * time.Second
	natsDrainTimeout = 10 * time.Second
)

// App is a configured transfer.
type App struct {
	cfg  config.Config
	log  *slog.Logger
	subj proto.Subjects
	self string // this transfer in evict messages and dead letters

	nc             *nats.Conn
	stopConnecting context.CancelFunc
	js             jetstream.JetStream
	reg            *prometheus.Registry
	met            *forward.Metrics
	mem            *membership.Membership
	guard          *ringcheck.Guard
	keeper         *stream.Keeper
	ln             net.Listener
	srv            *http.Server
	pub            *ingest.Publisher // nil: no client listener enabled
	listeners      []listener
}

// New builds every part and listens on http.listen. It connects to NATS
// under ctx: the transfer starts while NATS is down (it keeps trying, and
// /health says so); when ctx is done (SIGTERM) before NATS answered, New
// returns ctx's error. Run starts the work.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log, subj: cfg.Subjects(), self: observerID()}
	a.reg = prometheus.NewRegistry()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	connCtx, stopConnecting := context.WithCancel(ctx)
	nc, err := natsconn.Connect(connCtx, cfg.NATS, natsconn.Options{
		Name: "kestrel-transfer", Log: log, Metrics: natsconn.NewMetrics(a.reg, "kestrel_transfer"),
	})
	if err != nil {
		stopConnecting()
		return nil, err
	}
	a.nc, a.stopConnecting = nc, stopConnecting
	a.mem, err = membership.New(membership.Config{
		Timeout: cfg.Membership.Timeout, RejoinHold: cfg.Membership.RejoinHold, SuspectAfter: cfg.Judge.SuspectAfter,
		UnresponsiveAfter: cfg.Judge.UnresponsiveAfter, Self: a.self,
		Ring: ring.Config{PartitionCount: cfg.Ring.PartitionCount, ReplicationFactor: cfg.Ring.ReplicationFactor, Load: cfg.Ring.Load, Hasher: cfg.Ring.Hasher},
	}, log, membership.NewMetrics(a.reg, "kestrel_transfer"))
	if err != nil {
		a.closeNATS()
		return nil, err
	}
	if a.js, err = jetstream.New(nc); err != nil {
		a.closeNATS()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	// The ring parameters must equal the shared bucket's: until they do
	// (and whenever they stop to), nothing is fetched.
	a.guard = ringcheck.New(a.subj.RingBucket(), cfg.RingParams(), ringcheck.NewMismatchGauge(a.reg), log)
	// The stream and the consumer: created (ingest subjects opened only
	// once the consumer exists), then checked every second; a deleted
	// consumer is recreated.
	a.keeper = stream.NewKeeper(a.js, a.subj, cfg.Stream, cfg.Consumer, stream.NewMetrics(a.reg), log)
	a.keeper.Timeout = cfg.NATS.ConnectTimeout + 5*time.Second
	a.met = forward.NewMetrics(a.reg)
	if a.ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		a.closeNATS()
		return nil, fmt.Errorf("cannot listen on http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	var handler http.Handler = httpapi.Handler(nc, a.mem, a.keeper, a.guard, a.reg)
	if ingestEnabled(cfg.Ingest) {
		a.pub = a.newPublisher()
		if handler, err = a.startListeners(handler); err != nil {
			_ = a.stopIngest(context.Background())
			_ = a.ln.Close()
			a.closeNATS()
			return nil, err
		}
	}
	a.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	return a, nil
}

// HTTPAddr is the address the HTTP API listens on.
func (a *App) HTTPAddr() string { return a.ln.Addr().String() }

// Run forwards until ctx is done or a part fails, then shuts down in
// order — forwarding (held messages handed back), membership and stream
// keeper, HTTP, NATS — each step logged with how long it took.
func (a *App) Run(ctx context.Context) error {
	errc := make(chan error, 4)
	go func() {
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	a.log.Info("http listening", "addr", a.HTTPAddr())

	// Membership, the ring parameter check and the stream keeper run until
	// the engine has stopped (they are what it routes by and fetches from).
	bgCtx, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	var bg sync.WaitGroup
	bg.Go(func() {
		if err := a.mem.Run(bgCtx, a.nc, a.subj.Members()); err != nil {
			errc <- err
		}
	})
	bg.Go(func() {
		_ = a.guard.Run(bgCtx, a.js, a.cfg.Ring.BucketReplicas, a.cfg.NATS.ConnectTimeout+5*time.Second)
	})
	bg.Go(func() { _ = a.keeper.Run(bgCtx) })

	engCtx, stopEng := context.WithCancel(context.Background())
	defer stopEng()
	engDone := make(chan struct{})
	var runErr error
	select {
	case <-a.keeper.Ready():
		eng := a.engine()
		cons := a.keeper.Consumer()
		go func() {
			defer close(engDone)
			if err := eng.Run(engCtx, cons); err != nil {
				errc <- err
			}
		}()
		a.log.Info("forwarding", "stream", a.subj.Stream(), "consumer", cons.CachedInfo().Name)
		select {
		case <-ctx.Done():
			a.log.Info("signal received: shutting down")
		case runErr = <-errc:
			a.log.Error("component failed: shutting down", "err", runErr)
		}
	case <-ctx.Done():
		a.log.Info("stopped before the stream was ready", "reason", a.keeper.NotReady())
		close(engDone)
	case runErr = <-errc:
		a.log.Error("component failed before the stream was ready: shutting down", "err", runErr)
		close(engDone)
	}
	// NATS is not dialled again from here on.
	a.stopConnecting()

	sd := run.NewShutdown(a.log, a.cfg.ShutdownTimeout+a.cfg.Ingest.PublishTimeout+httpStopTimeout+natsDrainTimeout+5*time.Second)
	if a.pub != nil {
		sd.Step("stop client listeners", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, a.cfg.Ingest.PublishTimeout+time.Second)
			defer cancel()
			return a.stopIngest(ctx)
		})
	}
	sd.Step("stop forwarding", func(context.Context) error {
		stopEng()
		<-engDone
		return nil
	})
	sd.Step("stop membership and stream keeper", func(context.Context) error {
		stopBg()
		bg.Wait()
		return nil
	})
	sd.Step("stop http", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, httpStopTimeout)
		defer cancel()
		if err := a.srv.Shutdown(ctx); err != nil {
			_ = a.srv.Close()
			return err
		}
		return nil
	})
	sd.Step("drain nats", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, natsDrainTimeout)
		defer cancel()
		err := natsconn.Drain(ctx, a.nc)
		if errors.Is(err, nats.ErrConnectionReconnecting) {
			a.log.Info("nats not connected, closed without draining")
			return nil
		}
		return err
	})
	return errors.Join(runErr, sd.Err())
}

// engine builds the forwarding engine (once the stream is ready: its
// batches must fit the server's max payload).
func (a *App) engine() *forward.Engine {
	cfg := a.cfg
	maxBytes := 512 << 10
	if mp := int(a.nc.MaxPayload()); mp > 0 {
		maxBytes = mp * 3 / 4
	}
	return forward.New(forward.Config{
		MinStep: int32(cfg.MinStep), BatchPoints: cfg.Judge.BatchPoints, MaxBatchBytes: maxBytes, Linger: cfg.Judge.Linger,
		RequestTimeout: cfg.Judge.RequestTimeout, RetryBackoff: cfg.Judge.RetryBackoff, MaxBackoff: cfg.Judge.MaxBackoff,
		MaxInflight: cfg.Judge.MaxInflight, MovedRetry: cfg.Judge.MovedRetry, FetchBatch: cfg.Consumer.FetchBatch, FetchWait: cfg.Consumer.FetchWait,
		InProgressEvery: cfg.Consumer.InProgressEvery, NakDelay: cfg.Consumer.NakDelay, ShutdownTimeout: cfg.ShutdownTimeout,
		Gate:       a.guard,
		DeadLetter: deadletter.NewPublisher(a.js, a.subj, cfg.DeadLetter, a.self), DeadLetterAfter: cfg.DeadLetter.After,
	}, a.subj, a.nc, a.mem, a.met, a.log)
}

// closeNATS stops connecting and closes the connection (New failed).
func (a *App) closeNATS() {
	a.stopConnecting()
	a.nc.Close()
}

// observerID names this transfer in the evict messages it publishes and
// the dead letters it stores.
func observerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("transfer@%s/%d", host, os.Getpid())
}
