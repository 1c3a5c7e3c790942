// Package natsserver runs an embedded NATS server with JetStream (the
// nats-server/v2 library), as used by kestrel-nats, the kestrel-run
// launcher and the end-to-end tests.
package natsserver

import (
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
	Ready      time.Duration // how long to wait for the server to accept clients (0 = 10s)
	Logger     *slog.Logger  // nil = no server logs
	Debug      bool          // log server debug messages
}

// Start starts the server and waits until it accepts client connections.
func Start(cfg Config) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("nats listen address %q: bad port", cfg.Addr)
	}
	if port == 0 {
		port = -1 // nats-server: -1 picks a random port
	}
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("nats: a JetStream store directory is required")
	}
	if cfg.MaxPayload < 0 {
		return nil, fmt.Errorf("nats: max payload %d must not be negative", cfg.MaxPayload)
	}
	opts := &server.Options{
		ServerName: "kestrel",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true, // the caller owns signal handling
		NoLog:      cfg.Logger == nil,
		Debug:      cfg.Debug,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if cfg.Logger != nil {
		s.SetLoggerV2(&slogAdapter{l: cfg.Logger.With("part", "nats-server")}, cfg.Debug, false, false)
	}
	s.Start()
	wait := cfg.Ready
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if !s.ReadyForConnections(wait) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("nats: server on %s not ready after %s (is the port in use?)", cfg.Addr, wait)
	}
	return s, nil
}

// slogAdapter implements server.Logger on top of slog.
type slogAdapter struct{ l *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
