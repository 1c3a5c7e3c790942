// Package telnettest is what the tests of the line listeners (packages
// telnet and opentsdb) share: an ingest Publisher on a real embedded
// JetStream with the transfer's ingest stream, the points stored in it,
// the listeners' counters, and a line client.
package telnettest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kestrel-mon/kestrel/lib/natstest"
	"github.com/kestrel-mon/kestrel/lib/testutil/wait"
	"github.com/kestrel-mon/kestrel/proto"
	"github.com/kestrel-mon/kestrel/transfer/internal/config"
	"github.com/kestrel-mon/kestrel/transfer/internal/ingest"
	"github.com/kestrel-mon/kestrel/transfer/internal/stream"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Fixture is a Publisher on a real JetStream, and the ingest config of
// the listeners under test (addresses 127.0.0.1:0, short timeouts).
type Fixture struct {
	Srv  *server.Server
	JS   jetstream.JetStream
	Subj proto.Subjects
	Pub  *ingest.Publisher
	Met  *ingest.Metrics
	Cfg  config.Ingest
	Log  *slog.Logger
}

// New starts NATS with the ingest stream and a Publisher (stopped on
// cleanup); mod changes the Publisher's config.
func New(t *testing.T, mod func(*ingest.Config)) *Fixture {
	t.Helper()
	srv := natstest.StartServer(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	subj := cfg.Subjects()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := stream.Ensure(ctx, js, subj, cfg.Stream, cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	pc := ingest.Config{Subject: subj.Ingest("transfer-test"), Stream: subj.Stream(), MsgIDPrefix: "test", BatchPoints: 100,
		Linger: 2 * time.Millisecond, PublishTimeout: 2 * time.Second, Workers: 2, MaxPendingPoints: 10000, MaxWait: time.Second}
	if mod != nil {
		mod(&pc)
	}
	in := cfg.Ingest
	in.Telnet.Enabled, in.Telnet.Listen = true, "127.0.0.1:0"
	in.OpenTSDB.Enabled, in.OpenTSDB.Listen = true, "127.0.0.1:0"
	in.ReadTimeout, in.IdleTimeout = 2*time.Second, 10*time.Second
	in.MaxLineBytes = 1024
	in.MaxRequestBytes = 1 << 20
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	met := ingest.NewMetrics(nil)
	f := &Fixture{Srv: srv, JS: js, Subj: subj, Met: met, Cfg: in, Log: log, Pub: ingest.NewPublisher(pc, js, met, log)}
	t.Cleanup(func() { _ = f.Pub.Stop(context.Background()) })
	return f
}

// Stored returns every point in the ingest stream, in order.
func (f *Fixture) Stored(t testing.TB) []proto.Point {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := f.JS.Stream(ctx, f.Subj.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []proto.Point
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		pts, err := proto.DecodeBatch(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pts...)
	}
	return out
}

// WaitStored waits until n points are in the stream and returns them.
func (f *Fixture) WaitStored(t testing.TB, n int) []proto.Point {
	t.Helper()
	var pts []proto.Point
	wait.For(t, "points stored", 10*time.Second, func() bool {
		pts = f.Stored(t)
		return len(pts) >= n
	})
	if len(pts) != n {
		t.Fatalf("%d points stored, want %d: %+v", len(pts), n, pts)
	}
	return pts
}

// DeleteStream deletes the ingest stream: every publish fails from then
// on.
func (f *Fixture) DeleteStream(t testing.TB) {
	t.Helper()
	if err := f.JS.DeleteStream(context.Background(), f.Subj.Stream()); err != nil {
		t.Fatal(err)
	}
}

// Rejected returns the rejected points of listener for reason.
func (f *Fixture) Rejected(listener string, r proto.Reason) float64 {
	return testutil.ToFloat64(f.Met.Rejected.WithLabelValues(listener, r.String()))
}

// Refused returns the refusals of listener for reason.
func (f *Fixture) Refused(listener, reason string) float64 {
	return testutil.ToFloat64(f.Met.Refused.WithLabelValues(listener, reason))
}

// Client is a line client of a listener.
type Client struct {
	net.Conn
	R *bufio.Reader
}

// Dial connects to addr; the connection is closed on cleanup.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{Conn: c, R: bufio.NewReader(c)}
}

// Send writes lines, each followed by "\n".
func (c *Client) Send(t testing.TB, lines ...string) {
	t.Helper()
	if _, err := io.WriteString(c, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
}

// Line reads one reply line (without "\n"), waiting at most 10 s.
func (c *Client) Line(t testing.TB) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.R.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a reply: %v (read %q)", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

// Closed waits until the server closes the connection and returns what
// it sent before.
func (c *Client) Closed(t testing.TB) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c.R)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection not closed by the server (read %q)", b)
	}
	return string(b)
}

// FuzzNow is the wall time of Fuzz (unix seconds).
const FuzzNow = 1700000000

// Fuzz feeds arbitrary bytes to run, which parses them as a listener
// does and publishes batches of points and returns what the client was
// told: it must never panic, every point it publishes must be valid at
// FuzzNow and survive the batch codec unchanged, and every reply must end
// with a newline.
func Fuzz(f *testing.F, run func(data []byte, publish func([]proto.Point)) (replies []byte), seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		publish := func(pts []proto.Point) {
			for i := range pts {
				q := pts[i]
				if r := proto.ValidatePoint(&q, FuzzNow); r != proto.OK {
					t.Fatalf("published an invalid point (%s): %+v", r, pts[i])
				}
			}
			if len(pts) == 0 {
				return
			}
			back, err := proto.DecodeBatch(proto.EncodeBatch(pts))
			if err != nil || fmt.Sprint(back) != fmt.Sprint(pts) {
				t.Fatalf("codec round trip: %v\n%+v\n%+v", err, pts, back)
			}
		}
		out := run(data, publish)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("a reply without its newline: %q", out)
		}
	})
}
