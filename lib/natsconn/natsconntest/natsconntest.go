// Package natsconntest plays, in tests, the NATS servers a real one cannot:
// an address nobody listens on, and a server that accepts connections and
// never says a word (a NATS behind a broken proxy: the client waits
// connect_timeout for its INFO). A binary's stop while still connecting
// is tested against the second.
package natsconntest

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Unreachable returns the URL of a local port nobody listens on, and the
// port (a test may start a server there later).
func Unreachable(t testing.TB) (url string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "nats://127.0.0.1:" + strconv.Itoa(port), port
}

// Silent is a server that accepts connections, reads what the client
// sends and never answers. It is closed on cleanup.
type Silent struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
}

// StartSilent listens on the local port (0: any free one).
func StartSilent(t testing.TB, port int) *Silent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	s := &Silent{ln: ln}
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *Silent) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.accepted.Add(1)
		go func() { _, _ = io.Copy(io.Discard, c) }()
	}
}

func (s *Silent) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

// URL is the server's nats:// URL.
func (s *Silent) URL() string { return "nats://" + s.ln.Addr().String() }

// Accepted is how many connections it accepted so far.
func (s *Silent) Accepted() int { return int(s.accepted.Load()) }
