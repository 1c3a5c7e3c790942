package natsconn

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natsconn/natsconntest"
	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/syncbuf"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logs is a JSON logger and what it wrote.
type logs struct{ buf syncbuf.Buffer }

func (l *logs) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(&l.buf, nil)) }

// find returns the lines whose msg starts with prefix.
func (l *logs) find(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

func config(urls ...string) Config {
	c := Default()
	c.URLs = urls
	return c
}

// startServer starts an embedded server with changed options (lib/natstest
// has none); it is shut down on cleanup.
func startServer(t *testing.T, mod func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	mod(o)
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func TestConnectWithCredentials(t *testing.T) {
	cases := []struct {
		name string
		srv  func(*server.Options)
		cfg  func(*Config)
	}{
		{"token", func(o *server.Options) { o.Authorization = "s3cret" }, func(c *Config) { c.Token = "s3cret" }},
		{"user password", func(o *server.Options) { o.Username, o.Password = "agent", "pw" }, func(c *Config) { c.User, c.Password = "agent", "pw" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.srv)
			c := config(s.ClientURL())
			tc.cfg(&c)
			nc, err := Connect(t.Context(), c, Options{Name: "test"})
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if err := WaitConnected(t.Context(), nc); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A binary starts while NATS is down, says so at once and connects when
// NATS comes up.
func TestCannotReachIsLoggedAtOnceAndRetried(t *testing.T) {
	url, port := natsconntest.Unreachable(t)
	var l logs
	var connects atomic.Int32
	start := time.Now()
	nc, err := Connect(t.Context(), config(url),
		Options{Log: l.logger(), ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 50 * time.Millisecond,
			OnConnect: func(*nats.Conn) { connects.Add(1) }})
	if err != nil {
		t.Fatalf("connect must not fail while the server is down: %v", err)
	}
	defer nc.Close()
	want := "cannot reach NATS at " + url
	wait.For(t, "log "+want, time.Second, func() bool { return len(l.find(t, want)) > 0 })
	t.Logf("logged after %v", time.Since(start))
	if nc.IsConnected() {
		t.Fatal("connected to nothing")
	}
	line := l.find(t, want)[0]
	if line["level"] != "WARN" || !strings.Contains(line["err"].(string), "refused") {
		t.Errorf("unexpected line %v", line)
	}

	startServer(t, func(o *server.Options) { o.Port = port })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := WaitConnected(ctx, nc); err != nil {
		t.Fatalf("not connected after the server came up: %v", err)
	}
	wait.For(t, "OnConnect called", 5*time.Second, func() bool { return connects.Load() == 1 })
	if n := len(l.find(t, want)); n > 2 {
		t.Errorf("%d lines for one outage, want the first and rate-limited ones", n)
	}
}

func TestReconnectDelay(t *testing.T) {
	f := func(n int, want time.Duration) {
		t.Helper()
		for range 100 {
			if got := reconnectDelay(n, time.Second, 15*time.Second); got < want || got > want+want/4 {
				t.Fatalf("reconnectDelay(%d) = %v, want %v..%v", n, got, want, want+want/4)
			}
		}
	}
	f(1, time.Second)
	f(2, 2*time.Second)
	f(4, 8*time.Second)
	f(5, 15*time.Second)
	f(1000, 15*time.Second)
}

// SIGTERM during the first connect: Connect gives up at once, although
// the server it talks to would keep it waiting for connect_timeout.
func TestConnectGivesUpWhenCancelled(t *testing.T) {
	silent := natsconntest.StartSilent(t, 0)
	c := config(silent.URL())
	c.ConnectTimeout = time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := Connect(ctx, c, Options{})
		done <- result{nc, err}
	}()
	wait.For(t, "connection accepted", 5*time.Second, func() bool { return silent.Accepted() > 0 })
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("want context.Canceled, got conn %v, err %v", r.nc, r.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Connect still waiting 2 s after its context was cancelled")
	}
}

// SIGTERM while the connection keeps trying in the background: Close
// returns at once instead of waiting out the handshake in progress.
func TestCloseAfterCancelWhileReconnecting(t *testing.T) {
	url, port := natsconntest.Unreachable(t)
	c := config(url)
	c.ConnectTimeout = time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	nc, err := Connect(ctx, c, Options{ReconnectWait: 10 * time.Millisecond, MaxReconnectWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	silent := natsconntest.StartSilent(t, port)
	wait.For(t, "reconnect attempt accepted", 5*time.Second, func() bool { return silent.Accepted() > 0 })
	cancel()
	closed := make(chan struct{})
	go func() { nc.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close still waiting 2 s after the context was cancelled")
	}
}

// A clean close is no warning (it used to log WARN nats disconnected err=<nil>).
func TestCleanDisconnectIsInfo(t *testing.T) {
	s := natstest.StartServer(t)
	var l logs
	nc, err := Connect(t.Context(), config(s.ClientURL()), Options{Log: l.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := Drain(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	// Drain returns once the close is logged (a binary exits right after).
	if len(l.find(t, "nats connection closed")) != 1 {
		t.Fatalf("close not logged when Drain returned: %s", l.buf.String())
	}
	lines := l.find(t, "nats disconnected")
	if len(lines) != 1 || lines[0]["level"] != "INFO" || lines[0]["err"] != nil {
		t.Fatalf("want one INFO nats disconnected without err, got %v", lines)
	}
	if w := l.find(t, ""); len(w) != 3 { // connected, disconnected, closed
		t.Errorf("unexpected lines: %v", w)
	}

	// A lost connection is still a warning.
	s2 := startServer(t, func(*server.Options) {})
	lost := make(chan error, 1)
	nc, err = Connect(t.Context(), config(s2.ClientURL()), Options{Log: l.logger(),
		OnDisconnect: func(_ *nats.Conn, err error) { lost <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := WaitConnected(t.Context(), nc); err != nil {
		t.Fatal(err)
	}
	s2.Shutdown()
	wait.For(t, "WARN nats disconnected", 5*time.Second, func() bool {
		lines := l.find(t, "nats disconnected")
		return len(lines) == 2 && lines[1]["level"] == "WARN" && lines[1]["err"] != nil
	})
	if err := <-lost; err == nil {
		t.Error("OnDisconnect got no error for a lost connection")
	}
}

func TestWaitConnected(t *testing.T) {
	url, _ := natsconntest.Unreachable(t)
	nc, err := Connect(t.Context(), config(url), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := WaitConnected(ctx, nc); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want DeadlineExceeded, got %v", err)
	}
	// Drain of a connection that is not connected closes it.
	if err := Drain(t.Context(), nc); !errors.Is(err, nats.ErrConnectionReconnecting) || !nc.IsClosed() {
		t.Errorf("Drain while reconnecting: err %v, closed %v", err, nc.IsClosed())
	}
	if err := WaitConnected(t.Context(), nc); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("want ErrConnectionClosed, got %v", err)
	}
	if err := Drain(t.Context(), nc); err != nil {
		t.Errorf("Drain of a closed connection: %v", err)
	}
}

// A subscription that falls behind its pending limit makes the client drop
// messages; the drop is counted under both names binaries use.
func TestSlowConsumerIsCounted(t *testing.T) {
	s := natstest.StartServer(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "kestrel_test")
	nc, err := Connect(t.Context(), config(s.ClientURL()), Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	release := make(chan struct{})
	sub, err := nc.Subscribe("slow", func(*nats.Msg) { <-release })
	if err != nil {
		t.Fatal(err)
	}
	defer close(release)
	if err := sub.SetPendingLimits(1, 1<<20); err != nil {
		t.Fatal(err)
	}
	// A flush round trip means the server has the subscription.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub := natstest.Connect(t, s)
	for range 20 {
		if err := pub.Publish("slow", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "slow consumer counted", 10*time.Second, func() bool {
		return testutil.ToFloat64(m.AsyncErrors.WithLabelValues("slow_consumer")) > 0
	})
	if dropped, _ := sub.Dropped(); dropped == 0 {
		t.Fatal("the subscription dropped nothing, the test did not exercise a slow consumer")
	}
	if n := testutil.ToFloat64(m.AsyncErrors.WithLabelValues("other")); n != 0 {
		t.Errorf("%v other async errors", n)
	}
	if n, err := testutil.GatherAndCount(reg, "kestrel_test_nats_async_errors_total"); err != nil || n != 2 {
		t.Errorf("want 2 series, got %d (%v)", n, err)
	}
}

func TestKindOf(t *testing.T) {
	if got := KindOf(nats.ErrSlowConsumer); got != KindSlowConsumer || got.String() != "slow_consumer" {
		t.Errorf("ErrSlowConsumer → %v", got)
	}
	if got := KindOf(nats.ErrConnectionClosed); got != KindOther || got.String() != "other" {
		t.Errorf("ErrConnectionClosed → %v", got)
	}
}

func TestOptionErrorsNameTheField(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.NkeySeedFile = missing }, "nats.nkey_seed_file"},
		{func(c *Config) { c.CredsFile = missing }, "nats.creds_file"},
		{func(c *Config) { c.TLS.CAFile = missing }, "nats.tls.ca_file"},
		{func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = missing, missing }, "nats.tls.cert_file"},
	}
	for _, tc := range cases {
		c := Default()
		tc.mod(&c)
		nc, err := Connect(t.Context(), c, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			if nc != nil {
				nc.Close()
			}
			t.Errorf("want error naming %s, got %v", tc.want, err)
		}
	}
}
