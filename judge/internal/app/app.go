// Package app wires the judge together and runs it with an ordered,
// bounded shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kestrel-mon/kestrel/judge/internal/alarm"
	"github.com/kestrel-mon/kestrel/judge/internal/config"
	"github.com/kestrel-mon/kestrel/judge/internal/engine"
	"github.com/kestrel-mon/kestrel/judge/internal/httpapi"
	"github.com/kestrel-mon/kestrel/judge/internal/owner"
	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/judge/internal/service"
	"github.com/kestrel-mon/kestrel/lib/natsconn"
	"github.com/kestrel-mon/kestrel/lib/run"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

// App is a configured judge.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	reg     *prometheus.Registry // every part's metrics, served on /metrics
	rulesM  *rulesMetrics
	Rules   *rules.Holder
	Engine  *engine.Engine
	rdb     *redis.Client
	store   *alarm.Store
	nc      *nats.Conn
	svc     *service.Service
	ln      net.Listener
	httpSrv *http.Server
	cl      *cluster
	subj    proto.Subjects

	stopConnecting context.CancelFunc
	stopMembers    func() // set by Run once the members are followed
}

// New builds every part: it connects to NATS (the judge starts while NATS
// is down and keeps trying), builds the service on the connection and
// listens on http.listen; Redis is connected to lazily. ctx bounds
// connecting: New returns ctx's error when ctx is done (SIGTERM) before
// NATS answered, and NATS is not dialled again once it is done. Run
// starts the work.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.rulesM = newRulesMetrics(a.reg)
	rh, err := rules.NewHolder(cfg.RulesFile, cfg.Window.Size)
	if err != nil {
		return nil, err
	}
	a.Rules = rh
	a.rulesM.rules.Set(float64(rh.Get().Len()))
	tc, err := cfg.Redis.TLS.Config("redis.tls")
	if err != nil {
		return nil, err
	}
	a.rdb = redis.NewClient(&redis.Options{
		Addr: cfg.Redis.Addr, Username: cfg.Redis.Username, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		TLSConfig: tc, DialTimeout: cfg.Redis.DialTimeout,
		ReadTimeout: cfg.Redis.OpTimeout, WriteTimeout: cfg.Redis.OpTimeout,
		MaxRetries: 1, PoolSize: cfg.Workers + 4,
	})
	a.store = alarm.NewStore(a.rdb, alarm.Keys{
		Prefix: cfg.Alarm.KeyPrefix, EventListFormat: cfg.Alarm.EventListFormat, EventListLen: cfg.Alarm.EventListLen,
		StreamKey: cfg.Alarm.StreamKey, StreamMaxLen: cfg.Alarm.StreamMaxLen,
	})
	a.Engine = engine.New(engine.Config{
		WindowSize: cfg.Window.Size, IdleEvict: cfg.Window.IdleEvict,
		MinInterval: int64(cfg.Alarm.MinInterval / time.Second),
		Workers:     cfg.Workers, QueueLen: cfg.QueueLen, OpTimeout: cfg.Redis.OpTimeout,
	}, rh, a.store, engine.NewMetrics(a.reg), log)
	if a.subj, err = proto.NewSubjects(cfg.NATS.SubjectPrefix); err != nil {
		return nil, err
	}
	if a.cl, err = newCluster(a); err != nil {
		return nil, err
	}
	a.Engine.SetOwner(a.cl.tracker)
	if err := a.connect(ctx); err != nil {
		_ = a.rdb.Close()
		return nil, err
	}
	a.svc = service.New(a.nc, a.subj, cfg.NodeID, a.Engine, cfg.HeartbeatInterval, service.NewMetrics(a.reg), log)
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		a.stopConnecting()
		a.nc.Close()
		_ = a.rdb.Close()
		return nil, fmt.Errorf("cannot listen on http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	a.ln = ln
	a.httpSrv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: httpapi.Handler(httpapi.Deps{
		Registry: a.reg,
		History:  a.Engine.History,
		Rules:    rh.Get,
		Active:   a.store.Active,
		Checks: map[string]func(context.Context) error{
			"nats":  a.checkNATS,
			"redis": a.store.Ping,
			"ring":  a.cl.check,
		},
	})}
	return a, nil
}

// HTTPAddr returns the address the HTTP server listens on.
func (a *App) HTTPAddr() string { return a.ln.Addr().String() }

// NodeID returns the node id.
func (a *App) NodeID() string { return a.cfg.NodeID }

// checkNATS is the /health check of the NATS connection.
func (a *App) checkNATS(context.Context) error {
	if st := a.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats is %s", st)
	}
	return nil
}

// connect opens the NATS connection, which reconnects for ever; connecting
// stops when ctx is done or the shutdown starts (stopConnecting). While
// disconnected the others may take this judge out of the ring and judge
// its series: it owns nothing until connected again, then gains every
// partition anew (settle, windows dropped, states re-read).
func (a *App) connect(ctx context.Context) error {
	ctx, a.stopConnecting = context.WithCancel(ctx)
	nc, err := natsconn.Connect(ctx, a.cfg.NATS, natsconn.Options{
		Name:    "kestrel-judge " + a.cfg.NodeID,
		Log:     a.log,
		Metrics: natsconn.NewMetrics(a.reg, "kestrel_judge"),
		OnDisconnect: func(*nats.Conn, error) {
			a.cl.suspend(owner.Disconnected, "nats disconnected")
		},
		OnConnect: func(*nats.Conn) {
			a.cl.resume(owner.Disconnected, "nats reconnected")
		},
	})
	if err != nil {
		a.stopConnecting()
		return err
	}
	if !nc.IsConnected() {
		a.log.Info("nats not connected yet, will keep trying")
	}
	a.nc = nc
	return nil
}

// Run serves until ctx ends (or the HTTP server fails), then shuts down in
// order: leave, drain requests, finish in-flight work, stop HTTP, close
// Redis, close NATS, each step logged with how long it took.
func (a *App) Run(ctx context.Context) error {
	ectx, ecancel := context.WithCancel(context.Background())
	defer ecancel()
	a.Engine.Start(ectx)
	httpErr := make(chan error, 1)
	go func() { httpErr <- a.httpSrv.Serve(a.ln) }()
	// The ring parameters must match the bucket's before this judge
	// follows the members and serves.
	if err := a.cl.ensureParams(ctx, a.nc, a.subj.RingBucket()); err != nil {
		a.shutdown(ecancel)
		return nil
	}
	mctx, mcancel := context.WithCancel(context.Background())
	memDone := make(chan struct{})
	a.stopMembers = func() { mcancel(); <-memDone }
	defer a.stopMembers() // idempotent
	go func() {
		defer close(memDone)
		if err := a.cl.mem.Run(mctx, a.nc, a.subj.Members()); err != nil {
			a.log.Error("membership stopped", "err", err)
		}
	}()
	go a.cl.follow(mctx)
	if err := a.svc.Start(); err != nil {
		a.shutdown(ecancel)
		return err
	}
	a.log.Info("judge started", "node", a.cfg.NodeID, "subject", a.svc.Subject(), "http", a.HTTPAddr(), "rules", a.Rules.Get().Len())
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
	}
	a.shutdown(ecancel)
	return runErr
}

// shutdown stops the judge in order within shutdown_timeout, logging each
// step with how long it took; a failed step is logged (Warn) and the next
// one runs.
func (a *App) shutdown(ecancel context.CancelFunc) {
	// NATS is not dialled again from here on: a stop while NATS is
	// unreachable does not wait for it.
	a.stopConnecting()
	sd := run.NewShutdown(a.log, a.cfg.ShutdownTimeout)
	// Leave first: the transfers drop this node from their ring at once
	// and re-route their unacked points, and no heartbeat follows that
	// could re-admit it while the subscription drains. Requests already
	// sent are still answered (or time out and are sent again to the new
	// owner; the alarm writes are CAS, so nothing is written twice).
	sd.Step("leave", a.svc.Leave)
	sd.Step("drain requests", a.svc.Drain)
	sd.Step("finish in-flight", func(ctx context.Context) error {
		done := make(chan struct{})
		go func() { a.Engine.Stop(); close(done) }()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			ecancel() // abort Redis calls still running
			<-done
			return ctx.Err()
		}
	})
	sd.Step("stop http", a.httpSrv.Shutdown)
	ecancel()
	sd.Step("close redis", func(context.Context) error { return a.rdb.Close() })
	sd.Step("close nats", a.closeNATS)
}

// closeNATS stops following the members, then drains the connection
// (what is buffered is sent) and waits until it is closed; one that is not
// connected is closed at once.
func (a *App) closeNATS(ctx context.Context) error {
	if a.stopMembers != nil {
		a.stopMembers() // or the membership takes the close for a lost connection
	}
	err := natsconn.Drain(ctx, a.nc)
	if errors.Is(err, nats.ErrConnectionReconnecting) {
		a.log.Info("nats not connected, closed without draining")
		return nil
	}
	return err
}
