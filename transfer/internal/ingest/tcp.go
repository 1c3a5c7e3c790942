package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one client connection handed to a protocol: reads are bounded
// by the read and idle timeouts (SetDeadline is managed by the server;
// call Idle before waiting for the next request and Busy once its first
// byte arrived), and Stopping is closed when the server stops: finish the
// request being read or answered, then return.
type Conn struct {
	net.Conn
	srv      *TCPServer
	Stopping <-chan struct{}
	idle     atomic.Bool
}

// Idle arms the idle timeout: the connection waits for a new request (at
// once over when the server is stopping).
func (c *Conn) Idle() {
	c.idle.Store(true)
	select {
	case <-c.Stopping:
		_ = c.SetReadDeadline(time.Now())
	default:
		_ = c.SetReadDeadline(time.Now().Add(c.srv.IdleTimeout))
	}
}

// Busy arms the read timeout: a request is being read (a stop lets it
// finish).
func (c *Conn) Busy() {
	c.idle.Store(false)
	_ = c.SetReadDeadline(time.Now().Add(c.srv.ReadTimeout))
}

// TimedOut reports whether err is a read that hit a deadline; a stop
// (Stopping closed) is not counted as a timeout.
func (c *Conn) TimedOut(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	select {
	case <-c.Stopping:
		return false
	default:
		return true
	}
}

// TCPServer accepts connections for one listener and runs Handle for each
// in its own goroutine, at most MaxConns at once (more are closed at once
// and counted refused conn_limit).
type TCPServer struct {
	Name        string // the listener label
	MaxConns    int
	ReadTimeout time.Duration
	IdleTimeout time.Duration
	Handle      func(c *Conn)
	Pub         *Publisher
	Log         *slog.Logger

	ln       net.Listener
	stopping chan struct{}
	mu       sync.Mutex
	conns    map[*Conn]struct{}
	wg       sync.WaitGroup
}

// Listen opens addr; Serve then accepts on it.
func (s *TCPServer) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: cannot listen on %s: %w", s.Name, addr, err)
	}
	s.ServeOn(ln)
	return nil
}

// ServeOn accepts on ln in the background until Close.
func (s *TCPServer) ServeOn(ln net.Listener) {
	s.ln = ln
	s.stopping = make(chan struct{})
	s.conns = map[*Conn]struct{}{}
	s.wg.Go(s.accept)
}

// Addr returns the address the server listens on.
func (s *TCPServer) Addr() string { return s.ln.Addr().String() }

func (s *TCPServer) accept() {
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.stopping:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, then go on.
			backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
			s.Pub.Refused(s.Name, RefusedConnLimit, fmt.Errorf("accept: %w (retrying in %s)", err, backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := &Conn{Conn: nc, srv: s, Stopping: s.stopping}
		if !s.track(c) {
			s.Pub.Refused(s.Name, RefusedConnLimit, fmt.Errorf("%d connections open (ingest.max_connections)", s.MaxConns))
			_ = nc.Close()
			continue
		}
		s.wg.Go(func() {
			defer s.untrack(c)
			c.Idle()
			s.Handle(c)
		})
	}
}

func (s *TCPServer) track(nc *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.MaxConns {
		return false
	}
	s.conns[nc] = struct{}{}
	s.Pub.Metrics().Connections.WithLabelValues(s.Name).Inc()
	return true
}

func (s *TCPServer) untrack(nc *Conn) {
	_ = nc.Close()
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	s.Pub.Metrics().Connections.WithLabelValues(s.Name).Dec()
}

// Close stops accepting, tells every connection to finish (Stopping), and
// waits for them until ctx ends; then it closes what is left.
func (s *TCPServer) Close(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	close(s.stopping)
	_ = s.ln.Close()
	// A connection waiting for its next request is done at once; one
	// reading or answering a request finishes it first (Idle).
	s.mu.Lock()
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.SetReadDeadline(time.Now())
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.conns)
		for nc := range s.conns {
			_ = nc.Close()
		}
		s.mu.Unlock()
		<-done
		return fmt.Errorf("%s: %d connections closed before their requests were answered: %w", s.Name, n, ctx.Err())
	}
}
