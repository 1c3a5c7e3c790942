package jsonrpc

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
)

// Config configures the listener (from the ingest block of transfer.yaml).
type Config struct {
	MaxConns        int           // ingest.max_connections
	ReadTimeout     time.Duration // ingest.read_timeout: a request must arrive within, from its first byte
	IdleTimeout     time.Duration // ingest.idle_timeout: a connection without requests is closed
	MaxRequestBytes int           // ingest.max_request_bytes
	MaxInFlight     int           // requests of one connection being answered at once (0: 8)
}

const defaultMaxInFlight = 8

// Server serves Transfer.Update and Transfer.Ping.
type Server struct {
	cfg   Config
	pub   *ingest.Publisher
	log   *slog.Logger
	tcp   ingest.TCPServer
	calls sync.Pool // *call
	bufs  sync.Pool // *[]byte: read buffers of connections reading a request

	closeOnce sync.Once
	closeErr  error
}

// New returns a server publishing through pub; Listen or ServeOn starts
// it.
func New(cfg Config, pub *ingest.Publisher, log *slog.Logger) *Server {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	s := &Server{cfg: cfg, pub: pub, log: log}
	s.calls.New = func() any { return new(call) }
	s.tcp = ingest.TCPServer{Name: ingest.ListenerJSONRPC, MaxConns: cfg.MaxConns, ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: cfg.IdleTimeout, Handle: s.serveConn, Pub: pub, Log: log}
	return s
}

// Listen opens addr (ingest.jsonrpc.listen) and serves it in the
// background.
func (s *Server) Listen(addr string) error { return s.tcp.Listen(addr) }

// ServeOn serves ln in the background.
func (s *Server) ServeOn(ln net.Listener) { s.tcp.ServeOn(ln) }

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.tcp.Addr() }

// Close stops accepting, answers the requests being read or published
// and closes every connection, within ctx. Later calls return the first
// call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.tcp.Close(ctx) })
	return s.closeErr
}

func (s *Server) serveConn(c *ingest.Conn) {
	cn := &conn{c: c, s: s, sem: make(chan struct{}, s.cfg.MaxInFlight)}
	cn.serve()
}

// getBuf returns a read buffer of at least n bytes.
func (s *Server) getBuf(n int) []byte {
	if p, ok := s.bufs.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:cap(*p)]
	}
	return make([]byte, n)
}

// putBuf keeps b for another connection (not a very large one).
func (s *Server) putBuf(b []byte) {
	if cap(b) <= 1<<20 {
		s.bufs.Put(&b)
	}
}
