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
	"github.com/kestrel-mon/kestrel/judge/internal/metrics"
	"github.com/kestrel-mon/kestrel/judge/internal/owner"
	"github.com/kestrel-mon/kestrel/judge/internal/rules"
	"github.com/kestrel-mon/kestrel/judge/internal/server"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// App is a configured judge.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	M       *metrics.Metrics
	Rules   *rules.Holder
	Engine  *engine.Engine
	rdb     *redis.Client
	store   *alarm.Store
	nc      *nats.Conn
	svc     *server.Service
	ln      net.Listener
	httpSrv *http.Server
	cl      *cluster
	subj    proto.Subjects
}

// New builds every part (connections are opened lazily or retried).
func New(cfg config.Config, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log, M: metrics.New()}
	rh, err := rules.NewHolder(cfg.RulesFile, cfg.Window.Size)
	if err != nil {
		return nil, err
	}
	a.Rules = rh
	a.M.Rules.Set(float64(rh.Get().Len()))
	tc, err := cfg.Redis.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("redis.tls: %w", err)
	}
	a.rdb = redis.NewClient(&redis.Options{
		Addr: cfg.Redis.Addr, Username: cfg.Redis.Username, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		TLSConfig: tc, DialTimeout: cfg.Redis.DialTimeout.D(),
		ReadTimeout: cfg.Redis.OpTimeout.D(), WriteTimeout: cfg.Redis.OpTimeout.D(),
		MaxRetries: 1, PoolSize: cfg.Workers + 4,
	})
	a.store = alarm.NewStore(a.rdb, alarm.Keys{
		Prefix: cfg.Alarm.KeyPrefix, EventListFormat: cfg.Alarm.EventListFormat, EventListLen: cfg.Alarm.EventListLen,
		StreamKey: cfg.Alarm.StreamKey, StreamMaxLen: cfg.Alarm.StreamMaxLen,
	})
	a.Engine = engine.New(engine.Config{
		WindowSize: cfg.Window.Size, IdleEvict: cfg.Window.IdleEvict.D(),
		MinInterval: int64(cfg.Alarm.MinInterval.D() / time.Second),
		Workers:     cfg.Workers, QueueLen: cfg.QueueLen, OpTimeout: cfg.Redis.OpTimeout.D(),
	}, rh, a.store, a.M, log)
	subj, err := proto.NewSubjects(cfg.NATS.SubjectPrefix)
	if err != nil {
		return nil, err
	}
	a.subj = subj
	if a.cl, err = newCluster(a); err != nil {
		return nil, err
	}
	a.Engine.SetOwner(a.cl.tracker)
	nc, err := server.Connect(cfg.NATS, "kestrel-judge "+cfg.NodeID, a.M, log)
	if err != nil {
		_ = a.rdb.Close()
		return nil, err
	}
	a.nc = nc
	// While disconnected the others may take this judge out of the ring
	// and judge its series: own nothing until connected again, then gain
	// every partition anew (settle, windows dropped, states re-read).
	nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		log.Warn("nats disconnected", "err", err)
		a.cl.suspend(owner.Disconnected, "nats disconnected")
	})
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		a.cl.resume(owner.Disconnected, "nats reconnected")
	})
	a.svc = server.New(nc, subj, cfg.NodeID, a.Engine, cfg.HeartbeatInterval.D(), a.M, log)
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		nc.Close()
		_ = a.rdb.Close()
		return nil, fmt.Errorf("cannot listen on http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	a.ln = ln
	a.httpSrv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: httpapi.Handler(httpapi.Deps{
		Registry: a.M.Registry,
		History:  a.Engine.History,
		Rules:    rh.Get,
		Active:   a.store.Active,
		Checks: map[string]func(context.Context) error{
			"nats": func(context.Context) error {
				if st := nc.Status(); st != nats.CONNECTED {
					return fmt.Errorf("nats is %s", st)
				}
				return nil
			},
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

// Reload re-reads the rules file; on error the old rules stay.
func (a *App) Reload() error {
	s, err := a.Rules.Reload()
	if err != nil {
		a.M.ReloadError.Inc()
		a.log.Error("rules reload failed, keeping the old rules", "file", a.cfg.RulesFile, "err", err)
		return err
	}
	a.M.ReloadOK.Inc()
	a.M.Rules.Set(float64(s.Len()))
	a.log.Info("rules reloaded", "file", a.cfg.RulesFile, "rules", s.Len())
	return nil
}

// Run serves until ctx ends (or the HTTP server fails), then shuts down in
// order: leave, drain requests, finish in-flight work, stop HTTP, close
// Redis, close NATS.
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
	defer func() { mcancel(); <-memDone }() // after shutdown: membership is followed to the end
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

func (a *App) shutdown(ecancel context.CancelFunc) {
	deadline := time.Now().Add(a.cfg.ShutdownTimeout.D())
	step := func(name string, f func(ctx context.Context) error) {
		start := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		if err := f(ctx); err != nil {
			a.log.Warn("shutdown step failed", "step", name, "err", err, "took", time.Since(start))
			return
		}
		a.log.Info("shutdown step done", "step", name, "took", time.Since(start))
	}
	// Leave first: the transfers drop this node from their ring at once
	// and re-route their unacked points, and no heartbeat follows that
	// could re-admit it while the subscription drains. Requests already
	// sent are still answered (or time out and are sent again to the new
	// owner; the alarm writes are CAS, so nothing is written twice).
	step("leave", a.svc.Leave)
	step("drain requests", a.svc.Drain)
	step("finish in-flight", func(ctx context.Context) error {
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
	step("stop http", a.httpSrv.Shutdown)
	ecancel()
	step("close redis", func(context.Context) error { return a.rdb.Close() })
	step("close nats", func(ctx context.Context) error {
		err := a.nc.FlushWithContext(ctx)
		a.nc.Close()
		return err
	})
}
