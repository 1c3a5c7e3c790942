// Command kestrel-transfer pulls ingest batches from NATS JetStream,
// validates the points and forwards each series to the judge that owns it.
//
//	kestrel-transfer -c transfer.yaml [-log.level debug]
//	kestrel-transfer ring get|set -c transfer.yaml [...]   (see internal/ringcmd)
//	kestrel-transfer stream get|apply -c transfer.yaml      (see internal/streamcmd)
//	kestrel-transfer deadletter list|replay|purge -c transfer.yaml [-seq N]  (see internal/deadletter)
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
	"sync"
	"syscall"
	"time"

	"github.com/kestrel-mon/kestrel/lib/membership"
	"github.com/kestrel-mon/kestrel/lib/ring"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/deadletter"
	"github.com/kestrel-mon/kestrel/transfer/internal/forward"
	"github.com/kestrel-mon/kestrel/transfer/internal/httpapi"
	"github.com/kestrel-mon/kestrel/transfer/internal/metrics"
	"github.com/kestrel-mon/kestrel/transfer/internal/natsconn"
	"github.com/kestrel-mon/kestrel/transfer/internal/ringcheck"
	"github.com/kestrel-mon/kestrel/transfer/internal/ringcmd"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
	"github.com/kestrel-mon/kestrel/transfer/internal/streamcmd"
	"github.com/nats-io/nats.go/jetstream"
)

var version = "dev"

const binary = "kestrel-transfer"

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) > 1 && os.Args[1] == "ring" {
		return ringcmd.Main(os.Args[2:], os.Stdout, os.Stderr)
	}
	if len(os.Args) > 1 && os.Args[1] == "stream" {
		return streamcmd.Main(os.Args[2:], os.Stdout, os.Stderr)
	}
	if len(os.Args) > 1 && os.Args[1] == "deadletter" {
		return deadletter.Main(os.Args[2:], os.Stdout, os.Stderr)
	}
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	cfgPath := fs.String("c", "transfer.yaml", "config file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log.level", "", "override log.level (debug|info|warn|error)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Printf("%s %s\n", binary, version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	log := newLogger(cfg.Log)
	log.Info("starting", "version", version, "config", *cfgPath)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	met := metrics.New()
	nc, err := natsconn.Connect(cfg.NATS, binary, log, func(kind string) { met.NATSAsyncErrors.WithLabelValues(kind).Inc() })
	if err != nil {
		log.Error("cannot connect to nats", "err", err)
		return 1
	}
	defer nc.Close()
	subj := cfg.Subjects()
	mem, err := membership.New(membership.Config{
		Timeout: cfg.Membership.Timeout, RejoinHold: cfg.Membership.RejoinHold, SuspectAfter: cfg.Judge.SuspectAfter, UnresponsiveAfter: cfg.Judge.UnresponsiveAfter, Self: observerID(),
		Ring: ring.Config{PartitionCount: cfg.Ring.PartitionCount, ReplicationFactor: cfg.Ring.ReplicationFactor, Load: cfg.Ring.Load, Hasher: cfg.Ring.Hasher},
	}, log, met.Membership)
	if err != nil {
		log.Error("cannot start membership", "err", err)
		return 1
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Error("cannot open jetstream", "err", err)
		return 1
	}
	// The ring parameters must equal the shared bucket's: until they do
	// (and whenever they stop to), nothing is fetched.
	guard := ringcheck.New(subj.RingBucket(), cfg.RingParams(), met.RingConfigMismatch, log)
	// The stream and the consumer: created (ingest subjects opened only
	// once the consumer exists), then checked every second; a deleted
	// consumer is recreated.
	keeper := stream.NewKeeper(js, subj, cfg.Stream, cfg.Consumer, stream.NewMetrics(met.Registry), log)
	keeper.Timeout = cfg.NATS.ConnectTimeout + 5*time.Second

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.HTTP.Listen, "err", err)
		return 1
	}
	srv := &http.Server{Handler: httpapi.Handler(nc, mem, keeper, guard, met.Registry), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 3)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	log.Info("http listening", "addr", ln.Addr().String())

	// Membership, the ring parameter check and the stream keeper run until
	// the engine has stopped (they are what it routes by and fetches from).
	memCtx, stopMem := context.WithCancel(context.Background())
	defer stopMem()
	memDone := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		if err := mem.Run(memCtx, nc, subj.Members()); err != nil {
			errc <- err
		}
	})
	bg.Go(func() { _ = guard.Run(memCtx, js, cfg.Ring.BucketReplicas, cfg.NATS.ConnectTimeout+5*time.Second) })
	bg.Go(func() { _ = keeper.Run(memCtx) })
	go func() { bg.Wait(); close(memDone) }()

	select {
	case <-keeper.Ready():
	case <-ctx.Done():
		log.Info("stopped before the stream was ready", "reason", keeper.NotReady())
		shutdownRest(log, srv, stopMem, memDone, nc)
		return 0
	case err := <-errc:
		log.Error("component failed before the stream was ready: shutting down", "err", err)
		shutdownRest(log, srv, stopMem, memDone, nc)
		return 1
	}
	cons := keeper.Consumer()

	maxBytes := 512 << 10
	if mp := int(nc.MaxPayload()); mp > 0 {
		maxBytes = mp * 3 / 4
	}
	eng := forward.New(forward.Config{
		MinStep: int32(cfg.MinStep), BatchPoints: cfg.Judge.BatchPoints, MaxBatchBytes: maxBytes, Linger: cfg.Judge.Linger,
		RequestTimeout: cfg.Judge.RequestTimeout, RetryBackoff: cfg.Judge.RetryBackoff, MaxBackoff: cfg.Judge.MaxBackoff,
		MaxInflight: cfg.Judge.MaxInflight, MovedRetry: cfg.Judge.MovedRetry, FetchBatch: cfg.Consumer.FetchBatch, FetchWait: cfg.Consumer.FetchWait,
		InProgressEvery: cfg.Consumer.InProgressEvery, NakDelay: cfg.Consumer.NakDelay, ShutdownTimeout: cfg.ShutdownTimeout,
		Gate:       guard,
		DeadLetter: deadletter.NewPublisher(js, subj, cfg.DeadLetter, observerID()), DeadLetterAfter: cfg.DeadLetter.After,
	}, subj, nc, mem, met, log)
	engCtx, stopEng := context.WithCancel(context.Background())
	defer stopEng()
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		if err := eng.Run(engCtx, cons); err != nil {
			errc <- err
		}
	}()
	log.Info("forwarding", "stream", subj.Stream(), "consumer", cons.CachedInfo().Name)

	code := 0
	select {
	case <-ctx.Done():
		log.Info("signal received: shutting down")
	case err := <-errc:
		log.Error("component failed: shutting down", "err", err)
		code = 1
	}
	t := time.Now()
	stopEng()
	<-engDone
	log.Info("forwarding stopped", "took", time.Since(t))
	shutdownRest(log, srv, stopMem, memDone, nc)
	return code
}

func shutdownRest(log *slog.Logger, srv *http.Server, stopMem context.CancelFunc, memDone <-chan struct{}, nc interface {
	Drain() error
	IsClosed() bool
}) {
	t := time.Now()
	stopMem()
	<-memDone
	log.Info("membership stopped", "took", time.Since(t))
	t = time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	log.Info("http stopped", "took", time.Since(t))
	t = time.Now()
	if err := nc.Drain(); err != nil {
		log.Warn("nats drain failed", "err", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	log.Info("nats drained", "took", time.Since(t))
}

// observerID names this transfer in the evict messages it publishes.
func observerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("transfer@%s/%d", host, os.Getpid())
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
