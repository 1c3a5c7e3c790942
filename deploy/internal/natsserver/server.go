// Package natsserver runs an embedded NATS server with JetStream (the
// nats-server/v2 library), as used by kestrel-nats, the kestrel-run
// launcher and the end-to-end tests.
//
// Two ways to configure it: Config, the single-machine default (a client
// address, a store directory, a payload limit, optionally a monitoring
// address), or a standard nats-server configuration file read with the
// library's own parser (LoadFile), for clusters, accounts and TLS.
package natsserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config says where the server listens and stores its JetStream data.
type Config struct {
	Addr       string        // host:port of the client listener, e.g. 127.0.0.1:4222 (port 0 = random)
	StoreDir   string        // JetStream file store directory (required)
	MaxPayload int32         // 0 = the server default (1 MiB)
	HTTPAddr   string        // host:port of the monitoring listener (/varz, /jsz, /healthz); "" = none, port 0 = random
	Ready      time.Duration // how long to wait for the server to accept clients (0 = 10s)
	Logger     *slog.Logger  // nil = no server logs
	Debug      bool          // log server debug messages
}

// Options returns the nats-server options of c.
func (c Config) Options() (*server.Options, error) {
	if c.StoreDir == "" {
		return nil, fmt.Errorf("nats: a JetStream store directory is required")
	}
	if c.MaxPayload < 0 {
		return nil, fmt.Errorf("nats: max payload %d must not be negative", c.MaxPayload)
	}
	opts := &server.Options{
		ServerName: "kestrel",
		JetStream:  true,
		StoreDir:   c.StoreDir,
		MaxPayload: c.MaxPayload,
		NoSigs:     true, // the caller owns signal handling
		Debug:      c.Debug,
	}
	if err := SetListen(opts, c.Addr); err != nil {
		return nil, err
	}
	if c.HTTPAddr != "" {
		if err := SetHTTP(opts, c.HTTPAddr); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// Start starts the server of cfg and waits until it accepts client
// connections.
func Start(cfg Config) (*server.Server, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	s, err := New(opts, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if err := s.Start(cfg.Ready); err != nil {
		return nil, err
	}
	return s.Server, nil
}

// Server is a NATS server that reports its fatal errors: the library logs
// them (it would exit a nats-server process) and goes on, so Server turns
// them into errors (Start's, then Fatal's).
type Server struct {
	*server.Server
	log   *logger
	fatal chan error
}

// New checks opts (the library's validation: an error means a bad
// configuration, nothing was started) and builds a server that logs to log
// (nil: nowhere), at debug level for opts.Debug and opts.Trace.
func New(opts *server.Options, log *slog.Logger) (*Server, error) {
	opts.NoSigs = true // the caller owns signal handling
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{Server: ns, fatal: make(chan error, 1)}
	s.log = &logger{l: log.With("part", "nats-server"), fatal: s.fatal}
	s.setLogger(opts)
	return s, nil
}

func (s *Server) setLogger(opts *server.Options) {
	s.SetLoggerV2(s.log, opts.Debug || opts.Trace, opts.Trace, false)
}

// Start starts the server and waits up to ready (0 = 10 s) until it
// accepts clients; on failure the server is shut down and the error says
// why (the library's fatal message when it had one).
func (s *Server) Start(ready time.Duration) error {
	if ready <= 0 {
		ready = 10 * time.Second
	}
	s.Server.Start()
	deadline := time.Now().Add(ready)
	for !s.ReadyForConnections(50 * time.Millisecond) {
		select {
		case err := <-s.fatal:
			s.Stop()
			return err
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("nats: server not ready after %s (is a port in use?)", ready)
		}
	}
	return nil
}

// Fatal delivers the first fatal error the server reports while running
// (it has then stopped serving something: a listener failed).
func (s *Server) Fatal() <-chan error { return s.fatal }

// Reload applies opts to the running server (nats-server's hot reload:
// users, permissions, TLS certificates, log levels and more; an option
// that cannot change while running is an error and nothing changes).
func (s *Server) Reload(opts *server.Options) error {
	opts.NoSigs = true
	if err := s.ReloadOptions(opts); err != nil {
		return err
	}
	// The library installs its own logger when log options change.
	s.setLogger(opts)
	return nil
}

// Stop shuts the server down and waits until it is down.
func (s *Server) Stop() { s.Shutdown(); s.WaitForShutdown() }

// StopContext is Stop bounded by ctx (a shutdown step).
func (s *Server) StopContext(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("nats: shutdown: %w", ctx.Err())
	}
}

// SetListen sets the client listener of opts from host:port (port 0 = a
// random one).
func SetListen(opts *server.Options, addr string) error {
	return setHostPort("listen", addr, &opts.Host, &opts.Port)
}

// SetHTTP sets the monitoring listener of opts from host:port (port 0 = a
// random one).
func SetHTTP(opts *server.Options, addr string) error {
	return setHostPort("monitoring", addr, &opts.HTTPHost, &opts.HTTPPort)
}

// setHostPort splits addr into host and port; port 0 becomes -1,
// nats-server's random port.
func setHostPort(what, addr string, host *string, port *int) error {
	h, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("nats %s address %q: %w", what, addr, err)
	}
	p, err := strconv.Atoi(portStr)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("nats %s address %q: bad port", what, addr)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	*host, *port = h, p
	return nil
}

// logger implements server.Logger on top of slog, and hands the first
// fatal message on as an error.
type logger struct {
	l     *slog.Logger
	fatal chan error
}

func (a *logger) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a *logger) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *logger) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *logger) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *logger) Tracef(format string, v ...any) {
	a.l.Debug(fmt.Sprintf(format, v...), "trace", true)
}

func (a *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.l.Error(msg, "fatal", true)
	select {
	case a.fatal <- fmt.Errorf("nats: %s", msg):
	default:
	}
}
