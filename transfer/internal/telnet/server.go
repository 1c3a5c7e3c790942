package telnet

import (
	"context"
	"log/slog"
	"sync"

	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
)

// Server is the Open-Falcon telnet listener (ingest.telnet).
type Server struct {
	tcp    ingest.TCPServer
	closed sync.Once
	err    error
}

// Start listens on cfg.Telnet.Listen and serves Open-Falcon's update
// lines until Close.
func Start(cfg config.Ingest, pub *ingest.Publisher, log *slog.Logger) (*Server, error) {
	ss := NewSessions(Update, cfg, pub)
	s := &Server{tcp: ingest.TCPServer{Name: ingest.ListenerTelnet, MaxConns: cfg.MaxConnections,
		ReadTimeout: cfg.ReadTimeout, IdleTimeout: cfg.IdleTimeout, Pub: pub, Log: log,
		Handle: func(c *ingest.Conn) { ss.Serve(c, ss.NewReader(c)) }}}
	if err := s.tcp.Listen(cfg.Telnet.Listen); err != nil {
		return nil, err
	}
	log.Info("listening", "listener", ingest.ListenerTelnet, "addr", s.tcp.Addr())
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.tcp.Addr() }

// Close stops accepting, answers the lines already read and closes every
// connection, waiting at most until ctx ends. Calls after the first
// return its result.
func (s *Server) Close(ctx context.Context) error {
	s.closed.Do(func() { s.err = s.tcp.Close(ctx) })
	return s.err
}
