package ingest

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/ratelog"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// lineServer answers each line with "ok <line>" after a pause.
func lineServer(t *testing.T, pause time.Duration, maxConns int, idle time.Duration) (*TCPServer, *Metrics) {
	t.Helper()
	met := NewMetrics(nil)
	pub := &Publisher{met: met, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	pub.rl = newTestLimiter()
	s := &TCPServer{Name: ListenerTelnet, MaxConns: maxConns, ReadTimeout: time.Second, IdleTimeout: idle, Pub: pub,
		Log: pub.log, Handle: func(c *Conn) {
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					if c.TimedOut(err) {
						pub.Refused(ListenerTelnet, RefusedTimeout, err)
					}
					return
				}
				c.Busy()
				time.Sleep(pause)
				_, _ = io.WriteString(c, "ok "+line)
				c.Idle()
			}
		}}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return s, met
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestTCPServerLimitsAndTimeouts(t *testing.T) {
	s, met := lineServer(t, 0, 2, 300*time.Millisecond)
	defer s.Close(context.Background())
	c1, r1 := dial(t, s.Addr())
	_, _ = io.WriteString(c1, "a\n")
	if l, _ := r1.ReadString('\n'); l != "ok a\n" {
		t.Fatalf("reply %q", l)
	}
	dial(t, s.Addr())
	wait.For(t, "2 connections", 5*time.Second, func() bool {
		return testutil.ToFloat64(met.Connections.WithLabelValues(ListenerTelnet)) == 2
	})
	c3, r3 := dial(t, s.Addr())
	_ = c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r3.ReadString('\n'); err == nil {
		t.Fatal("a third connection over max_connections was served")
	}
	if v := testutil.ToFloat64(met.Refused.WithLabelValues(ListenerTelnet, RefusedConnLimit)); v != 1 {
		t.Fatalf("conn_limit refusals %v", v)
	}
	// Idle connections are closed after the idle timeout.
	_ = c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r1.ReadString('\n'); err == nil {
		t.Fatal("idle connection not closed")
	}
	wait.For(t, "idle timeouts counted", 5*time.Second, func() bool {
		return testutil.ToFloat64(met.Refused.WithLabelValues(ListenerTelnet, RefusedTimeout)) == 2
	})
}

// Close answers the request being handled, then closes; idle connections
// close at once and are not counted as timeouts.
func TestTCPServerGracefulClose(t *testing.T) {
	s, met := lineServer(t, 300*time.Millisecond, 10, time.Minute)
	busy, rb := dial(t, s.Addr())
	_, ri := dial(t, s.Addr())
	wait.For(t, "2 connections", 5*time.Second, func() bool {
		return testutil.ToFloat64(met.Connections.WithLabelValues(ListenerTelnet)) == 2
	})
	_, _ = io.WriteString(busy, "in flight\n")
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	if l, err := rb.ReadString('\n'); err != nil || !strings.HasPrefix(l, "ok in flight") {
		t.Fatalf("in-flight request: %q %v", l, err)
	}
	if _, err := ri.ReadString('\n'); err == nil {
		t.Fatal("idle connection still open after Close")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(met.Refused.WithLabelValues(ListenerTelnet, RefusedTimeout)); v != 0 {
		t.Fatalf("a stop counted %v timeouts", v)
	}
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Fatal("still accepting after Close")
	}
}

func newTestLimiter() *ratelog.Limiter { return ratelog.New(time.Second) }
