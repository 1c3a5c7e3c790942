package opentsdb

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/telnet"
)

// Server is the OpenTSDB listener (ingest.opentsdb): telnet put lines and
// HTTP /api/put on one port.
type Server struct {
	tcp      ingest.TCPServer
	sessions *telnet.Sessions
	http     *http.Server
	httpLn   *connListener
	pub      *ingest.Publisher
	served   chan struct{} // closed when http.Serve returned
	closed   sync.Once
	err      error
}

// Start listens on cfg.OpenTSDB.Listen and serves until Close.
func Start(cfg config.Ingest, pub *ingest.Publisher, log *slog.Logger) (*Server, error) {
	c := newCodec(cfg.OpenTSDB.EndpointTags, buildVersion())
	s := &Server{sessions: telnet.NewSessions(c.protocol(), cfg, pub), pub: pub, served: make(chan struct{})}
	s.tcp = ingest.TCPServer{Name: ingest.ListenerOpenTSDB, MaxConns: cfg.MaxConnections,
		ReadTimeout: cfg.ReadTimeout, IdleTimeout: cfg.IdleTimeout, Pub: pub, Log: log, Handle: s.handle}
	if err := s.tcp.Listen(cfg.OpenTSDB.Listen); err != nil {
		return nil, err
	}
	s.httpLn = newConnListener(s.tcp.Addr())
	s.http = &http.Server{
		Handler:           &httpAPI{c: c, pub: pub, maxBytes: cfg.MaxRequestBytes, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}},
		ReadHeaderTimeout: cfg.ReadTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.served)
		_ = s.http.Serve(s.httpLn)
	}()
	log.Info("listening", "listener", "opentsdb", "addr", s.tcp.Addr())
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.tcp.Addr() }

// Close stops accepting, answers the lines already read and the HTTP
// requests being served, and closes every connection, waiting at most
// until ctx ends. Calls after the first return its result.
func (s *Server) Close(ctx context.Context) error {
	s.closed.Do(func() {
		var herr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			herr = s.http.Shutdown(ctx)
		}()
		terr := s.tcp.Close(ctx)
		<-done
		<-s.served
		s.err = errors.Join(terr, herr)
	})
	return s.err
}

// handle tells a connection's protocol from its first byte, as OpenTSDB
// does: an upper-case ASCII letter starts an HTTP request (GET, POST,
// PUT, HEAD...), while every telnet command is lower case.
func (s *Server) handle(c *ingest.Conn) {
	r := s.sessions.NewReader(c)
	if err := r.Wait(); err != nil {
		r.Close()
		if c.TimedOut(err) {
			s.pub.Refused(ingest.ListenerOpenTSDB, ingest.RefusedTimeout, err)
		}
		return
	}
	if first := r.Buffered()[0]; first < 'A' || first > 'Z' {
		s.sessions.Serve(c, r)
		return
	}
	head := bytes.Clone(r.Buffered())
	r.Close()
	// The HTTP server sets the read deadlines from here on; Busy keeps
	// TCPServer.Close from cutting a request short (http.Server.Shutdown
	// ends the connection once its request is answered).
	c.Busy()
	conns := s.pub.Metrics().Connections
	conns.WithLabelValues(ingest.ListenerOpenTSDB).Dec()
	conns.WithLabelValues(ingest.ListenerTSDBHTTP).Inc()
	defer func() {
		conns.WithLabelValues(ingest.ListenerTSDBHTTP).Dec()
		conns.WithLabelValues(ingest.ListenerOpenTSDB).Inc() // TCPServer takes it off
	}()
	hc := &httpConn{Conn: c, head: head, done: make(chan struct{})}
	if !s.httpLn.hand(hc) {
		_ = hc.Close()
	}
	<-hc.done
}

// httpConn is a connection handed to the HTTP server: its first bytes,
// read to tell the protocol, are read again.
type httpConn struct {
	net.Conn
	head []byte
	once sync.Once
	done chan struct{} // closed by Close
}

func (h *httpConn) Read(p []byte) (int, error) {
	if len(h.head) > 0 {
		n := copy(p, h.head)
		h.head = h.head[n:]
		return n, nil
	}
	return h.Conn.Read(p)
}

func (h *httpConn) Close() error {
	err := h.Conn.Close()
	h.once.Do(func() { close(h.done) })
	return err
}

// connListener is the net.Listener of the HTTP server: it accepts the
// connections handle hands it.
type connListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener(addr string) *connListener {
	a, _ := net.ResolveTCPAddr("tcp", addr)
	return &connListener{addr: a, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// hand gives c to the HTTP server; false once it is closed.
func (l *connListener) hand(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// buildVersion is the version of the running binary's main module.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}
